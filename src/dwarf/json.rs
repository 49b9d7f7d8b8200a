//! Writing a profile as JSON in the compact style of `layouts/*.json`: one line per field
//! and symbol, fields in memory order.

use std::fmt::Write as _;

use crate::profile::schema::{FieldSpec, ProfileFile, StructSpec};

fn q(s: &str) -> String {
    serde_json::Value::String(s.to_owned()).to_string()
}

fn field_json(f: &FieldSpec) -> String {
    match f {
        FieldSpec::Bytes { offset, size } => {
            format!("{{ \"offset\": {offset}, \"size\": {size} }}")
        }
        FieldSpec::Bits {
            bit_offset,
            bit_size,
        } => format!("{{ \"bit_offset\": {bit_offset}, \"bit_size\": {bit_size} }}"),
    }
}

fn bit_position(f: &FieldSpec) -> u64 {
    match f {
        FieldSpec::Bytes { offset, .. } => offset.saturating_mul(8),
        FieldSpec::Bits { bit_offset, .. } => *bit_offset,
    }
}

fn struct_json(out: &mut String, name: &str, s: &StructSpec, last: bool) {
    let _ = write!(
        out,
        "    {}: {{ \"size\": {}, \"fields\": {{",
        q(name),
        s.size
    );
    let mut fields: Vec<(&String, &FieldSpec)> = s.fields.iter().collect();
    fields.sort_by_key(|(n, f)| (bit_position(f), (*n).clone()));
    if fields.is_empty() {
        out.push_str("} }");
    } else {
        out.push('\n');
        for (i, (n, f)) in fields.iter().enumerate() {
            let comma = if i + 1 < fields.len() { "," } else { "" };
            let _ = writeln!(out, "      {}: {}{comma}", q(n), field_json(f));
        }
        out.push_str("    } }");
    }
    out.push_str(if last { "\n" } else { ",\n" });
}

/// The profile as JSON text (parseable back into the same [`ProfileFile`]).
pub fn to_json(p: &ProfileFile) -> String {
    let mut out = String::from("{\n");
    let _ = writeln!(out, "  \"schema_version\": {},", p.schema_version);
    let _ = writeln!(out, "  \"name\": {},", q(&p.name));
    let id = &p.identity;
    out.push_str("  \"identity\": {\n");
    let _ = writeln!(out, "    \"redis_version\": {},", q(&id.redis_version));
    let _ = writeln!(out, "    \"server\": {},", q(&id.server));
    let _ = writeln!(
        out,
        "    \"build_id\": {},",
        id.build_id
            .as_deref()
            .map(q)
            .unwrap_or_else(|| "null".into())
    );
    let _ = writeln!(out, "    \"arch\": {},", q(&id.arch));
    let _ = writeln!(out, "    \"pointer_size\": {},", id.pointer_size);
    let _ = writeln!(out, "    \"rdb_version\": {},", id.rdb_version);
    let _ = writeln!(out, "    \"origin\": {}", q(&id.origin));
    out.push_str("  },\n");

    out.push_str("  \"symbols\": {");
    if p.symbols.is_empty() {
        out.push_str("},\n");
    } else {
        out.push('\n');
        for (i, (n, s)) in p.symbols.iter().enumerate() {
            let comma = if i + 1 < p.symbols.len() { "," } else { "" };
            let _ = writeln!(
                out,
                "    {}: {{ \"offset\": {}, \"size\": {} }}{comma}",
                q(n),
                s.offset,
                s.size
            );
        }
        out.push_str("  },\n");
    }

    out.push_str("  \"features\": {");
    if p.features.is_empty() {
        out.push_str("},\n");
    } else {
        out.push('\n');
        for (i, (n, v)) in p.features.iter().enumerate() {
            let comma = if i + 1 < p.features.len() { "," } else { "" };
            let _ = writeln!(out, "    {}: {}{comma}", q(n), q(v));
        }
        out.push_str("  },\n");
    }

    out.push_str("  \"structs\": {");
    if p.structs.is_empty() {
        out.push_str("},\n");
    } else {
        out.push('\n');
        for (i, (n, s)) in p.structs.iter().enumerate() {
            struct_json(&mut out, n, s, i + 1 == p.structs.len());
        }
        out.push_str("  },\n");
    }

    out.push_str("  \"constants\": {");
    if p.constants.is_empty() {
        out.push_str("}\n");
    } else {
        out.push('\n');
        for (i, (g, items)) in p.constants.iter().enumerate() {
            let mut items: Vec<(&String, &i64)> = items.iter().collect();
            items.sort_by_key(|(k, v)| (**v, (*k).clone()));
            let body: Vec<String> = items
                .iter()
                .map(|(k, v)| format!("{}: {v}", q(k)))
                .collect();
            let comma = if i + 1 < p.constants.len() { "," } else { "" };
            let _ = writeln!(out, "    {}: {{ {} }}{comma}", q(g), body.join(", "));
        }
        out.push_str("  }\n");
    }
    out.push_str("}\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_the_shipped_profile() {
        let p = crate::profile::load("7.0.15-debian").unwrap();
        let text = to_json(&p);
        let back: ProfileFile = serde_json::from_str(&text).unwrap();
        assert_eq!(
            serde_json::to_value(&p).unwrap(),
            serde_json::to_value(&back).unwrap()
        );
        assert!(text.contains("      \"type\": { \"bit_offset\": 0, \"bit_size\": 4 },\n"));
    }
}
