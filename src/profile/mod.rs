//! Layout profiles: per Redis build, where the walker finds each field.
//!
//! Profiles are JSON ([`schema::ProfileFile`], documented in `layouts/README.md`). The ones
//! in `layouts/` are compiled into the binary. A profile is resolved into a typed
//! [`Layout`] once, before the walk, and rejected if anything the walker needs is missing.

pub mod features;
pub mod layout;
pub mod schema;

use std::path::Path;

pub use layout::Layout;
pub use schema::ProfileFile;

mod shipped {
    include!(concat!(env!("OUT_DIR"), "/shipped_profiles.rs"));
}

/// A profile that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// Neither a shipped name nor a readable file.
    #[error("no profile named {0:?} (shipped: {shipped}); give a shipped name or a path to a JSON profile", shipped = shipped_names().join(", "))]
    Unknown(String),
    /// The file could not be read.
    #[error("cannot read profile {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// Not valid profile JSON.
    #[error("profile {name} is not valid: {source}")]
    Json {
        /// Name or path.
        name: String,
        /// The parse error.
        source: serde_json::Error,
    },
    /// A schema version this build does not read.
    #[error(
        "profile {name} has schema_version {found}; this redis-rescue reads {}",
        schema::SCHEMA_VERSION
    )]
    Schema {
        /// Profile name.
        name: String,
        /// Its schema version.
        found: u32,
    },
    /// Fields or features the walker needs are absent or unsupported.
    #[error("profile {name} lacks what the walker needs: {}", missing.join("; "))]
    Incomplete {
        /// Profile name.
        name: String,
        /// Everything missing.
        missing: Vec<String>,
    },
}

/// Names of the profiles compiled into this binary.
pub fn shipped_names() -> Vec<&'static str> {
    shipped::SHIPPED.iter().map(|(n, _)| *n).collect()
}

fn parse(name: &str, text: &str) -> Result<ProfileFile, ProfileError> {
    serde_json::from_str(text).map_err(|source| ProfileError::Json {
        name: name.to_owned(),
        source,
    })
}

/// Every shipped profile, parsed (a broken shipped profile is a build defect, reported as such).
pub fn shipped_profiles() -> Result<Vec<ProfileFile>, ProfileError> {
    shipped::SHIPPED
        .iter()
        .map(|(name, text)| parse(name, text))
        .collect()
}

/// Load a profile given on the command line: a shipped name, or a path to a JSON file.
pub fn load(name_or_path: &str) -> Result<ProfileFile, ProfileError> {
    if let Some((name, text)) = shipped::SHIPPED.iter().find(|(n, _)| *n == name_or_path) {
        return parse(name, text);
    }
    let path = Path::new(name_or_path);
    if path.exists() {
        let text = std::fs::read_to_string(path).map_err(|source| ProfileError::Io {
            path: name_or_path.to_owned(),
            source,
        })?;
        return parse(name_or_path, &text);
    }
    Err(ProfileError::Unknown(name_or_path.to_owned()))
}

/// The shipped profile recorded for `build_id`, if any.
pub fn shipped_for_build_id(build_id: &str) -> Result<Option<ProfileFile>, ProfileError> {
    Ok(shipped_profiles()?
        .into_iter()
        .find(|p| p.identity.build_id.as_deref() == Some(build_id)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shipped_profile_resolves() {
        let all = shipped_profiles().unwrap();
        assert!(!all.is_empty());
        for p in &all {
            Layout::resolve(p).unwrap_or_else(|e| panic!("{}: {e}", p.name));
        }
    }

    #[test]
    fn missing_fields_are_all_named() {
        let mut p = load("7.0.15-debian").unwrap();
        p.structs.remove("quicklistNode");
        p.features.insert("dict".into(), "swiss".into());
        let err = Layout::resolve(&p).unwrap_err().to_string();
        assert!(err.contains("struct quicklistNode"), "{err}");
        assert!(err.contains("feature dict=swiss"), "{err}");
    }

    #[test]
    fn unknown_profile_lists_shipped() {
        let err = load("9.9.9-nope").unwrap_err().to_string();
        assert!(err.contains("7.0.15-debian"), "{err}");
    }
}
