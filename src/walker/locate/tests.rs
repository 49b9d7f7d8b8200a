//! Unit tests of `locate`.

use super::*;
use crate::core::address_space::single_segment;
use crate::profile::{self, Layout};

/// Where the synthetic process lives: an "executable image" first, then a "heap".
const BASE: u64 = 0x40_0000;
/// Length of the image region (holds up to two `server` structs of 7.0.15).
const IMAGE: usize = 0x3000;
const SERVER: usize = 0x800;
const DB_ARRAY: usize = 0x3000;
const DICTS: usize = 0x4000;
const DICT_TYPE: usize = 0x5000;
const BUCKETS: usize = 0x5100;
const ENTRIES: usize = 0x5200;
const KEYS: usize = 0x5400;
const OBJECTS: usize = 0x5800;
const MEM: usize = 0x7000;
/// A static in the image holding the functions context pointer.
const HOLDER: usize = 0x2f00;
const FN_CTX: usize = 0x6000;
const FN_DICTS: usize = 0x6100;
const FN_TABLE: usize = 0x6200;

fn layout() -> Layout {
    Layout::resolve(&profile::load("7.0.15-debian").unwrap()).unwrap()
}

fn put(m: &mut [u8], off: usize, v: u64) {
    m[off..off + 8].copy_from_slice(&v.to_le_bytes());
}

fn at(off: usize) -> u64 {
    BASE + off as u64
}

/// A 7.0.15 process: `server` at SERVER with `dbnum` dbs; db 0 holds `keys` integer
/// strings (`key:i` → i) in a 16-bucket table, unless `garbage_keys`, where its table
/// points at entries whose keys are not sds strings.
fn process(l: &Layout, dbnum: u64, keys: u64, garbage_keys: bool) -> Vec<u8> {
    let mut m = vec![0u8; MEM];
    let s = SERVER;
    put(&mut m, s + l.server.db.offset as usize, at(DB_ARRAY));
    m[s + l.server.dbnum.offset as usize..][..4].copy_from_slice(&(dbnum as u32).to_le_bytes());
    let d = &l.dict;
    for i in 0..dbnum as usize {
        let db = DB_ARRAY + i * l.db.size as usize;
        let keys_dict = DICTS + i * 128;
        let expires_dict = keys_dict + 64;
        put(&mut m, db + l.db.dict.offset as usize, at(keys_dict));
        put(&mut m, db + l.db.expires.offset as usize, at(expires_dict));
        m[db + l.db.id.offset as usize..][..4].copy_from_slice(&(i as u32).to_le_bytes());
        for dict in [keys_dict, expires_dict] {
            put(&mut m, dict, at(DICT_TYPE));
            put(&mut m, dict + d.rehashidx.offset as usize, u64::MAX);
            m[dict + d.ht_size_exp.offset as usize] = 0xff;
            m[dict + d.ht_size_exp.offset as usize + 1] = 0xff;
        }
    }
    if keys > 0 {
        let dict = DICTS;
        put(&mut m, dict + d.ht_table.offset as usize, at(BUCKETS));
        put(&mut m, dict + d.ht_used.offset as usize, keys);
        m[dict + d.ht_size_exp.offset as usize] = 4;
        for k in 0..keys as usize {
            let entry = ENTRIES + k * 24;
            let name = format!("key:{k}");
            let sds = KEYS + k * 16;
            m[sds] = name.len() as u8;
            m[sds + 1] = name.len() as u8;
            m[sds + 2] = if garbage_keys { 7 } else { 1 };
            m[sds + 3..sds + 3 + name.len()].copy_from_slice(name.as_bytes());
            let obj = OBJECTS + k * 16;
            m[obj] = 0x10; // type string, encoding int
            m[obj + 4] = 1; // refcount
            put(&mut m, obj + 8, k as u64);
            put(&mut m, entry, at(sds + 3));
            put(&mut m, entry + 8, at(obj));
            put(&mut m, BUCKETS + k * 8, at(entry));
        }
    }
    m
}

fn run(l: &Layout, m: &[u8]) -> Result<ServerFound, LocateError> {
    let space = single_segment(m, BASE);
    let image = m.get(..IMAGE).unwrap();
    search(
        &space,
        l,
        Scope::Executable { base: BASE },
        &[(BASE, Cow::Borrowed(image))],
    )
}

fn core_of(m: &[u8]) -> CoreFile<'_> {
    CoreFile {
        space: single_segment(m, BASE),
        files: Vec::new(),
        process: None,
        auxv: Vec::new(),
    }
}

/// [`process`] plus a functions context at FN_CTX, pointed to from HOLDER: no
/// libraries, no functions, engine stats for `LUA`.
fn with_functions(l: &Layout) -> Vec<u8> {
    let mut m = process(l, 16, 0, false);
    let f = l.functions.as_ref().unwrap();
    let d = &l.dict;
    let (libs, funcs, stats) = (FN_DICTS, FN_DICTS + 0x40, FN_DICTS + 0x80);
    put(&mut m, FN_CTX + f.libraries.offset as usize, at(libs));
    put(
        &mut m,
        FN_CTX + f.functions.unwrap().offset as usize,
        at(funcs),
    );
    put(
        &mut m,
        FN_CTX + f.engines_stats.unwrap().offset as usize,
        at(stats),
    );
    for dict in [libs, funcs, stats] {
        put(&mut m, dict, at(DICT_TYPE));
        put(&mut m, dict + d.rehashidx.offset as usize, u64::MAX);
        m[dict + d.ht_size_exp.offset as usize] = 0xff;
        m[dict + d.ht_size_exp.offset as usize + 1] = 0xff;
    }
    // engines_stats: one entry, "LUA" → stats, in a 4-bucket table.
    put(&mut m, stats + d.ht_table.offset as usize, at(FN_TABLE));
    put(&mut m, stats + d.ht_used.offset as usize, 1);
    m[stats + d.ht_size_exp.offset as usize] = 2;
    let entry = FN_TABLE + 0x40;
    let name = FN_TABLE + 0x80;
    m[name..name + 7].copy_from_slice(b"\x03\x03\x01LUA\0");
    put(&mut m, FN_TABLE + 8, at(entry));
    put(&mut m, entry, at(name + 3));
    put(&mut m, entry + 8, at(FN_TABLE + 0xc0));
    put(&mut m, HOLDER, at(FN_CTX));
    m
}

#[test]
fn the_functions_context_is_found_by_what_it_points_to() {
    let l = layout();
    let mut m = with_functions(&l);
    let found = find_functions_ctx(&core_of(&m), &l, None).unwrap();
    assert_eq!(
        (found.address, found.ctx, found.holders, found.libraries),
        (at(HOLDER), at(FN_CTX), 1, 0)
    );
    assert_eq!(found.engines, ["LUA"]);
    assert!(
        found.summary().contains("engine stats for LUA"),
        "{}",
        found.summary()
    );

    // Another static holding the same pointer: the same context, one answer.
    put(&mut m, HOLDER + 8, at(FN_CTX));
    let found = find_functions_ctx(&core_of(&m), &l, None).unwrap();
    assert_eq!((found.address, found.holders), (at(HOLDER), 2));

    // A second, different context: refused.
    let mut two = m.clone();
    let copy = two[FN_CTX..FN_CTX + 32].to_vec();
    two[FN_CTX + 0x40..FN_CTX + 0x60].copy_from_slice(&copy);
    put(&mut two, HOLDER + 16, at(FN_CTX + 0x40));
    match find_functions_ctx(&core_of(&two), &l, None) {
        Err(e @ FunctionsLocateError::Ambiguous { .. }) => {
            assert!(e.to_string().contains("refusing to guess"), "{e}")
        }
        other => panic!("{other:?}"),
    }

    // An engine whose name is not a word, or no engine at all: not a context.
    let mut bad = m.clone();
    bad[FN_TABLE + 0x80 + 3] = 0x01;
    assert!(matches!(
        find_functions_ctx(&core_of(&bad), &l, None),
        Err(FunctionsLocateError::NotFound { .. })
    ));
    let mut none = m.clone();
    put(
        &mut none,
        FN_DICTS + 0x80 + l.dict.ht_used.offset as usize,
        0,
    );
    assert!(matches!(
        find_functions_ctx(&core_of(&none), &l, None),
        Err(FunctionsLocateError::NotFound { .. })
    ));

    // A layout without the fields to recognise the context by.
    let mut bare = l.clone();
    if let Some(f) = bare.functions.as_mut() {
        f.engines_stats = None;
    }
    assert!(matches!(
        find_functions_ctx(&core_of(&m), &bare, None),
        Err(FunctionsLocateError::NoLayout(_))
    ));
}

#[test]
fn the_one_server_whose_keys_decode_is_found() {
    let l = layout();
    let m = process(&l, 16, 5, false);
    let found = run(&l, &m).unwrap();
    assert_eq!(found.address, at(SERVER));
    assert_eq!(found.candidate.dbnum, 16);
    assert_eq!(found.candidate.ids_matched, 15);
    assert_eq!(found.candidate.keys_expected, 5);
    assert_eq!(
        (found.candidate.keys_sampled, found.candidate.keys_decoded),
        (5, 5)
    );
    assert_eq!(found.stats.tables_valid, 1);
    assert!(found.stats.positions >= 256, "{:?}", found.stats);
    let summary = found.summary();
    assert!(
        summary.starts_with(&format!(
            "structure search: unique candidate at {:#x}",
            at(SERVER)
        )) && summary.contains("5 of 5 sampled keys decoded"),
        "{summary}"
    );
}

#[test]
fn an_empty_keyspace_of_16_dbs_is_evidence_enough() {
    let l = layout();
    let found = run(&l, &process(&l, 16, 0, false)).unwrap();
    assert_eq!(found.address, at(SERVER));
    assert_eq!(found.candidate.evidence(), 15);
    assert!(found.summary().contains("the keyspace is empty"));
}

#[test]
fn one_empty_db_is_too_little_evidence_but_two_keys_are_enough() {
    let l = layout();
    match run(&l, &process(&l, 1, 0, false)) {
        Err(LocateError::WeakEvidence { candidate, .. }) => {
            assert_eq!(candidate.address, at(SERVER));
            assert_eq!(candidate.evidence(), 0);
        }
        other => panic!("{other:?}"),
    }
    match run(&l, &process(&l, 1, 1, false)) {
        Err(e @ LocateError::WeakEvidence { .. }) => {
            assert!(e.to_string().contains("too weakly evidenced"), "{e}")
        }
        other => panic!("{other:?}"),
    }
    let found = run(&l, &process(&l, 1, 2, false)).unwrap();
    assert_eq!(found.address, at(SERVER));
    assert_eq!(found.candidate.keys_decoded, 2);
}

#[test]
fn keys_sharing_a_chain_are_all_sampled() {
    let l = layout();
    let mut m = process(&l, 1, 2, false);
    // Bucket 0 → entry 0 → entry 1; bucket 1 empty.
    put(&mut m, ENTRIES + 16, at(ENTRIES + 24));
    put(&mut m, BUCKETS + 8, 0);
    let found = run(&l, &m).unwrap();
    assert_eq!(
        (found.candidate.keys_sampled, found.candidate.keys_decoded),
        (2, 2)
    );
    // A chain that loops back on itself: each entry is sampled once.
    put(&mut m, ENTRIES + 24 + 16, at(ENTRIES));
    let space = single_segment(&m, BASE);
    let walker = KeyspaceWalker::new(&space, &l);
    let dbs = walker.databases(at(SERVER)).unwrap();
    let sample = walker.sample_keys(&dbs, SAMPLE_KEYS);
    assert_eq!((sample.sampled, sample.decoded), (2, 2));
}

#[test]
fn two_servers_are_refused_and_listed() {
    let l = layout();
    let mut m = process(&l, 16, 3, false);
    // A second struct at the same db array further into the image.
    let second = SERVER + 0x1200;
    let copy = m[SERVER..SERVER + l.server.size as usize].to_vec();
    m[second..second + copy.len()].copy_from_slice(&copy);
    let err = run(&l, &m).unwrap_err();
    match &err {
        LocateError::Ambiguous {
            total, candidates, ..
        } => {
            assert_eq!(*total, 2);
            let addrs: Vec<u64> = candidates.iter().map(|c| c.address).collect();
            assert_eq!(addrs, [at(SERVER), at(second)]);
        }
        other => panic!("{other:?}"),
    }
    let text = err.to_string();
    assert!(
        text.contains("refusing to guess") && text.contains(&format!("{:#x}", at(second))),
        "{text}"
    );
}

#[test]
fn an_empty_one_db_decoy_is_set_aside_not_a_rival() {
    let l = layout();
    let mut m = process(&l, 16, 3, false);
    // A static elsewhere in the image that happens to look like a `server` of one
    // empty db (id 0, empty tables): seen three times in Valkey 9.0.0's static binary.
    let decoy_db = 0x3800;
    let db_size = l.db.size as usize;
    let db1 = m[DB_ARRAY + db_size..DB_ARRAY + 2 * db_size].to_vec();
    m[decoy_db..decoy_db + db_size].copy_from_slice(&db1);
    m[decoy_db + l.db.id.offset as usize..][..4].copy_from_slice(&0u32.to_le_bytes());
    let decoy = SERVER + 0x1200;
    put(&mut m, decoy + l.server.db.offset as usize, at(decoy_db));
    m[decoy + l.server.dbnum.offset as usize..][..4].copy_from_slice(&1u32.to_le_bytes());
    let found = run(&l, &m).unwrap();
    assert_eq!(found.address, at(SERVER));
    assert_eq!(found.stats.weak, 1);
    assert!(
        found.summary().contains("1 set aside"),
        "{}",
        found.summary()
    );
    // Without the real one, the decoy alone is refused as too weakly evidenced.
    m[SERVER + l.server.dbnum.offset as usize..][..4].copy_from_slice(&0u32.to_le_bytes());
    match run(&l, &m) {
        Err(LocateError::WeakEvidence { candidate, .. }) => {
            assert_eq!(candidate.address, at(decoy))
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn keys_that_do_not_decode_reject_the_candidate() {
    let l = layout();
    let err = run(&l, &process(&l, 16, 4, true)).unwrap_err();
    match &err {
        LocateError::NotFound {
            near_miss: Some(c),
            stats,
            ..
        } => {
            assert_eq!(c.address, at(SERVER));
            assert_eq!((c.keys_sampled, c.keys_decoded), (4, 0));
            assert!(
                c.first_fault.as_deref().unwrap_or("").contains("sds"),
                "{c:?}"
            );
            assert_eq!(stats.tables_valid, 1);
        }
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains("best rejected"), "{err}");
}

#[test]
fn no_server_is_reported_with_what_the_scan_saw() {
    let l = layout();
    // db ids that do not count up: 16 dbs all with id 0.
    let mut m = process(&l, 16, 0, false);
    for i in 1..16 {
        let id = DB_ARRAY + i * l.db.size as usize + l.db.id.offset as usize;
        m[id..id + 4].copy_from_slice(&0u32.to_le_bytes());
    }
    let err = run(&l, &m).unwrap_err();
    match &err {
        LocateError::NotFound {
            stats, near_miss, ..
        } => {
            assert!(stats.plausible >= 1, "{stats:?}");
            assert_eq!(stats.ids_matched, 0);
            assert!(near_miss.is_none());
        }
        other => panic!("{other:?}"),
    }
    let text = err.to_string();
    assert!(
        text.contains("7.0.15-debian") && text.contains("positions tried"),
        "{text}"
    );

    // dbnum out of range, NULL or unaligned db pointers: nothing plausible.
    for (dbnum, db) in [
        (0u64, at(DB_ARRAY)),
        (1 << 20, at(DB_ARRAY)),
        (16, 0),
        (16, at(DB_ARRAY) + 4),
    ] {
        let mut m = process(&l, 16, 0, false);
        put(&mut m, SERVER + l.server.db.offset as usize, db);
        let n = SERVER + l.server.dbnum.offset as usize;
        m[n..n + 4].copy_from_slice(&(dbnum as u32).to_le_bytes());
        match run(&l, &m) {
            Err(LocateError::NotFound { stats, .. }) => {
                assert_eq!(stats.ids_matched, 0, "{dbnum} {db:#x}")
            }
            other => panic!("{dbnum} {db:#x}: {other:?}"),
        }
    }
}

#[test]
fn without_any_elf_header_every_writable_segment_is_searched() {
    let l = layout();
    let m = process(&l, 16, 2, false);
    let core = CoreFile {
        space: single_segment(&m, BASE),
        files: Vec::new(),
        process: None,
        auxv: Vec::new(),
    };
    let found = find_server(&core, &l, None).unwrap();
    assert_eq!(found.address, at(SERVER));
    assert_eq!(
        found.scope,
        Scope::WritableSegments {
            segments: 1,
            capped: false
        }
    );
    // A load address whose image is not in the core falls back the same way.
    let found = find_server(&core, &l, Some(0x7000_0000)).unwrap();
    assert_eq!(found.address, at(SERVER));
    assert!(found.summary().contains("writable segment"));
}

#[test]
fn a_region_cut_short_still_finds_a_server_that_starts_in_it() {
    let l = layout();
    let m = process(&l, 16, 2, false);
    let space = single_segment(&m, BASE);
    let cut = |len: usize| {
        search(
            &space,
            &l,
            Scope::Executable { base: BASE },
            &[(BASE, Cow::Borrowed(&m[..len]))],
        )
    };
    for len in [0usize, 1, 7, 8, 100, SERVER] {
        assert!(
            matches!(cut(len), Err(LocateError::NotFound { .. })),
            "{len}: {:?}",
            cut(len)
        );
    }
    // The region ends inside the struct (a `.bss` dumped in a segment of its own): its
    // fields are read from the core.
    for len in [SERVER + 1, SERVER + 8, SERVER + l.server.size as usize - 1] {
        assert_eq!(cut(len).map(|f| f.address).ok(), Some(at(SERVER)), "{len}");
    }
}
