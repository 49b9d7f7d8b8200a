//! `verify --docker`: the bundled compose file, the image of a version, and the commands
//! that restore a dump by hand when no engine answers (see `docker/compose.yml`).

use std::path::{Path, PathBuf};

/// `docker/compose.yml`, built in: `verify --docker` runs it wherever the binary is.
pub const COMPOSE_YML: &str = include_str!("../../docker/compose.yml");

/// Port the compose file publishes on loopback by default.
pub const DEFAULT_PORT: u16 = 6390;

/// Where `docker/compose.yml` is: beside the working directory, beside the executable's
/// source tree (a cargo build), or where this binary was built from.
pub fn compose_file() -> Option<PathBuf> {
    let mut candidates = vec![PathBuf::from("docker/compose.yml")];
    if let Ok(exe) = std::env::current_exe() {
        // target/{debug,release}/redis-rescue → the source tree.
        if let Some(root) = exe.parent().and_then(Path::parent).and_then(Path::parent) {
            candidates.push(root.join("docker/compose.yml"));
        }
    }
    candidates.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("docker/compose.yml"));
    candidates
        .into_iter()
        .find(|p| p.is_file())
        .map(|p| std::fs::canonicalize(&p).unwrap_or(p))
}

/// `s` quoted for a POSIX shell when it needs it.
pub fn shell_quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./:=@%+,".contains(&b));
    if plain {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// The official image for a server version (`redis:7.0.15`, `valkey/valkey:8.1.8`).
pub fn image_for(version: &str) -> String {
    match version.strip_prefix("valkey-") {
        Some(v) => format!("valkey/valkey:{v}"),
        None => format!("redis:{version}"),
    }
}

/// The commands: compose up, verify --connect, compose down.
pub fn commands(dump: &Path, version: Option<&str>, compose: Option<&Path>) -> String {
    let dump_abs = std::fs::canonicalize(dump).unwrap_or_else(|_| dump.to_path_buf());
    let dump_s = shell_quote(&dump_abs.display().to_string());
    let image = version.map_or("redis:VERSION".to_owned(), image_for);
    let compose_s = compose.map_or("docker/compose.yml".to_owned(), |p| {
        shell_quote(&p.display().to_string())
    });
    let env = format!("REDIS_IMAGE={image} DUMP={dump_s} PORT={DEFAULT_PORT}");
    let compose_cmd = format!("docker compose -p redis-rescue-verify -f {compose_s}");
    let down = "down -v --remove-orphans";
    let mut s = String::new();
    match version {
        Some(v) => s.push_str(&format!(
            "# Restore the dump into the official image of {} (the dump is mounted read-only\n\
             # and copied into the container; the port is published on 127.0.0.1 only):\n",
            match v.strip_prefix("valkey-") {
                Some(k) => format!("Valkey {k}"),
                None => format!("Redis {v}"),
            }
        )),
        None => s.push_str(
            "# The dump's Redis version is unknown (no report, no redis-ver AUX field):\n\
             # replace VERSION with the version of the server that produced the core.\n",
        ),
    }
    if compose.is_none() {
        s.push_str("# docker/compose.yml is in the redis-rescue source tree.\n");
    }
    s.push_str(&format!("{env} {compose_cmd} up -d\n"));
    s.push_str(&format!(
        "redis-rescue verify {dump_s} --connect 127.0.0.1:{DEFAULT_PORT}\n"
    ));
    s.push_str(&format!("{env} {compose_cmd} {down}\n"));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_and_commands() {
        assert_eq!(shell_quote("/tmp/dump.rdb"), "/tmp/dump.rdb");
        assert_eq!(
            shell_quote("/tmp/my dump's.rdb"),
            r"'/tmp/my dump'\''s.rdb'"
        );
        assert_eq!(shell_quote(""), "''");
        let c = commands(Path::new("/nonexistent/d.rdb"), Some("2.8.17"), None);
        assert!(
            c.contains("REDIS_IMAGE=redis:2.8.17 DUMP=/nonexistent/d.rdb PORT=6390 docker compose")
        );
        assert!(c.contains(" up -d\n") && c.contains(" down -v --remove-orphans\n"));
        assert!(c.contains("redis-rescue verify /nonexistent/d.rdb --connect 127.0.0.1:6390"));
        let c = commands(
            Path::new("d.rdb"),
            None,
            Some(Path::new("/r/docker/compose.yml")),
        );
        assert!(c.contains("REDIS_IMAGE=redis:VERSION") && c.contains("-f /r/docker/compose.yml"));
        assert_eq!(image_for("valkey-8.1.8"), "valkey/valkey:8.1.8");
    }
}
