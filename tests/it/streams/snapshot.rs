//! What a server shows of the streams dataset, to compare a restored server with its source:
//! DEBUG DIGEST, DBSIZE, the XINFO replies of every stream, TTLs and idle times as absolute
//! times bracketed by the client's clock; and the differences between two snapshots.

use super::*;

/// An absolute time (Unix ms) the server only shows relative to its clock (idle times, PTTL),
/// bracketed by the client's clock before and after the query: the true value is in
/// `lo..=hi`.
#[derive(Debug, Clone, Copy)]
pub(super) struct Bracket {
    pub(super) lo: i64,
    pub(super) hi: i64,
}

impl Bracket {
    /// Both brackets can hold the same instant (1 ms each side for rounding).
    fn overlaps(&self, o: &Bracket) -> bool {
        self.lo - 1 <= o.hi + 1 && o.lo - 1 <= self.hi + 1
    }
}

#[derive(Debug, Default)]
pub(super) struct Snapshot {
    pub(super) digest: String,
    pub(super) dbsizes: BTreeMap<u32, u64>,
    /// label → raw reply (relative time fields replaced by a marker).
    pub(super) replies: BTreeMap<String, Value>,
    /// label → absolute time derived from a relative one.
    pub(super) times: BTreeMap<String, Bracket>,
}

pub(super) fn bulk_eq(v: &Value, s: &str) -> bool {
    matches!(v, Value::BulkString(b) if b == s.as_bytes())
        || matches!(v, Value::SimpleString(b) if b == s)
}

pub(super) fn as_int(v: &Value) -> i64 {
    match v {
        Value::Int(i) => *i,
        Value::BulkString(b) => std::str::from_utf8(b)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("not an integer: {v:?}")),
        _ => panic!("not an integer: {v:?}"),
    }
}

pub(super) fn text(v: &Value) -> String {
    match v {
        Value::BulkString(b) => show(b),
        Value::SimpleString(s) => s.clone(),
        other => format!("{other:?}"),
    }
}

pub(super) fn stripped() -> Value {
    Value::SimpleString("<idle: compared as an absolute time>".into())
}

/// Query `c` and keep the reply under `label`, with the client's clock around it.
pub(super) fn probe(conn: &mut Connection, c: &Cmd) -> (Value, i64, i64) {
    let t0 = now_ms();
    let v = run(conn, c);
    let t1 = now_ms();
    (v, t0, t1)
}

pub(super) fn get_label(db: u32, key: &[u8]) -> String {
    format!("db{db} {}: GET", show(key))
}

pub(super) fn expire_label(db: u32, key: &[u8]) -> String {
    format!("db{db} {} expire time", show(key))
}

/// Record digest, DBSIZEs, the XINFO of every stream and the absolute expire times.
pub(super) fn snapshot(conn: &mut Connection, t: &Target, ds: &Dataset) -> Snapshot {
    let mut s = Snapshot::default();
    for (db, key) in &ds.streams {
        select(conn, *db);
        let k = format!("db{db} {}", show(key));
        if t.has_xinfo_full() {
            // COUNT 0: every entry and every PEL entry (the default shows 10). Every time
            // XINFO FULL prints (seen-time, active-time, delivery-time) is absolute Unix ms, so
            // the raw replies must be equal.
            let c = cmd(&[b"XINFO", b"STREAM", key, b"FULL", b"COUNT", b"0"]);
            s.replies
                .insert(format!("{k}: XINFO STREAM FULL COUNT 0"), run(conn, &c));
            continue;
        }
        // 5.0: no FULL. XINFO STREAM, XINFO GROUPS, XINFO CONSUMERS and XPENDING per group,
        // and XRANGE. The only times 5.0 shows are relative to its clock: `idle` in XINFO
        // CONSUMERS (now - seen-time) and the idle time in XPENDING's extended form (now -
        // delivery-time). They are taken out of the raw replies and compared as absolute
        // times (client clock around the query minus idle) that must agree within the
        // queries' duration.
        s.replies.insert(
            format!("{k}: XINFO STREAM"),
            r(conn, &[b"XINFO", b"STREAM", key]),
        );
        s.replies.insert(
            format!("{k}: XRANGE - +"),
            r(conn, &[b"XRANGE", key, b"-", b"+"]),
        );
        let groups = r(conn, &[b"XINFO", b"GROUPS", key]);
        let mut names = Vec::new();
        if let Value::Array(gs) = &groups {
            for g in gs {
                let Value::Array(f) = g else {
                    panic!("XINFO GROUPS item {g:?}")
                };
                let name = f
                    .chunks(2)
                    .find(|p| bulk_eq(&p[0], "name"))
                    .map(|p| p[1].clone())
                    .unwrap_or_else(|| panic!("group without name: {g:?}"));
                let Value::BulkString(name) = name else {
                    panic!("group name {name:?}")
                };
                names.push(name);
            }
        }
        s.replies.insert(format!("{k}: XINFO GROUPS"), groups);
        for g in &names {
            let gk = format!("{k} group {}", show(g));
            let (mut consumers, t0, t1) = probe(conn, &cmd(&[b"XINFO", b"CONSUMERS", key, g]));
            if let Value::Array(cs) = &mut consumers {
                for c in cs {
                    let Value::Array(f) = c else {
                        panic!("XINFO CONSUMERS item {c:?}")
                    };
                    let name = f
                        .chunks(2)
                        .find(|p| bulk_eq(&p[0], "name"))
                        .map(|p| text(&p[1]))
                        .unwrap_or_default();
                    for i in (0..f.len()).step_by(2) {
                        if bulk_eq(&f[i], "idle") {
                            let idle = as_int(&f[i + 1]);
                            s.times.insert(
                                format!("{gk} consumer {name} seen-time (now - idle)"),
                                Bracket {
                                    lo: t0 - idle,
                                    hi: t1 - idle,
                                },
                            );
                            f[i + 1] = stripped();
                        }
                    }
                }
            }
            s.replies
                .insert(format!("{gk}: XINFO CONSUMERS"), consumers);
            let (mut pending, t0, t1) =
                probe(conn, &cmd(&[b"XPENDING", key, g, b"-", b"+", b"1000"]));
            if let Value::Array(ps) = &mut pending {
                for p in ps {
                    let Value::Array(f) = p else {
                        panic!("XPENDING item {p:?}")
                    };
                    assert_eq!(f.len(), 4, "XPENDING item {f:?}");
                    let idle = as_int(&f[2]);
                    s.times.insert(
                        format!(
                            "{gk} pending {} ({}) delivery-time (now - idle)",
                            text(&f[0]),
                            text(&f[1])
                        ),
                        Bracket {
                            lo: t0 - idle,
                            hi: t1 - idle,
                        },
                    );
                    f[2] = stripped();
                }
            }
            s.replies
                .insert(format!("{gk}: XPENDING - + 1000"), pending);
        }
    }
    for (db, key) in &ds.others {
        select(conn, *db);
        s.replies
            .insert(get_label(*db, key), r(conn, &[b"GET", key]));
    }
    for (db, key) in &ds.ttl_keys {
        select(conn, *db);
        let label = expire_label(*db, key);
        if t.has_v7() {
            let at = as_int(&r(conn, &[b"PEXPIRETIME", key]));
            s.times.insert(label, Bracket { lo: at, hi: at });
        } else {
            // Before 7.0 only PTTL (relative); the expire time is kept absolute.
            let (v, t0, t1) = probe(conn, &cmd(&[b"PTTL", key]));
            let ttl = as_int(&v);
            assert!(ttl > 0, "{label}: PTTL {ttl}");
            s.times.insert(
                label,
                Bracket {
                    lo: t0 + ttl,
                    hi: t1 + ttl,
                },
            );
        }
    }
    select(conn, 0);
    s.dbsizes = dbsizes(conn);
    s.digest = digest(conn);
    s
}

pub(super) fn fnv1a(b: &[u8]) -> u64 {
    b.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &x| {
        (h ^ u64::from(x)).wrapping_mul(0x0100_0000_01b3)
    })
}

pub(super) fn scalar(v: &Value) -> Option<String> {
    Some(match v {
        Value::BulkString(b) if b.len() > 80 => format!(
            "\"{}…\" ({} bytes, fnv1a {:016x})",
            show(&b[..60]),
            b.len(),
            fnv1a(b)
        ),
        Value::BulkString(b) => format!("\"{}\"", show(b)),
        Value::Int(i) => i.to_string(),
        Value::Nil => "(nil)".into(),
        Value::SimpleString(s) => s.clone(),
        Value::Okay => "OK".into(),
        Value::Array(_) => return None,
        other => format!("{other:?}"),
    })
}

/// An XINFO-style field name (`last-delivered-id`, `pel-count`, …).
pub(super) fn field_name(v: &Value) -> Option<&str> {
    match v {
        Value::BulkString(b)
            if !b.is_empty()
                && b.len() <= 30
                && b.iter().all(|c| c.is_ascii_lowercase() || *c == b'-') =>
        {
            std::str::from_utf8(b).ok()
        }
        _ => None,
    }
}

/// An array of field-name/value pairs (XINFO's replies).
pub(super) fn is_map(items: &[Value]) -> bool {
    !items.is_empty()
        && items.len().is_multiple_of(2)
        && items.iter().step_by(2).all(|k| field_name(k).is_some())
}

/// A scalar, or a short array of scalars that is not a map (PEL entries, field lists), on one
/// line.
pub(super) fn inline(v: &Value) -> Option<String> {
    let Value::Array(items) = v else {
        return scalar(v);
    };
    if items.len() > 8 || is_map(items) {
        return None;
    }
    let parts = items.iter().map(scalar).collect::<Option<Vec<_>>>()?;
    Some(format!("[{}]", parts.join(", ")))
}

/// A reply as indented lines (for diffs only: equality is decided on the raw replies).
/// Arrays of field-name/value pairs are shown as `name: value`.
pub(super) fn render(v: &Value, depth: usize, out: &mut Vec<String>) {
    let ind = "  ".repeat(depth);
    if let Some(s) = inline(v) {
        out.push(format!("{ind}{s}"));
        return;
    }
    let Value::Array(items) = v else {
        unreachable!("inline() shows every scalar")
    };
    if is_map(items) {
        for p in items.chunks(2) {
            let name = field_name(&p[0]).unwrap_or_default();
            match inline(&p[1]) {
                Some(s) => out.push(format!("{ind}{name}: {s}")),
                None => {
                    out.push(format!("{ind}{name}:"));
                    render(&p[1], depth + 1, out);
                }
            }
        }
    } else {
        for (i, item) in items.iter().enumerate() {
            match inline(item) {
                Some(s) => out.push(format!("{ind}[{i}] {s}")),
                None => {
                    out.push(format!("{ind}[{i}]"));
                    render(item, depth + 1, out);
                }
            }
        }
    }
}

/// A line diff of two replies (`-` source, `+` restored) with some context.
pub(super) fn diff_replies(a: &Value, b: &Value) -> String {
    let (mut la, mut lb) = (Vec::new(), Vec::new());
    render(a, 1, &mut la);
    render(b, 1, &mut lb);
    let pre = la.iter().zip(&lb).take_while(|(x, y)| x == y).count();
    let suf = la[pre..]
        .iter()
        .rev()
        .zip(lb[pre..].iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    let (ma, mb) = (&la[pre..la.len() - suf], &lb[pre..lb.len() - suf]);
    let mut ops: Vec<(char, &String)> = Vec::new();
    if ma.len() * mb.len() <= 4_000_000 {
        // Longest common subsequence.
        let (n, m) = (ma.len(), mb.len());
        let mut t = vec![0u32; (n + 1) * (m + 1)];
        for i in (0..n).rev() {
            for j in (0..m).rev() {
                t[i * (m + 1) + j] = if ma[i] == mb[j] {
                    t[(i + 1) * (m + 1) + j + 1] + 1
                } else {
                    t[(i + 1) * (m + 1) + j].max(t[i * (m + 1) + j + 1])
                };
            }
        }
        let (mut i, mut j) = (0, 0);
        while i < n || j < m {
            if i < n && j < m && ma[i] == mb[j] {
                ops.push((' ', &ma[i]));
                i += 1;
                j += 1;
            } else if i < n && (j == m || t[(i + 1) * (m + 1) + j] >= t[i * (m + 1) + j + 1]) {
                ops.push(('-', &ma[i]));
                i += 1;
            } else {
                ops.push(('+', &mb[j]));
                j += 1;
            }
        }
    } else {
        ops.extend(ma.iter().map(|l| ('-', l)));
        ops.extend(mb.iter().map(|l| ('+', l)));
    }
    let mut s = String::new();
    let _ = writeln!(
        s,
        "  (`-` source, `+` restored; {} vs {} lines, first difference at line {})",
        la.len(),
        lb.len(),
        pre + 1
    );
    for l in &la[pre.saturating_sub(4)..pre] {
        let _ = writeln!(s, "   {l}");
    }
    let mut shown = 0;
    for (i, (op, l)) in ops.iter().enumerate() {
        // Changed lines, with one line of context around each.
        let near = |k: usize| ops.get(k).is_some_and(|(o, _)| *o != ' ');
        if *op == ' ' && !(near(i + 1) || (i > 0 && near(i - 1))) {
            continue;
        }
        if shown == 60 {
            let _ = writeln!(s, "  … ({} more lines of diff)", ops.len() - i);
            break;
        }
        let _ = writeln!(s, "  {op}{l}");
        shown += 1;
    }
    s
}

/// Everything that differs between the source's snapshot and the restored server's.
pub(super) fn compare(want: &Snapshot, got: &Snapshot) -> Vec<String> {
    let mut bad = Vec::new();
    if want.digest != got.digest {
        bad.push(format!(
            "DEBUG DIGEST: source {}, restored {}",
            want.digest, got.digest
        ));
    }
    if want.dbsizes != got.dbsizes {
        bad.push(format!(
            "DBSIZE per db: source {:?}, restored {:?}",
            want.dbsizes, got.dbsizes
        ));
    }
    let labels: BTreeSet<&String> = want.replies.keys().chain(got.replies.keys()).collect();
    for l in labels {
        match (want.replies.get(l), got.replies.get(l)) {
            (Some(a), Some(b)) if a == b => {}
            (Some(a), Some(b)) => bad.push(format!("{l} differs:\n{}", diff_replies(a, b))),
            (a, _) => bad.push(format!(
                "{l}: only on the {}",
                if a.is_some() {
                    "source"
                } else {
                    "restored server"
                }
            )),
        }
    }
    let labels: BTreeSet<&String> = want.times.keys().chain(got.times.keys()).collect();
    for l in labels {
        match (want.times.get(l), got.times.get(l)) {
            (Some(a), Some(b)) if a.overlaps(b) => {}
            (a, b) => {
                let show = |x: Option<&Bracket>| match x {
                    Some(x) if x.lo == x.hi => x.lo.to_string(),
                    Some(x) => format!("{}..={}", x.lo, x.hi),
                    None => "none".to_string(),
                };
                let off = match (a, b) {
                    (Some(a), Some(b)) => format!(" (off by {} ms)", b.lo - a.lo),
                    _ => String::new(),
                };
                bad.push(format!(
                    "{l} (absolute Unix ms): source {}, restored {}{off}",
                    show(a),
                    show(b)
                ))
            }
        }
    }
    bad
}
