//! Unit tests of `compare`.

use super::*;

fn bulk(s: &str) -> Value {
    Value::BulkString(s.as_bytes().to_vec())
}

fn arr(v: Vec<Value>) -> Value {
    Value::Array(v)
}

fn entry(value: RdbValue, expire_ms: Option<i64>) -> Entry {
    Entry {
        db: 0,
        key: b"k".to_vec(),
        expire_ms,
        idle: None,
        freq: None,
        rdb_type: 0,
        value,
    }
}

const W: Window = Window {
    before: 1_000_000,
    after: 1_000_010,
};

fn verdict(e: &Entry, r: &[Value], mode: ExpireMode) -> String {
    match check_key(e, r, mode, W) {
        Verdict::Match => "match".into(),
        Verdict::Expired => "expired".into(),
        Verdict::Differs(what, a, b) => format!("{what}: {a} | {b}"),
    }
}

#[test]
fn strings_types_and_expires() {
    let e = entry(RdbValue::String(b"v".to_vec()), Some(2_000_000));
    let t = Value::SimpleString("string".into());
    let pm = ExpireMode::Pexpiretime;
    assert_eq!(
        verdict(&e, &[t.clone(), Value::Int(2_000_000), bulk("v")], pm),
        "match"
    );
    assert!(verdict(&e, &[t.clone(), Value::Int(2_000_001), bulk("v")], pm).starts_with("expire"));
    assert!(verdict(&e, &[t.clone(), Value::Int(-1), bulk("v")], pm).contains("no expire"));
    assert!(verdict(&e, &[t.clone(), Value::Int(2_000_000), bulk("w")], pm).starts_with("value"));
    let list = Value::SimpleString("list".into());
    assert!(verdict(&e, &[list, Value::Int(-1), Value::Nil], pm).starts_with("type: string"));
    let none = Value::SimpleString("none".into());
    assert!(verdict(&e, &[none.clone(), Value::Int(-2), Value::Nil], pm).starts_with("missing"));
    // Gone because its time passed: not a difference.
    let old = entry(RdbValue::String(b"v".to_vec()), Some(999_000));
    assert_eq!(
        verdict(&old, &[none, Value::Int(-2), Value::Nil], pm),
        "expired"
    );
    // PTTL within the tolerance, and outside it.
    let pt = ExpireMode::Pttl;
    assert_eq!(
        verdict(&e, &[t.clone(), Value::Int(1_000_000 - 5), bulk("v")], pt),
        "match"
    );
    assert!(verdict(&e, &[t.clone(), Value::Int(900_000), bulk("v")], pt).starts_with("expire"));
    assert_eq!(
        verdict(
            &e,
            &[t.clone(), Value::Int(1000), bulk("v")],
            ExpireMode::Ttl
        ),
        "match"
    );
    let persistent = entry(RdbValue::String(b"v".to_vec()), None);
    assert!(
        verdict(&persistent, &[t, Value::Int(5000), bulk("v")], pt).contains("expires in 5000 ms")
    );
}

#[test]
fn collections() {
    let pm = ExpireMode::Pexpiretime;
    let ty = |s: &str| Value::SimpleString(s.into());
    let l = entry(RdbValue::List(vec![b"a".to_vec(), b"b".to_vec()]), None);
    assert_eq!(
        verdict(
            &l,
            &[ty("list"), Value::Int(-1), arr(vec![bulk("a"), bulk("b")])],
            pm
        ),
        "match"
    );
    assert!(verdict(
        &l,
        &[ty("list"), Value::Int(-1), arr(vec![bulk("b"), bulk("a")])],
        pm
    )
    .contains("element 0"));
    assert!(
        verdict(&l, &[ty("list"), Value::Int(-1), arr(vec![bulk("a")])], pm).contains("2 elements")
    );

    let s = entry(RdbValue::Set(vec![b"x".to_vec(), b"y".to_vec()]), None);
    assert_eq!(
        verdict(
            &s,
            &[ty("set"), Value::Int(-1), arr(vec![bulk("y"), bulk("x")])],
            pm
        ),
        "match"
    );
    let d = verdict(
        &s,
        &[ty("set"), Value::Int(-1), arr(vec![bulk("y"), bulk("z")])],
        pm,
    );
    assert!(d.contains("member \"x\""), "{d}");

    let z = entry(
        RdbValue::Zset(vec![(b"m".to_vec(), 1.5), (b"n".to_vec(), f64::INFINITY)]),
        None,
    );
    let zr = |s: &str| arr(vec![bulk("m"), bulk(s), bulk("n"), bulk("inf")]);
    assert_eq!(
        verdict(&z, &[ty("zset"), Value::Int(-1), zr("1.5")], pm),
        "match"
    );
    let d = verdict(
        &z,
        &[ty("zset"), Value::Int(-1), zr("1.5000000000000002")],
        pm,
    );
    assert!(
        d.contains("score 1.5") && d.contains("1.5000000000000002"),
        "{d}"
    );

    let h = entry(
        RdbValue::Hash(vec![
            (b"f".to_vec(), b"1".to_vec()),
            (b"g".to_vec(), b"2".to_vec()),
        ]),
        None,
    );
    let hr = |v: &str| arr(vec![bulk("g"), bulk("2"), bulk("f"), bulk(v)]);
    assert_eq!(
        verdict(&h, &[ty("hash"), Value::Int(-1), hr("1")], pm),
        "match"
    );
    assert!(verdict(&h, &[ty("hash"), Value::Int(-1), hr("9")], pm).contains("field \"f\" = \"1\""));
    // RESP3 map shape too.
    let map = Value::Map(vec![(bulk("f"), bulk("1")), (bulk("g"), bulk("2"))]);
    assert_eq!(verdict(&h, &[ty("hash"), Value::Int(-1), map], pm), "match");
    // An error reply instead of a value.
    let err = verdict(&h, &[ty("hash"), Value::Int(-1), Value::Nil], pm);
    assert!(err.starts_with("value"), "{err}");
}

#[test]
fn hashes_with_field_ttls() {
    use rdb::reader::HashField;
    let pm = ExpireMode::Pexpiretime;
    let ty = |s: &str| Value::SimpleString(s.into());
    let field = |f: &str, expire_ms| HashField {
        field: f.as_bytes().to_vec(),
        value: b"v".to_vec(),
        expire_ms,
    };
    // Field "a" expired before the batch ran, "b" later, "c" never.
    let h = entry(
        RdbValue::HashWithTtl(vec![
            field("a", Some(999_000)),
            field("b", Some(5_000_000)),
            field("c", None),
        ]),
        None,
    );
    let got = |fields: &[&str]| arr(fields.iter().flat_map(|f| [bulk(f), bulk("v")]).collect());
    for fields in [&["b", "c"][..], &["a", "b", "c"]] {
        assert_eq!(
            verdict(&h, &[ty("hash"), Value::Int(-1), got(fields)], pm),
            "match",
            "{fields:?}"
        );
    }
    let d = verdict(&h, &[ty("hash"), Value::Int(-1), got(&["c"])], pm);
    assert!(d.starts_with("value") && d.contains("\"b\""), "{d}");
    let none = [ty("none"), Value::Int(-2), Value::Nil];
    assert!(verdict(&h, &none, pm).starts_with("missing"));
    // Every field's time has passed: the server dropped the key.
    let gone = entry(
        RdbValue::HashWithTtl(vec![field("a", Some(999_000)), field("b", Some(1_000_010))]),
        None,
    );
    assert_eq!(verdict(&gone, &none, pm), "expired");
    let empty = entry(RdbValue::HashWithTtl(Vec::new()), None);
    assert!(verdict(&empty, &none, pm).starts_with("missing"));
}

#[test]
fn set_differences_name_members() {
    let a: Vec<&[u8]> = vec![b"a", b"b", b"c"];
    assert_eq!(compare_sets(&a, &a, "m"), None);
    let (e, f) = compare_sets(&a, &[b"a", b"c"], "m").unwrap_or_default();
    assert!(e.contains("\"b\"") && f.contains("absent"), "{e} {f}");
    let (e, f) = compare_sets(&a, &[b"a", b"b", b"c", b"d"], "m").unwrap_or_default();
    assert!(e.contains("no m \"d\"") && f.contains("present"), "{e} {f}");
}
