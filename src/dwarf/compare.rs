//! Comparing a derived profile with a reference one, field by field.

use std::collections::{BTreeMap, HashSet};
use std::fmt;

use crate::profile::schema::{FieldSpec, ProfileFile, SymbolSpec};

/// One difference between a derived profile and a reference profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    /// Dotted path, e.g. `structs.dict.fields.rehashidx`.
    pub path: String,
    /// The derived value (`None`: absent from the derived profile).
    pub derived: Option<String>,
    /// The reference value (`None`: absent from the reference).
    pub reference: Option<String>,
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let show = |v: &Option<String>| v.clone().unwrap_or_else(|| "(absent)".into());
        write!(
            f,
            "{}: derived {}, profile {}",
            self.path,
            show(&self.derived),
            show(&self.reference)
        )
    }
}

fn field_text(f: &FieldSpec) -> String {
    match f {
        FieldSpec::Bytes { offset, size } => format!("{{offset {offset}, size {size}}}"),
        FieldSpec::Bits {
            bit_offset,
            bit_size,
        } => format!("{{bit_offset {bit_offset}, bit_size {bit_size}}}"),
    }
}

/// Compare `derived` with `reference`. Everything the reference states must be equal in
/// the derived profile (the name and `identity.origin` are not compared, nor
/// `identity.build_id` when the reference has none); `features` must match exactly.
/// With `exact`, structs, fields, symbols and constants present only in the derived
/// profile count as differences too.
pub fn compare(derived: &ProfileFile, reference: &ProfileFile, exact: bool) -> Vec<Difference> {
    let mut out = Vec::new();
    let mut diff = |path: String, d: Option<String>, r: Option<String>| {
        if d != r {
            out.push(Difference {
                path,
                derived: d,
                reference: r,
            });
        }
    };
    diff(
        "schema_version".into(),
        Some(derived.schema_version.to_string()),
        Some(reference.schema_version.to_string()),
    );
    let (di, ri) = (&derived.identity, &reference.identity);
    diff(
        "identity.redis_version".into(),
        Some(di.redis_version.clone()),
        Some(ri.redis_version.clone()),
    );
    diff(
        "identity.server".into(),
        Some(di.server.clone()),
        Some(ri.server.clone()),
    );
    if ri.build_id.is_some() {
        diff(
            "identity.build_id".into(),
            di.build_id.clone(),
            ri.build_id.clone(),
        );
    }
    diff(
        "identity.arch".into(),
        Some(di.arch.clone()),
        Some(ri.arch.clone()),
    );
    diff(
        "identity.pointer_size".into(),
        Some(di.pointer_size.to_string()),
        Some(ri.pointer_size.to_string()),
    );
    diff(
        "identity.rdb_version".into(),
        Some(di.rdb_version.to_string()),
        Some(ri.rdb_version.to_string()),
    );

    let sym = |s: &SymbolSpec| format!("{{offset {}, size {}}}", s.offset, s.size);
    let names: HashSet<&String> = derived
        .symbols
        .keys()
        .chain(reference.symbols.keys())
        .collect();
    let mut names: Vec<_> = names.into_iter().collect();
    names.sort();
    for n in names {
        let r = reference.symbols.get(n).map(sym);
        if r.is_none() && !exact {
            continue;
        }
        diff(format!("symbols.{n}"), derived.symbols.get(n).map(sym), r);
    }

    let names: HashSet<&String> = derived
        .features
        .keys()
        .chain(reference.features.keys())
        .collect();
    let mut names: Vec<_> = names.into_iter().collect();
    names.sort();
    for n in names {
        diff(
            format!("features.{n}"),
            derived.features.get(n).cloned(),
            reference.features.get(n).cloned(),
        );
    }

    let names: HashSet<&String> = derived
        .structs
        .keys()
        .chain(reference.structs.keys())
        .collect();
    let mut names: Vec<_> = names.into_iter().collect();
    names.sort();
    for n in names {
        match (derived.structs.get(n), reference.structs.get(n)) {
            (Some(d), Some(r)) => {
                diff(
                    format!("structs.{n}.size"),
                    Some(d.size.to_string()),
                    Some(r.size.to_string()),
                );
                let fields: HashSet<&String> = d.fields.keys().chain(r.fields.keys()).collect();
                let mut fields: Vec<_> = fields.into_iter().collect();
                fields.sort();
                for f in fields {
                    let rv = r.fields.get(f).map(field_text);
                    if rv.is_none() && !exact {
                        continue;
                    }
                    diff(
                        format!("structs.{n}.fields.{f}"),
                        d.fields.get(f).map(field_text),
                        rv,
                    );
                }
            }
            (None, Some(_)) => diff(format!("structs.{n}"), None, Some("present".into())),
            (Some(_), None) if exact => diff(format!("structs.{n}"), Some("present".into()), None),
            _ => {}
        }
    }

    let groups: HashSet<&String> = derived
        .constants
        .keys()
        .chain(reference.constants.keys())
        .collect();
    let mut groups: Vec<_> = groups.into_iter().collect();
    groups.sort();
    let empty = BTreeMap::new();
    for g in groups {
        let d = derived.constants.get(g).unwrap_or(&empty);
        let r = reference.constants.get(g).unwrap_or(&empty);
        let keys: HashSet<&String> = d.keys().chain(r.keys()).collect();
        let mut keys: Vec<_> = keys.into_iter().collect();
        keys.sort();
        for k in keys {
            let rv = r.get(k).map(i64::to_string);
            if rv.is_none() && !exact {
                continue;
            }
            diff(
                format!("constants.{g}.{k}"),
                d.get(k).map(i64::to_string),
                rv,
            );
        }
    }
    out
}
