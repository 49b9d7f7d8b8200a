//! Streams for both fillers: entries over several listpack nodes, consumer groups, pending
//! entries, XACK, XDEL and XTRIM as far as the version's commands go ([`StreamCaps`]); and
//! [`probe_streams`] / [`stream_differences`], which compare them (XINFO STREAM FULL COUNT
//! 0, or on 5.0 XINFO GROUPS / CONSUMERS and XPENDING), DEBUG DIGEST not covering groups.

use std::time::Duration;

use redis::Connection;

use super::truth::select;
use super::{compressible, pseudo_random_bytes, show, snippet};

/// Which stream commands a server has (streams themselves are 5.0+).
#[derive(Clone, Copy, Debug)]
pub struct StreamCaps {
    /// `XGROUP CREATECONSUMER` (6.2+, Valkey).
    pub createconsumer: bool,
}

/// The streams of one db: [`StreamSet::First`] in db 0, [`StreamSet::Second`] in db 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamSet {
    /// `stream:events` and `stream:trimmed` (the XTRIM).
    First,
    /// A binary-named events stream and `stream:expiring` (the one with a TTL).
    Second,
}

impl StreamSet {
    /// The set a mixed db gets: dbs 0 and 1 have streams, the others none.
    pub fn for_db(db: u32) -> Option<StreamSet> {
        match db {
            0 => Some(StreamSet::First),
            1 => Some(StreamSet::Second),
            _ => None,
        }
    }
}

/// What [`fill_streams`] made in one db.
#[derive(Debug, Clone)]
pub struct FilledStreams {
    /// Every stream key it made.
    pub keys: Vec<Vec<u8>>,
    /// The stream the caller must give a TTL (with its own TTL commands).
    pub ttl_key: Option<Vec<u8>>,
    /// Per key, the listpack nodes XINFO STREAM counts (`radix-tree-keys`), for notes.
    pub nodes: Vec<(Vec<u8>, i64)>,
}

fn cmd_text(c: &redis::Cmd) -> String {
    c.args_iter()
        .map(|a| match a {
            redis::Arg::Simple(b) => snippet(&show(b), 40),
            _ => "<cursor>".to_string(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Run one command, panicking with the command on an error reply.
fn run_cmd(conn: &mut Connection, c: &redis::Cmd) -> redis::Value {
    c.query::<redis::Value>(conn)
        .unwrap_or_else(|e| panic!("`{}` failed: {e}", cmd_text(c)))
}

fn cmd_of(parts: &[&[u8]]) -> redis::Cmd {
    let mut c = redis::cmd(std::str::from_utf8(parts[0]).expect("command name"));
    for p in &parts[1..] {
        c.arg(*p);
    }
    c
}

fn int_reply(v: &redis::Value, what: &str) -> i64 {
    match v {
        redis::Value::Int(i) => *i,
        other => panic!("{what}: expected an integer reply, got {other:?}"),
    }
}

/// `field` of a flat field/value array (RESP2 XINFO replies).
fn xinfo_field<'v>(v: &'v redis::Value, field: &str) -> Option<&'v redis::Value> {
    let redis::Value::Array(items) = v else {
        return None;
    };
    items.chunks(2).find_map(|p| match &p[0] {
        redis::Value::BulkString(b) if b == field.as_bytes() => p.get(1),
        redis::Value::SimpleString(s) if s == field => p.get(1),
        _ => None,
    })
}

type StreamFields = Vec<(Vec<u8>, Vec<u8>)>;

/// XADD every (id, fields) in pipelines of 200.
fn xadd_entries(conn: &mut Connection, key: &[u8], entries: &[(String, StreamFields)]) {
    for chunk in entries.chunks(200) {
        let mut p = redis::pipe();
        for (id, fields) in chunk {
            let c = p.cmd("XADD").arg(key).arg(id.as_str());
            for (f, v) in fields {
                c.arg(f.as_slice()).arg(v.as_slice());
            }
            c.ignore();
        }
        p.exec(conn)
            .unwrap_or_else(|e| panic!("XADD pipeline on {}: {e}", show(key)));
    }
}

/// `XREADGROUP GROUP group consumer COUNT count STREAMS key >`; asserts that `count` entries
/// were delivered. Sleeps 2 ms after, so that deliveries differ in time.
fn xreadgroup(conn: &mut Connection, key: &[u8], group: &str, consumer: &str, count: usize) {
    let n = count.to_string();
    let reply = run_cmd(
        conn,
        &cmd_of(&[
            b"XREADGROUP",
            b"GROUP",
            group.as_bytes(),
            consumer.as_bytes(),
            b"COUNT",
            n.as_bytes(),
            b"STREAMS",
            key,
            b">",
        ]),
    );
    // [[key, [entry, …]]]
    let delivered = match &reply {
        redis::Value::Array(streams) => match streams.first() {
            Some(redis::Value::Array(kv)) => match kv.get(1) {
                Some(redis::Value::Array(entries)) => entries.len(),
                _ => 0,
            },
            _ => 0,
        },
        _ => 0,
    };
    assert_eq!(
        delivered,
        count,
        "XREADGROUP {group} {consumer} COUNT {count} on {} delivered {delivered} entries: {}",
        show(key),
        snippet(&format!("{reply:?}"), 300)
    );
    std::thread::sleep(Duration::from_millis(2));
}

/// XACK or XDEL `ids`; asserts the reply counts all of them.
fn xids(conn: &mut Connection, head: &[&[u8]], ids: &[String]) {
    let mut c = cmd_of(head);
    for id in ids {
        c.arg(id.as_str());
    }
    let n = int_reply(&run_cmd(conn, &c), &cmd_text(&c));
    assert_eq!(
        n,
        ids.len() as i64,
        "`{}` should count every ID",
        snippet(&cmd_text(&c), 200)
    );
}

/// Fill `db` with the streams of `set`, with the commands of a 5.0 server (plus XGROUP
/// CREATECONSUMER where `caps` has it): every stream has more than 100 entries over several
/// listpack nodes (asserted with XINFO STREAM's `radix-tree-keys`), one or two consumer groups
/// whose pending entries XREADGROUP made, some of them acknowledged with XACK; some entries
/// are deleted with XDEL (pending ones among them), `stream:trimmed` is cut by an exact XTRIM
/// below entries still pending, and `stream:expiring` is returned as the key the caller must
/// give a TTL. IDs are explicit (with sequence numbers) and deterministic; field values mix
/// integers, text, LZF-compressible text and binary. Leaves the connection on `db`.
pub fn fill_streams(
    conn: &mut Connection,
    db: u32,
    set: StreamSet,
    caps: StreamCaps,
) -> FilledStreams {
    select(conn, db);
    let mut keys: Vec<Vec<u8>> = Vec::new();
    let tag = format!("db{db}");
    let base = 1_700_000_000_000u64 + u64::from(db) * 10_000_000;

    // The events stream: 320 entries, two IDs per millisecond (sequence 0 and 1).
    let events: Vec<u8> = match set {
        StreamSet::First => b"stream:events".to_vec(),
        StreamSet::Second => b"stream:\x00events\xff".to_vec(),
    };
    let id = |i: usize| format!("{}-{}", base + (i / 2) as u64, i % 2);
    let ids = |r: std::ops::Range<usize>| r.map(id).collect::<Vec<String>>();
    let kinds = ["click", "view", "purchase"];
    let entries: Vec<(String, StreamFields)> = (0..320usize)
        .map(|i| {
            let mut f: StreamFields = vec![
                (b"n".to_vec(), i.to_string().into_bytes()),
                (b"kind".to_vec(), kinds[i % 3].as_bytes().to_vec()),
            ];
            if i % 10 == 3 {
                f.push((
                    b"payload".to_vec(),
                    compressible(&format!("{tag}-payload-{i}"), 150 + i % 100),
                ));
            }
            if i % 17 == 5 {
                f.push((
                    b"bin\x00\xff".to_vec(),
                    pseudo_random_bytes(u64::from(db) * 1000 + i as u64, 1 + i % 20),
                ));
            }
            (id(i), f)
        })
        .collect();
    xadd_entries(conn, &events, &entries);
    let k = events.as_slice();
    run_cmd(
        conn,
        &cmd_of(&[b"XGROUP", b"CREATE", k, b"g:workers", b"0"]),
    );
    run_cmd(
        conn,
        &cmd_of(&[b"XGROUP", b"CREATE", k, b"g:audit", id(99).as_bytes()]),
    );
    xreadgroup(conn, k, "g:workers", "alice", 40); // 0..40
    xreadgroup(conn, k, "g:workers", "bob", 25); // 40..65
    if caps.createconsumer {
        let n = int_reply(
            &run_cmd(
                conn,
                &cmd_of(&[b"XGROUP", b"CREATECONSUMER", k, b"g:workers", b"carol"]),
            ),
            "XGROUP CREATECONSUMER",
        );
        assert_eq!(n, 1, "XGROUP CREATECONSUMER carol on {}", show(k));
    }
    xreadgroup(conn, k, "g:audit", "dave", 15); // 100..115
    let mut acked = ids(0..10);
    acked.extend(ids(45..50));
    xids(conn, &[b"XACK", k, b"g:workers"], &acked);
    xids(conn, &[b"XACK", k, b"g:audit"], &ids(100..103));
    // Deleted: pending entries of alice (20..25), the second node's first entry (100, read
    // and acked by g:audit), a run in the second node, and the last entry.
    let mut deleted = ids(20..25);
    deleted.push(id(100));
    deleted.extend(ids(150..160));
    deleted.push(id(319));
    xids(conn, &[b"XDEL", k], &deleted);
    keys.push(events);

    match set {
        StreamSet::First => {
            // Trimmed to its last 120 entries after a consumer read 60 (of which 40 stay
            // pending though trimmed away); a second consumer reads on after the trim.
            let key = b"stream:trimmed".to_vec();
            let k = key.as_slice();
            let tbase = base + 1_000_000;
            let tid = |i: usize| format!("{}-0", tbase + 3 * i as u64);
            let entries: Vec<(String, StreamFields)> = (0..260usize)
                .map(|i| {
                    (
                        tid(i),
                        vec![
                            (b"v".to_vec(), format!("{tag}-t{i}").into_bytes()),
                            (
                                b"i".to_vec(),
                                (i as i64 * 7919 - 500_000).to_string().into_bytes(),
                            ),
                        ],
                    )
                })
                .collect();
            xadd_entries(conn, k, &entries);
            run_cmd(conn, &cmd_of(&[b"XGROUP", b"CREATE", k, b"g:trim", b"0"]));
            xreadgroup(conn, k, "g:trim", "r1", 60);
            xids(
                conn,
                &[b"XACK", k, b"g:trim"],
                &(0..20).map(tid).collect::<Vec<_>>(),
            );
            let trimmed = int_reply(
                &run_cmd(conn, &cmd_of(&[b"XTRIM", k, b"MAXLEN", b"120"])),
                "XTRIM",
            );
            assert_eq!(trimmed, 140, "XTRIM MAXLEN 120 on {}", show(k));
            xreadgroup(conn, k, "g:trim", "r2", 10); // 140..150
            keys.push(key);
        }
        StreamSet::Second => {
            // 150 entries, a group that read 30 and a group created at `$`; the caller gives
            // it a TTL.
            let key = b"stream:expiring".to_vec();
            let k = key.as_slice();
            let ebase = base + 2_000_000;
            let eid = |i: usize| format!("{}-{}", ebase + (i / 3) as u64, i % 3);
            let entries: Vec<(String, StreamFields)> = (0..150usize)
                .map(|i| {
                    (
                        eid(i),
                        vec![
                            (
                                b"temp".to_vec(),
                                format!("{}.5", i as i64 - 40).into_bytes(),
                            ),
                            (b"unit".to_vec(), b"C".to_vec()),
                        ],
                    )
                })
                .collect();
            xadd_entries(conn, k, &entries);
            run_cmd(conn, &cmd_of(&[b"XGROUP", b"CREATE", k, b"g:exp", b"0"]));
            run_cmd(conn, &cmd_of(&[b"XGROUP", b"CREATE", k, b"g:late", b"$"]));
            xreadgroup(conn, k, "g:exp", "x", 30);
            if caps.createconsumer {
                run_cmd(
                    conn,
                    &cmd_of(&[b"XGROUP", b"CREATECONSUMER", k, b"g:late", b"idle"]),
                );
            }
            xids(
                conn,
                &[b"XACK", k, b"g:exp"],
                &(0..5).map(eid).collect::<Vec<_>>(),
            );
            let mut deleted: Vec<String> = (50..55).map(eid).collect();
            deleted.push(eid(10));
            xids(conn, &[b"XDEL", k], &deleted);
            keys.push(key.clone());
        }
    }

    // Several listpack nodes each (stream-node-max-entries is 100).
    let mut nodes = Vec::new();
    for key in &keys {
        let info = run_cmd(conn, &cmd_of(&[b"XINFO", b"STREAM", key]));
        let n = xinfo_field(&info, "radix-tree-keys")
            .map(|v| int_reply(v, "radix-tree-keys"))
            .unwrap_or_else(|| {
                panic!(
                    "XINFO STREAM {} has no radix-tree-keys: {info:?}",
                    show(key)
                )
            });
        let len = xinfo_field(&info, "length")
            .map(|v| int_reply(v, "length"))
            .unwrap_or(0);
        assert!(
            n >= 2 && len > 100,
            "db {db} stream {} should have more than 100 entries in several listpack nodes: \
             length {len}, radix-tree-keys {n}",
            show(key)
        );
        nodes.push((key.clone(), n));
    }
    let ttl_key = (set == StreamSet::Second).then(|| b"stream:expiring".to_vec());
    FilledStreams {
        keys,
        ttl_key,
        nodes,
    }
}

/// What a server answers about one stream's consumer groups (and, with XINFO FULL, its
/// entries), as labelled raw replies.
#[derive(Debug, Clone)]
pub struct StreamProbe {
    pub db: u32,
    pub key: Vec<u8>,
    pub replies: Vec<(String, redis::Value)>,
}

fn idle_marker() -> redis::Value {
    redis::Value::SimpleString("<idle: relative to the server's clock, not compared>".into())
}

/// Probe every stream of `keys`. With `full` (6.0+, Valkey): `XINFO STREAM k FULL COUNT 0`
/// (every entry, group, consumer and PEL entry; its times are absolute Unix ms, so the raw
/// reply must be equal). Without (5.0): `XINFO STREAM k`, `XINFO GROUPS k`, and per group
/// `XINFO CONSUMERS k g` and `XPENDING k g - + 1000` with the idle times (relative to the
/// server's clock) taken out. Looks the keys up; leaves the connection on db 0.
pub fn probe_streams(
    conn: &mut Connection,
    keys: &[(u32, Vec<u8>)],
    full: bool,
) -> Vec<StreamProbe> {
    let mut out = Vec::new();
    for (db, key) in keys {
        select(conn, *db);
        let k = key.as_slice();
        let mut replies = Vec::new();
        if full {
            replies.push((
                "XINFO STREAM FULL COUNT 0".to_string(),
                run_cmd(
                    conn,
                    &cmd_of(&[b"XINFO", b"STREAM", k, b"FULL", b"COUNT", b"0"]),
                ),
            ));
        } else {
            replies.push((
                "XINFO STREAM".to_string(),
                run_cmd(conn, &cmd_of(&[b"XINFO", b"STREAM", k])),
            ));
            let groups = run_cmd(conn, &cmd_of(&[b"XINFO", b"GROUPS", k]));
            let mut names = Vec::new();
            if let redis::Value::Array(gs) = &groups {
                for g in gs {
                    match xinfo_field(g, "name") {
                        Some(redis::Value::BulkString(n)) => names.push(n.clone()),
                        other => panic!("XINFO GROUPS item without a name ({other:?}): {g:?}"),
                    }
                }
            }
            assert!(
                !names.is_empty(),
                "db {db} stream {}: no groups in {groups:?}",
                show(k)
            );
            replies.push(("XINFO GROUPS".to_string(), groups));
            for g in &names {
                let mut consumers = run_cmd(conn, &cmd_of(&[b"XINFO", b"CONSUMERS", k, g]));
                if let redis::Value::Array(cs) = &mut consumers {
                    for c in cs {
                        let redis::Value::Array(f) = c else {
                            panic!("XINFO CONSUMERS item {c:?}")
                        };
                        for i in (0..f.len().saturating_sub(1)).step_by(2) {
                            if matches!(&f[i], redis::Value::BulkString(b) if b == b"idle") {
                                f[i + 1] = idle_marker();
                            }
                        }
                    }
                }
                replies.push((format!("group {}: XINFO CONSUMERS", show(g)), consumers));
                let mut pending = run_cmd(conn, &cmd_of(&[b"XPENDING", k, g, b"-", b"+", b"1000"]));
                if let redis::Value::Array(ps) = &mut pending {
                    for p in ps {
                        let redis::Value::Array(f) = p else {
                            panic!("XPENDING item {p:?}")
                        };
                        assert_eq!(f.len(), 4, "XPENDING item {f:?}");
                        f[2] = idle_marker();
                    }
                }
                replies.push((format!("group {}: XPENDING - + 1000", show(g)), pending));
            }
        }
        out.push(StreamProbe {
            db: *db,
            key: key.clone(),
            replies,
        });
    }
    select(conn, 0);
    out
}

/// A reply as indented lines, for showing where two replies differ.
fn reply_lines(v: &redis::Value, depth: usize, out: &mut Vec<String>) {
    let ind = "  ".repeat(depth);
    match v {
        redis::Value::Array(items) => {
            out.push(format!("{ind}[{} items]", items.len()));
            for it in items {
                reply_lines(it, depth + 1, out);
            }
        }
        redis::Value::BulkString(b) => out.push(format!("{ind}\"{}\"", snippet(&show(b), 80))),
        other => out.push(format!("{ind}{other:?}")),
    }
}

/// The differences between the source's stream probes and a restored server's, one text per
/// differing reply (with the first differing lines), empty when all are equal.
pub fn stream_differences(want: &[StreamProbe], got: &[StreamProbe]) -> Vec<String> {
    let mut bad = Vec::new();
    if want.len() != got.len() {
        bad.push(format!(
            "{} streams probed on the source, {} on the restored server",
            want.len(),
            got.len()
        ));
    }
    for (w, g) in want.iter().zip(got) {
        let name = format!("db {} stream {}", w.db, show(&w.key));
        let wl: Vec<&String> = w.replies.iter().map(|(l, _)| l).collect();
        let gl: Vec<&String> = g.replies.iter().map(|(l, _)| l).collect();
        if wl != gl {
            bad.push(format!(
                "{name}: replies {wl:?} on the source, {gl:?} restored"
            ));
            continue;
        }
        for ((label, a), (_, b)) in w.replies.iter().zip(&g.replies) {
            if a == b {
                continue;
            }
            let (mut la, mut lb) = (Vec::new(), Vec::new());
            reply_lines(a, 1, &mut la);
            reply_lines(b, 1, &mut lb);
            let at = la.iter().zip(&lb).take_while(|(x, y)| x == y).count();
            let from = at.saturating_sub(3);
            let show_lines = |l: &[String]| {
                l.iter()
                    .skip(from)
                    .take(at - from + 4)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join("\n")
            };
            bad.push(format!(
                "{name}: {label} differs at line {} of {} (source) / {} (restored)\n--- source ---\n{}\n--- restored ---\n{}",
                at + 1,
                la.len(),
                lb.len(),
                show_lines(&la),
                show_lines(&lb)
            ));
        }
    }
    bad
}
