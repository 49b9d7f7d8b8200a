//! The streams dataset: every shape of stream the target's version can make, and a few
//! strings, some with a TTL.

use super::*;

/// Fill dbs 0, 1 and 3 with streams (and a few strings) of every shape `t` can make.
pub(super) fn fill(conn: &mut Connection, t: &Target) -> Dataset {
    let mut ds = Dataset {
        streams: Vec::new(),
        others: Vec::new(),
        ttl_keys: Vec::new(),
    };

    // ---- db 0 ----
    select(conn, 0);

    // s:main: 300 entries in 3 nodes (stream-node-max-entries 100), some with an extra field
    // (not the master entry's fields); groups at 0, at $ and at an ID.
    let key: &[u8] = b"s:main";
    let ids = xadd_all(
        conn,
        key,
        &auto(300, |i| {
            let mut f = kv(&[("f1", format!("v{i}")), ("f2", i.to_string())]);
            if i % 7 == 0 {
                f.extend(kv(&[("extra", format!("x{i}"))]));
            }
            f
        }),
    );
    let id = |i: usize| ids[i].as_bytes();
    r(conn, &[b"XGROUP", b"CREATE", key, b"g-all", b"0"]);
    r(conn, &[b"XGROUP", b"CREATE", key, b"g-tail", b"$"]);
    r(conn, &[b"XGROUP", b"CREATE", key, b"g-mid", id(149)]);
    xreadgroup(conn, key, b"g-all", b"alice", 20); // ids 0..20
    xreadgroup(conn, key, b"g-all", b"bob", 30); // ids 20..50
    xreadgroup(conn, key, b"g-mid", b"carol", 5); // ids 150..155
    r(
        conn,
        &[
            b"XREADGROUP",
            b"GROUP",
            b"g-mid",
            b"nobody",
            b"COUNT",
            b"7",
            b"NOACK",
            b"STREAMS",
            key,
            b">",
        ],
    );
    if t.has_createconsumer() {
        r(
            conn,
            &[b"XGROUP", b"CREATECONSUMER", key, b"g-tail", b"dave"],
        );
    }
    xadd_all(
        conn,
        key,
        &auto(10, |i| {
            kv(&[("f1", format!("late{i}")), ("f2", "0".into())])
        }),
    );
    xreadgroup(conn, key, b"g-tail", b"erin", 3);
    let mut ack: Vec<&[u8]> = vec![b"XACK", key, b"g-all"];
    ack.extend((0..10).map(id));
    r(conn, &ack);
    tick();
    r(
        conn,
        &[b"XCLAIM", key, b"g-all", b"alice", b"0", id(25), id(26)],
    );
    tick();
    // bob reads his history again: delivery counts and times change.
    r(
        conn,
        &[
            b"XREADGROUP",
            b"GROUP",
            b"g-all",
            b"bob",
            b"STREAMS",
            key,
            b"0",
        ],
    );
    // Deleted: 45..60 (the middle of the first node, bob's pending 45..49 among them), the
    // second node's master entry (100), one of carol's pending (152), the second node's last.
    let mut del: Vec<&[u8]> = vec![b"XDEL", key];
    del.extend((45..60).map(id));
    del.extend([id(100), id(152), id(199)]);
    r(conn, &del);
    ds.streams.push((0, key.to_vec()));

    // s:explicit: explicit IDs with sequence numbers; integer-looking and odd values.
    let key: &[u8] = b"s:explicit";
    let odd = [
        "9223372036854775807",
        "-9223372036854775808",
        "3.14",
        "007",
        "",
        "-1",
        "4294967296",
    ];
    let mut entries = Vec::new();
    for i in 1..=60usize {
        entries.push((format!("{i}-1"), kv(&[("a", i.to_string())])));
        entries.push((
            format!("{i}-7"),
            kv(&[
                ("a", odd[i % odd.len()].to_string()),
                ("b", format!("-{i}")),
            ]),
        ));
    }
    for i in 1..=60usize {
        entries.push((format!("{}-{i}", 1000 + i), kv(&[("c", format!("{i}"))])));
    }
    xadd_all(conn, key, &entries);
    r(conn, &[b"XGROUP", b"CREATE", key, b"g", b"0"]);
    xreadgroup(conn, key, b"g", b"x", 50);
    r(conn, &[b"XGROUP", b"CREATE", key, b"g-set", b"5-7"]);
    if t.has_v7() {
        r(
            conn,
            &[
                b"XGROUP",
                b"SETID",
                key,
                b"g-set",
                b"1010-10",
                b"ENTRIESREAD",
                b"130",
            ],
        );
    } else {
        r(conn, &[b"XGROUP", b"SETID", key, b"g-set", b"1010-10"]);
    }
    xreadgroup(conn, key, b"g-set", b"y", 4);
    r(conn, &[b"XDEL", key, b"30-7", b"31-1", b"1002-2"]);
    ds.streams.push((0, key.to_vec()));

    // A binary key with binary field names, values, group and consumer names.
    let key = BIN_KEY;
    xadd_all(
        conn,
        key,
        &auto(130, |i| {
            vec![
                (
                    pseudo_random_bytes(i as u64, 1 + i % 13),
                    pseudo_random_bytes(10_000 + i as u64, i % 40),
                ),
                (
                    b"\x00\xff".to_vec(),
                    (i * 1_000_003).to_string().into_bytes(),
                ),
            ]
        }),
    );
    r(conn, &[b"XGROUP", b"CREATE", key, b"g\x00\xff", b"0"]);
    xreadgroup(conn, key, b"g\x00\xff", b"c\x01\x02\xfe", 40);
    xreadgroup(conn, key, b"g\x00\xff", b"\xffc2", 3);
    ds.streams.push((0, key.to_vec()));

    // s:big: every tenth value 3-6 KB, so nodes are also cut by stream-node-max-bytes.
    let key: &[u8] = b"s:big";
    xadd_all(
        conn,
        key,
        &auto(110, |i| {
            let v = if i % 10 == 0 {
                pseudo_random_bytes(20_000 + i as u64, 3000 + (i * 37) % 3000)
            } else {
                format!("small{i}").into_bytes()
            };
            vec![
                (b"v".to_vec(), v),
                (b"n".to_vec(), i.to_string().into_bytes()),
            ]
        }),
    );
    r(conn, &[b"XGROUP", b"CREATE", key, b"g", b"0"]);
    xreadgroup(conn, key, b"g", b"r", 15);
    ds.streams.push((0, key.to_vec()));

    r(
        conn,
        &[b"SET", b"ttl0", b"expiring value", b"PX", b"3600000"],
    );
    ds.others.push((0, b"ttl0".to_vec()));
    ds.ttl_keys.push((0, b"ttl0".to_vec()));

    // ---- db 1 ----
    select(conn, 1);

    // s:trim: trimmed to 70 (exactly) after a consumer read 30 of the trimmed-away entries.
    let key: &[u8] = b"s:trim";
    xadd_all(conn, key, &auto(250, |i| kv(&[("n", i.to_string())])));
    r(conn, &[b"XGROUP", b"CREATE", key, b"g", b"0"]);
    xreadgroup(conn, key, b"g", b"r1", 30);
    r(conn, &[b"XGROUP", b"CREATE", key, b"g-after", b"$"]);
    if t.has_createconsumer() {
        r(
            conn,
            &[b"XGROUP", b"CREATECONSUMER", key, b"g-after", b"idle"],
        );
    }
    r(conn, &[b"XTRIM", key, b"MAXLEN", b"70"]);
    ds.streams.push((1, key.to_vec()));

    // s:empty: emptied by XDEL, with a group whose PEL names deleted entries.
    let key: &[u8] = b"s:empty";
    let ids = xadd_all(conn, key, &auto(5, |i| kv(&[("e", i.to_string())])));
    r(conn, &[b"XGROUP", b"CREATE", key, b"g", b"0"]);
    xreadgroup(conn, key, b"g", b"r", 2);
    let mut del: Vec<&[u8]> = vec![b"XDEL", key];
    del.extend(ids.iter().map(|s| s.as_bytes()));
    r(conn, &del);
    ds.streams.push((1, key.to_vec()));

    // s:empty-nogroups: emptied by XDEL, no groups.
    let key: &[u8] = b"s:empty-nogroups";
    let ids = xadd_all(conn, key, &auto(3, |i| kv(&[("e", i.to_string())])));
    let mut del: Vec<&[u8]> = vec![b"XDEL", key];
    del.extend(ids.iter().map(|s| s.as_bytes()));
    r(conn, &del);
    ds.streams.push((1, key.to_vec()));

    // s:maxlen0: created empty, with a last ID.
    let key: &[u8] = b"s:maxlen0";
    r(conn, &[b"XADD", key, b"MAXLEN", b"0", b"*", b"f", b"v"]);
    ds.streams.push((1, key.to_vec()));

    r(conn, &[b"SET", b"plain", b"v"]);
    r(conn, &[b"SET", b"num", b"12345"]);
    r(conn, &[b"SET", b"ttl1", b"x", b"PX", b"7200000"]);
    for k in [&b"plain"[..], b"num", b"ttl1"] {
        ds.others.push((1, k.to_vec()));
    }
    ds.ttl_keys.push((1, b"ttl1".to_vec()));

    // ---- db 3: only a stream ----
    select(conn, 3);
    // s:meta: last ID moved ahead with XSETID; on 7.0+ also entries-added, max-deleted-id and
    // a group created with ENTRIESREAD.
    let key: &[u8] = b"s:meta";
    let ids = xadd_all(conn, key, &auto(120, |i| kv(&[("k", i.to_string())])));
    r(conn, &[b"XGROUP", b"CREATE", key, b"g", b"0"]);
    if t.has_v7() {
        r(
            conn,
            &[
                b"XGROUP",
                b"CREATE",
                key,
                b"g-er",
                ids[59].as_bytes(),
                b"ENTRIESREAD",
                b"60",
            ],
        );
    } else {
        r(
            conn,
            &[b"XGROUP", b"CREATE", key, b"g-er", ids[59].as_bytes()],
        );
    }
    xreadgroup(conn, key, b"g-er", b"m", 10);
    let mut del: Vec<&[u8]> = vec![b"XDEL", key];
    del.extend(ids[..5].iter().map(|s| s.as_bytes()));
    r(conn, &del);
    if t.has_v7() {
        r(
            conn,
            &[
                b"XSETID",
                key,
                b"99999999999999-5",
                b"ENTRIESADDED",
                b"500",
                b"MAXDELETEDID",
                ids[100].as_bytes(),
            ],
        );
    } else {
        r(conn, &[b"XSETID", key, b"99999999999999-5"]);
    }
    ds.streams.push((3, key.to_vec()));

    select(conn, 0);
    ds
}
