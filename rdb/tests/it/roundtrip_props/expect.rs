//! Writing a model with the crate's writer, and what its reader must give back: the blobs the
//! writer takes as they are (stream listpacks, module ids), the expected values and streams,
//! and the check of a written file against them.

use super::*;

/// A ziplist of `items`; with `big`, every second entry's prevlen takes the 5-byte form.
pub(super) fn ziplist_alt(items: &[It], big: bool) -> Vec<u8> {
    let flags: Vec<bool> = (0..items.len()).map(|k| big && k % 2 == 1).collect();
    ziplist(items, &flags)
}

pub(super) fn id_raw((ms, seq): (u64, u64)) -> [u8; 16] {
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&ms.to_be_bytes());
    b[8..].copy_from_slice(&seq.to_be_bytes());
    b
}

pub(super) fn sid((ms, seq): (u64, u64)) -> StreamId {
    StreamId { ms, seq }
}

/// The listpack of a stream node: the master entry, then each entry with its flags, ID
/// deltas, fields and element count (Redis's `streamAppendItem`).
pub(super) fn stream_listpack(node: &SNode) -> Vec<u8> {
    let live = node.entries.iter().filter(|e| !e.deleted).count();
    let dead = node.entries.len() - live;
    let mut items = vec![
        It::Int(live as i64),
        It::Int(dead as i64),
        It::Int(node.master_fields.len() as i64),
    ];
    items.extend(node.master_fields.iter().cloned());
    items.push(It::Int(0));
    for e in &node.entries {
        let mut flags = i64::from(e.deleted);
        if matches!(e.fields, SFields::Same(_)) {
            flags |= 2;
        }
        items.extend([It::Int(flags), It::Int(e.ms_diff), It::Int(e.seq_diff)]);
        let count = match &e.fields {
            SFields::Same(values) => {
                items.extend(values.iter().cloned());
                3 + values.len()
            }
            SFields::Own(pairs) => {
                items.push(It::Int(pairs.len() as i64));
                for (f, v) in pairs {
                    items.extend([f.clone(), v.clone()]);
                }
                4 + 2 * pairs.len()
            }
        };
        items.push(It::Int(count as i64));
    }
    listpack(&items)
}

pub(super) const MODULE_CHARSET: &[u8; 64] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

pub(super) fn module_id(name: &[usize], encver: u32) -> u64 {
    let sig = name.iter().fold(0u64, |id, &c| (id << 6) | c as u64);
    (sig << 10) | u64::from(encver)
}

/// The object type of a value.
pub(super) fn value_type(v: &Val) -> ValueType {
    match v {
        Val::Str(_) | Val::IntStr(_) | Val::LzfStr(_) => ValueType::String,
        Val::List(_) => ValueType::List,
        Val::Set(_) => ValueType::Set,
        Val::Zset(_, false) => ValueType::Zset,
        Val::Zset(_, true) => ValueType::Zset2,
        Val::Hash(_) => ValueType::Hash,
        Val::Zipmap(..) => ValueType::HashZipmap,
        Val::ListZiplist(..) => ValueType::ListZiplist,
        Val::Intset(..) => ValueType::SetIntset,
        Val::ZsetZiplist(..) => ValueType::ZsetZiplist,
        Val::HashZiplist(..) => ValueType::HashZiplist,
        Val::Quicklist(_) => ValueType::ListQuicklist,
        Val::HashListpack(_) => ValueType::HashListpack,
        Val::ZsetListpack(_) => ValueType::ZsetListpack,
        Val::Quicklist2(_) => ValueType::ListQuicklist2,
        Val::SetListpack(_) => ValueType::SetListpack,
        Val::Stream(s) => s.ty,
        Val::HashMetadata(..) => ValueType::HashMetadata,
        Val::HashListpackEx(..) => ValueType::HashListpackEx,
        Val::Hash2(..) => ValueType::Hash2,
        Val::Module(..) => ValueType::Module2,
    }
}

/// Whether RDB `v` has what Redis introduced in RDB `since`, from the format's history
/// (not from the crate): Redis's versions have everything up to their number; Valkey 9's 80
/// descends from RDB 11 and has nothing of 12 or 13.
pub(super) fn has(v: u32, since: u32) -> bool {
    if v == 80 {
        since <= 11
    } else {
        v >= since
    }
}

/// Whether RDB `v` holds object type `t`, from the format's history (not from the crate).
pub(super) fn type_in_version(t: ValueType, v: u32) -> bool {
    let since = match t.code() {
        0..=4 => 1,
        9..=12 => 2,
        13 => 6,
        14 => 7,
        5 | 7 => 8,
        15 => 9,
        16..=19 => 10,
        20 | 21 => 11,
        22 => return v == 80,
        24 | 25 => 12,
        26 => 13,
        other => panic!("unexpected type {other}"),
    };
    has(v, since)
}

pub(super) fn write_value(v: &Val, r: &mut RecordBuilder) {
    let flat = |pairs: &[(It, It)]| -> Vec<It> {
        pairs
            .iter()
            .flat_map(|(a, b)| [a.clone(), b.clone()])
            .collect()
    };
    let zflat = |pairs: &[(It, f64, ScoreForm)]| -> Vec<It> {
        pairs
            .iter()
            .flat_map(|(m, s, f)| [m.clone(), score_item(*s, *f)])
            .collect()
    };
    match v {
        Val::Str(s) => r.string(s),
        Val::IntStr(i) => r.int_string(*i),
        Val::LzfStr(s) => match lzf_crate_compress(s) {
            Some(c) => r.lzf_blob(&c, s.len() as u64),
            None => r.string(s),
        },
        Val::List(v) | Val::Set(v) => {
            r.len(v.len() as u64);
            for e in v {
                r.string(e);
            }
        }
        Val::Zset(m, binary) => {
            r.len(m.len() as u64);
            for (k, s) in m {
                r.string(k);
                if *binary {
                    r.binary_double(*s);
                } else {
                    r.string_double(*s);
                }
            }
        }
        Val::Hash(p) => {
            r.len(p.len() as u64);
            for (k, v) in p {
                r.string(k);
                r.string(v);
            }
        }
        Val::Zipmap(p, unknown) => r.string(&zipmap(p, *unknown)),
        Val::ListZiplist(items, big) => r.string(&ziplist_alt(items, *big)),
        Val::Intset(s, w) => r.string(&intset(s, *w)),
        Val::ZsetZiplist(p, big) => r.string(&ziplist_alt(&zflat(p), *big)),
        Val::HashZiplist(p, big) => r.string(&ziplist_alt(&flat(p), *big)),
        Val::Quicklist(nodes) => {
            r.len(nodes.len() as u64);
            for (items, big) in nodes {
                r.string(&ziplist_alt(items, *big));
            }
        }
        Val::HashListpack(p) => r.string(&listpack(&flat(p))),
        Val::ZsetListpack(p) => r.string(&listpack(&zflat(p))),
        Val::Quicklist2(nodes) => {
            r.len(nodes.len() as u64);
            for n in nodes {
                match n {
                    QlNode::Plain(b) => {
                        r.len(1);
                        r.string(b);
                    }
                    QlNode::Packed(items) => {
                        r.len(2);
                        r.string(&listpack(items));
                    }
                }
            }
        }
        Val::SetListpack(items) => r.string(&listpack(items)),
        Val::Stream(s) => write_stream(s, r),
        Val::HashMetadata(min, fields) => {
            r.millis(*min);
            r.len(fields.len() as u64);
            for f in fields {
                r.len(f.offset.map_or(0, |o| o + 1));
                r.string(&f.field);
                r.string(&f.value);
            }
        }
        Val::HashListpackEx(min, triplets) => {
            r.millis(*min);
            let items: Vec<It> = triplets
                .iter()
                .flat_map(|(f, v, ttl)| [f.clone(), v.clone(), It::Int(*ttl)])
                .collect();
            r.string(&listpack(&items));
        }
        Val::Hash2(fields) => {
            r.len(fields.len() as u64);
            for (f, v, t) in fields {
                r.hash2_field(f, v, *t).unwrap();
            }
        }
        Val::Module(name, encver, ops) => {
            r.len(module_id(name, *encver));
            write_mod_ops(ops, r);
        }
    }
}

pub(super) fn write_stream(s: &SModel, r: &mut RecordBuilder) {
    let v2 = s.ty != ValueType::StreamListpacks;
    let v3 = matches!(
        s.ty,
        ValueType::StreamListpacks3 | ValueType::StreamListpacks4
    );
    let id = |r: &mut RecordBuilder, (ms, seq): (u64, u64)| {
        r.len(ms);
        r.len(seq);
    };
    r.len(s.nodes.len() as u64);
    for n in &s.nodes {
        r.string(&id_raw(n.master));
        r.string(&stream_listpack(n));
    }
    r.len(s.length);
    id(r, s.last);
    if v2 {
        id(r, s.first);
        id(r, s.max_deleted);
        r.len(s.added);
    }
    r.len(s.groups.len() as u64);
    for g in &s.groups {
        r.string(&g.name);
        id(r, g.last);
        if v2 {
            r.len(g.read);
        }
        r.len(g.pel.len() as u64);
        for p in &g.pel {
            r.raw(&id_raw(p.id));
            r.millis(p.delivery_time);
            r.len(p.delivery_count);
        }
        r.len(g.consumers.len() as u64);
        for c in &g.consumers {
            r.string(&c.name);
            r.millis(c.seen);
            if v3 {
                r.millis(c.active);
            }
            let pending: Vec<(u64, u64)> = if g.pel.is_empty() {
                Vec::new()
            } else {
                c.pending
                    .iter()
                    .map(|i| g.pel[i.index(g.pel.len())].id)
                    .collect()
            };
            r.len(pending.len() as u64);
            for p in pending {
                r.raw(&id_raw(p));
            }
        }
    }
    if s.ty == ValueType::StreamListpacks4 {
        let i = &s.idmp;
        let config = StreamIdmpConfig::new(i.duration, i.max_entries).unwrap();
        r.stream_idmp(
            config,
            i.producers
                .iter()
                .map(|(pid, iids)| (pid, iids.iter().map(|(iid, id)| (iid, sid(*id))))),
            i.added,
            i.duplicates,
        );
    }
}

pub(super) fn expected_stream(s: &SModel) -> Stream {
    let v2 = s.ty != ValueType::StreamListpacks;
    let v3 = matches!(
        s.ty,
        ValueType::StreamListpacks3 | ValueType::StreamListpacks4
    );
    let mut entries = Vec::new();
    for n in &s.nodes {
        for e in n.entries.iter().filter(|e| !e.deleted) {
            let fields = match &e.fields {
                SFields::Same(values) => n
                    .master_fields
                    .iter()
                    .zip(values)
                    .map(|(f, v)| (f.text(), v.text()))
                    .collect(),
                SFields::Own(pairs) => pairs.iter().map(|(f, v)| (f.text(), v.text())).collect(),
            };
            entries.push(StreamEntry {
                id: StreamId {
                    ms: n.master.0.wrapping_add(e.ms_diff as u64),
                    seq: n.master.1.wrapping_add(e.seq_diff as u64),
                },
                fields,
            });
        }
    }
    let groups = s
        .groups
        .iter()
        .map(|g| StreamGroup {
            name: g.name.clone(),
            last_id: sid(g.last),
            entries_read: v2.then_some(g.read),
            pending: g
                .pel
                .iter()
                .map(|p| StreamPending {
                    id: sid(p.id),
                    delivery_time: p.delivery_time,
                    delivery_count: p.delivery_count,
                })
                .collect(),
            consumers: g
                .consumers
                .iter()
                .map(|c| StreamConsumer {
                    name: c.name.clone(),
                    seen_time: c.seen,
                    active_time: v3.then_some(c.active),
                    pending: if g.pel.is_empty() {
                        Vec::new()
                    } else {
                        c.pending
                            .iter()
                            .map(|i| sid(g.pel[i.index(g.pel.len())].id))
                            .collect()
                    },
                })
                .collect(),
        })
        .collect();
    Stream {
        entries,
        length: s.length,
        last_id: sid(s.last),
        first_id: v2.then_some(sid(s.first)),
        max_deleted_id: v2.then_some(sid(s.max_deleted)),
        entries_added: v2.then_some(s.added),
        groups,
        idmp: (s.ty == ValueType::StreamListpacks4).then(|| StreamIdmp {
            config: StreamIdmpConfig::new(s.idmp.duration, s.idmp.max_entries).unwrap(),
            producers: s
                .idmp
                .producers
                .iter()
                .map(|(pid, iids)| StreamProducer {
                    pid: pid.clone(),
                    iids: iids
                        .iter()
                        .map(|(iid, id)| StreamIid {
                            iid: iid.clone(),
                            id: sid(*id),
                        })
                        .collect(),
                })
                .collect(),
            iids_added: s.idmp.added,
            iids_duplicates: s.idmp.duplicates,
        }),
    }
}

/// The value the reader must return for `v`.
pub(super) fn expected_value(v: &Val) -> RdbValue {
    let texts = |items: &[It]| items.iter().map(It::text).collect::<Vec<_>>();
    let pairs = |p: &[(It, It)]| {
        p.iter()
            .map(|(a, b)| (a.text(), b.text()))
            .collect::<Vec<_>>()
    };
    let zpairs =
        |p: &[(It, f64, ScoreForm)]| p.iter().map(|(m, s, _)| (m.text(), *s)).collect::<Vec<_>>();
    match v {
        Val::Str(s) | Val::LzfStr(s) => RdbValue::String(s.clone()),
        Val::IntStr(i) => RdbValue::String(i.to_string().into_bytes()),
        Val::List(v) => RdbValue::List(v.clone()),
        Val::Set(v) => RdbValue::Set(v.clone()),
        Val::Zset(m, _) => RdbValue::Zset(m.clone()),
        Val::Hash(p) => RdbValue::Hash(p.clone()),
        Val::Zipmap(p, _) => {
            RdbValue::Hash(p.iter().map(|(k, v, _)| (k.clone(), v.clone())).collect())
        }
        Val::ListZiplist(items, _) => RdbValue::List(texts(items)),
        Val::Intset(s, _) => RdbValue::Set(s.iter().map(|v| v.to_string().into_bytes()).collect()),
        Val::ZsetZiplist(p, _) => RdbValue::Zset(zpairs(p)),
        Val::HashZiplist(p, _) => RdbValue::Hash(pairs(p)),
        Val::Quicklist(nodes) => {
            RdbValue::List(nodes.iter().flat_map(|(items, _)| texts(items)).collect())
        }
        Val::HashListpack(p) => RdbValue::Hash(pairs(p)),
        Val::ZsetListpack(p) => RdbValue::Zset(zpairs(p)),
        Val::Quicklist2(nodes) => RdbValue::List(
            nodes
                .iter()
                .flat_map(|n| match n {
                    QlNode::Plain(b) => vec![b.clone()],
                    QlNode::Packed(items) => texts(items),
                })
                .collect(),
        ),
        Val::SetListpack(items) => RdbValue::Set(texts(items)),
        Val::Stream(s) => RdbValue::Stream(Box::new(expected_stream(s))),
        Val::HashMetadata(min, fields) => RdbValue::HashWithTtl(
            fields
                .iter()
                .map(|f| HashField {
                    field: f.field.clone(),
                    value: f.value.clone(),
                    expire_ms: f.offset.map(|o| min.saturating_add(o as i64)),
                })
                .collect(),
        ),
        Val::HashListpackEx(_, triplets) => RdbValue::HashWithTtl(
            triplets
                .iter()
                .map(|(f, v, ttl)| HashField {
                    field: f.text(),
                    value: v.text(),
                    expire_ms: (*ttl != 0).then_some(*ttl),
                })
                .collect(),
        ),
        Val::Hash2(fields) => RdbValue::HashWithTtl(
            fields
                .iter()
                .map(|(f, v, t)| HashField {
                    field: f.clone(),
                    value: v.clone(),
                    expire_ms: t.map(|t| t as i64),
                })
                .collect(),
        ),
        Val::Module(name, encver, _) => RdbValue::Module(ModuleValue {
            type_name: name
                .iter()
                .map(|&c| char::from(MODULE_CHARSET[c]))
                .collect(),
            encver: *encver,
        }),
    }
}

/// The scores of a zset value as bit patterns (so that -0 and 0 differ), else `None`.
pub(super) fn score_bits(v: &RdbValue) -> Option<Vec<u64>> {
    match v {
        RdbValue::Zset(m) => Some(m.iter().map(|(_, s)| s.to_bits()).collect()),
        _ => None,
    }
}

/// Everything the reader should report for a file.
pub(super) struct Expected {
    pub(super) entries: Vec<Entry>,
    pub(super) aux: Vec<(Vec<u8>, Vec<u8>)>,
    pub(super) functions: u64,
    pub(super) resize_hints: Vec<(u32, u64, u64)>,
    /// `bytes_written()` just before `finish`.
    pub(super) body_len: u64,
}

/// Writes `f`, checking on the way that every call the file's version cannot hold is
/// refused without writing anything, and returns the file and what must come back.
pub(super) fn write_file(f: &File) -> Result<(Vec<u8>, Expected), TestCaseError> {
    let v = f.version;
    let mut w = RdbWriter::new(Vec::new(), v).unwrap();
    prop_assert_eq!(w.bytes_written(), 9);
    let mut exp = Expected {
        entries: Vec::new(),
        aux: Vec::new(),
        functions: 0,
        resize_hints: Vec::new(),
        body_len: 0,
    };
    // A refusal must name the file's version and exactly the versions `holds` accepts.
    let refused =
        |r: Result<(), RdbError>, holds: &dyn Fn(u32) -> bool| -> Result<(), TestCaseError> {
            let want = rdb::consts::describe_versions(holds);
            match r {
                Err(RdbError::NotInVersion {
                    version, holders, ..
                }) => {
                    prop_assert_eq!(holders, want);
                    prop_assert_eq!(version, v);
                    Ok(())
                }
                other => Err(TestCaseError::fail(format!(
                    "RDB {v} must refuse a feature of RDB {want}, got {other:?}"
                ))),
            }
        };
    for a in &f.aux {
        let before = w.bytes_written();
        let (r, k, val) = match a {
            Aux::Str(k, val) => (w.aux(k, val), k, val.clone()),
            Aux::Int(k, i) => (w.aux_int(k, *i), k, i.to_string().into_bytes()),
        };
        if has(v, 7) {
            r.unwrap();
            if exp.aux.len() < 64 && val.len() <= 4096 {
                exp.aux.push((k.clone(), val));
            }
        } else {
            refused(r, &|x| has(x, 7))?;
            prop_assert_eq!(w.bytes_written(), before);
        }
    }
    for code in &f.functions {
        let before = w.bytes_written();
        let r = w.function(code);
        if has(v, 10) {
            r.unwrap();
            exp.functions += 1;
        } else {
            refused(r, &|x| has(x, 10))?;
            prop_assert_eq!(w.bytes_written(), before);
        }
    }
    for db in &f.dbs {
        w.select_db(u64::from(db.db)).unwrap();
        if let Some((keys, expires)) = db.resize {
            let before = w.bytes_written();
            let r = w.resize_db(keys, expires);
            if has(v, 7) {
                r.unwrap();
                exp.resize_hints.push((db.db, keys, expires));
            } else {
                refused(r, &|x| has(x, 7))?;
                prop_assert_eq!(w.bytes_written(), before);
            }
        }
        for rec in &db.recs {
            let mut r = RecordBuilder::new(rec.compress);
            // The newest key opcode, then the type: what a refusal names first.
            let mut opcodes = 1;
            if let Some(ms) = rec.expire {
                r.expire_ms(ms);
                opcodes = opcodes.max(6);
            }
            if let Some(secs) = rec.idle {
                r.idle(secs);
                opcodes = opcodes.max(9);
            }
            if let Some(c) = rec.freq {
                r.freq(c);
                opcodes = opcodes.max(9);
            }
            let ty = value_type(&rec.val);
            r.value_type(ty);
            r.key(&rec.key);
            write_value(&rec.val, &mut r);
            let idmp = matches!(&rec.val, Val::Stream(s) if s.ty == ValueType::StreamListpacks4);
            let holds = |x: u32| has(x, opcodes) && type_in_version(ty, x) && (!idmp || has(x, 13));
            for x in rdb::consts::RDB_VERSIONS {
                prop_assert_eq!(r.fits(x), holds(x), "RDB {}", x);
            }
            prop_assert_eq!(r.written_value_type(), Some(ty));
            let before = w.bytes_written();
            let res = w.record(&r);
            if holds(v) {
                res.unwrap();
                prop_assert_eq!(w.bytes_written(), before + r.byte_len() as u64);
                exp.entries.push(Entry {
                    db: db.db,
                    key: rec.key.clone(),
                    expire_ms: rec.expire,
                    idle: rec.idle,
                    freq: rec.freq,
                    rdb_type: ty.code(),
                    value: expected_value(&rec.val),
                });
            } else if !has(v, opcodes) {
                refused(res, &|x| has(x, opcodes))?;
                prop_assert_eq!(w.bytes_written(), before);
            } else {
                refused(res, &|x| type_in_version(ty, x))?;
                prop_assert_eq!(w.bytes_written(), before);
            }
        }
    }
    exp.body_len = w.bytes_written();
    Ok((w.finish().unwrap(), exp))
}

/// CRC-64/Redis from the `crc` crate (an implementation independent of `rdb::crc`).
pub(super) fn crc_oracle(data: &[u8]) -> u64 {
    crc::Crc::<u64>::new(&crc::CRC_64_REDIS).checksum(data)
}

/// Every entry of `file`, and the reader (for its AUX fields, hints, checksum…).
pub(super) fn read_all(file: &[u8]) -> Result<(Vec<Entry>, RdbReader<&[u8]>), ReadError> {
    let mut r = RdbReader::new(file)?;
    let mut out = Vec::new();
    while let Some(e) = r.next_entry()? {
        out.push(e);
    }
    Ok((out, r))
}

/// Reads `file` back and compares everything with `exp`.
pub(super) fn check_file(version: u32, file: &[u8], exp: &Expected) -> Result<(), TestCaseError> {
    let trailer = if version >= 5 { 8 } else { 0 };
    prop_assert_eq!(file.len() as u64, exp.body_len + 1 + trailer);
    let magic = if version == 80 {
        "VALKEY080".to_owned()
    } else {
        format!("REDIS{version:04}")
    };
    prop_assert_eq!(&file[..9], magic.as_bytes());
    let (entries, r) = match read_all(file) {
        Ok(x) => x,
        Err(e) => return Err(TestCaseError::fail(format!("read failed: {e}"))),
    };
    prop_assert_eq!(r.version(), version);
    prop_assert_eq!(entries.len(), exp.entries.len());
    for (got, want) in entries.iter().zip(&exp.entries) {
        prop_assert_eq!(got, want);
        prop_assert_eq!(score_bits(&got.value), score_bits(&want.value));
    }
    prop_assert_eq!(r.aux(), &exp.aux[..]);
    prop_assert_eq!(r.functions(), exp.functions);
    prop_assert_eq!(r.resize_hints(), &exp.resize_hints[..]);
    prop_assert_eq!(r.keys_read(), exp.entries.len() as u64);
    prop_assert_eq!(r.offset(), file.len() as u64);
    let body = &file[..file.len() - trailer as usize];
    prop_assert_eq!(body.last(), Some(&0xFF));
    if version >= 5 {
        let crc = crc_oracle(body);
        prop_assert_eq!(&file[body.len()..], &crc.to_le_bytes()[..]);
        prop_assert_eq!(rdb::crc64(body), crc);
        prop_assert_eq!(r.checksum(), Some(Checksum::Verified(crc)));
    } else {
        prop_assert_eq!(r.checksum(), Some(Checksum::Absent));
    }
    Ok(())
}
