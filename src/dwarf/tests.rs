//! Unit tests of `dwarf`.

use super::*;
use crate::profile::schema::FieldSpec;

#[test]
fn alt_paths() {
    let c = alt_candidates(
        Path::new("/usr/bin/redis-check-rdb"),
        "/usr/lib/debug/.dwz/x86_64-linux-gnu/redis-tools.debug",
    );
    assert_eq!(
        c.first().map(PathBuf::as_path),
        Some(Path::new(
            "/usr/lib/debug/.dwz/x86_64-linux-gnu/redis-tools.debug"
        ))
    );
    // Beside the file naming it, where a bundle unpacks it.
    assert!(c.contains(&PathBuf::from("/usr/bin/redis-tools.debug")));
    let c = alt_candidates(Path::new("/opt/r/redis-server"), "../dwz/common.debug");
    assert_eq!(c[0], Path::new("/opt/r/../dwz/common.debug"));
    assert!(c.contains(&PathBuf::from("/usr/lib/debug/.dwz/common.debug")));
}

#[test]
fn compare_reports_value_and_missing_differences() {
    let reference = crate::profile::load("7.0.15-debian").unwrap();
    let mut derived = reference.clone();
    assert!(compare(&derived, &reference, true).is_empty());
    derived.identity.origin = "other".into();
    derived.name = "x".into();
    assert!(compare(&derived, &reference, true).is_empty());
    if let Some(s) = derived.structs.get_mut("dict") {
        s.fields.insert(
            "rehashidx".into(),
            FieldSpec::Bytes {
                offset: 88,
                size: 8,
            },
        );
        s.fields.insert(
            "extra".into(),
            FieldSpec::Bytes {
                offset: 99,
                size: 1,
            },
        );
    }
    derived.structs.remove("zset");
    derived
        .features
        .insert("dict_entry".into(), "tagged".into());
    let d = compare(&derived, &reference, false);
    let paths: Vec<&str> = d.iter().map(|d| d.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "features.dict_entry",
            "structs.dict.fields.rehashidx",
            "structs.zset"
        ]
    );
    assert_eq!(
        d[1].to_string(),
        "structs.dict.fields.rehashidx: derived {offset 88, size 8}, profile {offset 40, size 8}"
    );
    let d = compare(&derived, &reference, true);
    assert!(d.iter().any(|d| d.path == "structs.dict.fields.extra"));
}
