//! The DWARF reader on small C programs compiled here with gcc, in every encoding it must
//! understand: DWARF 2 (member offsets as `DW_OP_plus_uconst` location expressions),
//! DWARF 4 (legacy MSB-based `DW_AT_bit_offset`), DWARF 5 (`DW_AT_data_bit_offset`), and
//! zlib-compressed debug sections. The truth is what the compiled program itself prints
//! (`offsetof`, `sizeof`, and the bits a bit-field set to all ones occupies), so every
//! expectation comes from the compiler's own layout.
//!
//! Also: a whole `derive` of a miniature redis-server (features, version detection,
//! preference for Redis's own struct over a same-named one in deps/, missing structs named
//! in the error), and `.gnu_debugaltlink` supplementary files (dwz).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use redis_rescue::dwarf::{self, DeriveOptions, DwarfError};
use redis_rescue::profile::schema::FieldSpec;

const SHAPES_C: &str = r##"
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

struct bits { unsigned type:4; unsigned encoding:4; unsigned lru:24; int refcount; void *ptr; };
struct node {
    struct node *prev; struct node *next; unsigned char *zl; unsigned int sz;
    unsigned int count:16; unsigned int encoding:2; unsigned int container:2;
    unsigned int recompress:1; unsigned int attempted_compress:1; unsigned int extra:10;
};
struct wide { uint64_t a:3; uint64_t b:61; uint8_t c; int16_t d:15; unsigned e:1; unsigned char f:7; };
typedef struct withunion {
    void *key;
    union { void *val; uint64_t u64; int64_t s64; double d; } v;
    struct withunion *next;
} withunion;
struct anon {
    int x;
    union { int a; long b; };
    struct { char c; short d; unsigned flag:1; unsigned more:3; };
    int tail;
};
struct __attribute__((packed)) hdr8 { uint8_t len; uint8_t alloc; unsigned char flags; char buf[]; };
struct __attribute__((packed)) hdr64 { uint64_t len; uint64_t alloc; unsigned char flags; char buf[]; };
typedef struct { unsigned long count; char tag[5]; } anon_typedef;
typedef const volatile anon_typedef cv_t;
typedef cv_t cv_t2;
struct arrays { int m[2][3]; cv_t2 chain; cv_t2 *pchain; char flex[]; };
struct zero { long n; void *meta[0]; };

struct bits g_bits; struct node g_node; struct wide g_wide; withunion g_wu; struct anon g_anon;
struct hdr8 g_h8; struct hdr64 g_h64; struct arrays g_arr; struct zero g_zero; anon_typedef g_at;

#define SIZE(T) printf("%s|size|%zu\n", #T, sizeof(T))
#define F(T, N, f) printf("%s.%s|bytes|%zu|%zu\n", #T, #f, offsetof(T, f), sizeof(((T *)0)->f))
#define FLEX(T, N, f) printf("%s.%s|bytes|%zu|0\n", #T, #f, offsetof(T, f))
#define B(T, N, f) do { \
    T s; unsigned char *p = (unsigned char *)&s; size_t i, first = (size_t)-1, n = 0; \
    memset(&s, 0, sizeof s); s.f = -1; \
    for (i = 0; i < sizeof s * 8; i++) if (p[i / 8] >> (i % 8) & 1) { if (first == (size_t)-1) first = i; n++; } \
    printf("%s.%s|bits|%zu|%zu\n", #T, #f, first, n); } while (0)

int main(void) {
    SIZE(struct bits); B(struct bits, bits, type); B(struct bits, bits, encoding);
    B(struct bits, bits, lru); F(struct bits, bits, refcount); F(struct bits, bits, ptr);
    SIZE(struct node); F(struct node, node, prev); F(struct node, node, next);
    F(struct node, node, zl); F(struct node, node, sz); B(struct node, node, count);
    B(struct node, node, encoding); B(struct node, node, container);
    B(struct node, node, recompress); B(struct node, node, attempted_compress);
    B(struct node, node, extra);
    SIZE(struct wide); B(struct wide, wide, a); B(struct wide, wide, b); F(struct wide, wide, c);
    B(struct wide, wide, d); B(struct wide, wide, e); B(struct wide, wide, f);
    SIZE(withunion); F(withunion, withunion, key); F(withunion, withunion, v);
    F(withunion, withunion, next);
    SIZE(struct anon); F(struct anon, anon, x); F(struct anon, anon, a); F(struct anon, anon, b);
    F(struct anon, anon, c); F(struct anon, anon, d); B(struct anon, anon, flag);
    B(struct anon, anon, more); F(struct anon, anon, tail);
    SIZE(struct hdr8); F(struct hdr8, hdr8, len); F(struct hdr8, hdr8, alloc);
    F(struct hdr8, hdr8, flags); FLEX(struct hdr8, hdr8, buf);
    SIZE(struct hdr64); F(struct hdr64, hdr64, len); F(struct hdr64, hdr64, alloc);
    F(struct hdr64, hdr64, flags); FLEX(struct hdr64, hdr64, buf);
    SIZE(anon_typedef); F(anon_typedef, anon_typedef, count); F(anon_typedef, anon_typedef, tag);
    SIZE(struct arrays); F(struct arrays, arrays, m); F(struct arrays, arrays, chain);
    F(struct arrays, arrays, pchain); FLEX(struct arrays, arrays, flex);
    SIZE(struct zero); F(struct zero, zero, n); FLEX(struct zero, zero, meta);
    return 0;
}
"##;

/// The struct names as `read_structs` is asked for them (tags, or the typedef name).
const SHAPE_NAMES: &[(&str, &str)] = &[
    ("struct bits", "bits"),
    ("struct node", "node"),
    ("struct wide", "wide"),
    ("withunion", "withunion"),
    ("struct anon", "anon"),
    ("struct hdr8", "hdr8"),
    ("struct hdr64", "hdr64"),
    ("anon_typedef", "anon_typedef"),
    ("struct arrays", "arrays"),
    ("struct zero", "zero"),
];

fn gcc(dir: &Path, args: &[&str], sources: &[&Path], out: &Path) {
    let o = Command::new("gcc")
        .current_dir(dir)
        .args(args)
        .args(sources)
        .arg("-o")
        .arg(out)
        .output()
        .expect("gcc is needed for these tests");
    assert!(
        o.status.success(),
        "gcc {args:?} failed:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

fn readelf(args: &[&str], file: &Path) -> String {
    let o = Command::new("readelf")
        .args(args)
        .arg(file)
        .output()
        .expect("readelf (binutils) is needed for these tests");
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The compiled program's own view: struct name → (size, field → spec).
fn truth(exe: &Path) -> BTreeMap<String, (u64, BTreeMap<String, FieldSpec>)> {
    let o = Command::new(exe).output().expect("run the test program");
    assert!(o.status.success());
    let mut out: BTreeMap<String, (u64, BTreeMap<String, FieldSpec>)> = BTreeMap::new();
    let names: BTreeMap<&str, &str> = SHAPE_NAMES.iter().copied().collect();
    for line in String::from_utf8_lossy(&o.stdout).lines() {
        let parts: Vec<&str> = line.split('|').collect();
        let (what, kind) = (parts[0], parts[1]);
        let num = |i: usize| parts[i].parse::<u64>().expect("number");
        let (ty, field) = match what.rsplit_once('.') {
            Some((t, f)) => (t, Some(f)),
            None => (what, None),
        };
        let key = names[ty].to_owned();
        let entry = out.entry(key).or_default();
        match (kind, field) {
            ("size", None) => entry.0 = num(2),
            ("bytes", Some(f)) => {
                entry.1.insert(
                    f.to_owned(),
                    FieldSpec::Bytes {
                        offset: num(2),
                        size: num(3),
                    },
                );
            }
            ("bits", Some(f)) => {
                entry.1.insert(
                    f.to_owned(),
                    FieldSpec::Bits {
                        bit_offset: num(2),
                        bit_size: num(3) as u32,
                    },
                );
            }
            _ => panic!("bad line {line}"),
        }
    }
    out
}

struct Variant {
    flags: &'static [&'static str],
    /// Something readelf must show, proving the variant uses the encoding it is for.
    proof_args: &'static [&'static str],
    proof: &'static str,
}

const VARIANTS: &[Variant] = &[
    Variant {
        flags: &["-g", "-gdwarf-2", "-gstrict-dwarf"],
        proof_args: &["--debug-dump=info"],
        proof: "DW_OP_plus_uconst",
    },
    Variant {
        flags: &["-g", "-gdwarf-4"],
        proof_args: &["--debug-dump=info"],
        proof: "DW_AT_bit_offset",
    },
    Variant {
        flags: &["-g", "-gdwarf-5"],
        proof_args: &["--debug-dump=info"],
        proof: "DW_AT_data_bit_offset",
    },
    Variant {
        flags: &["-g", "-gdwarf-4", "-gz=zlib"],
        proof_args: &["-S", "-W"],
        proof: "C",
    },
    Variant {
        flags: &["-g", "-gdwarf-5", "-gz=zlib"],
        proof_args: &["-S", "-W"],
        proof: "C",
    },
    Variant {
        flags: &["-g", "-gdwarf-4", "-gz=zlib-gnu"],
        proof_args: &["-S", "-W"],
        proof: ".zdebug_info",
    },
];

#[test]
fn struct_layouts_match_the_compiler_in_every_dwarf_encoding() {
    let dir = tempfile::tempdir().expect("tempdir");
    let src = dir.path().join("shapes.c");
    std::fs::write(&src, SHAPES_C).expect("write source");
    let names: Vec<&str> = SHAPE_NAMES.iter().map(|(_, n)| *n).collect();
    let mut expected = None;
    for (i, v) in VARIANTS.iter().enumerate() {
        let exe = dir.path().join(format!("shapes{i}"));
        let mut flags = vec!["-O0"];
        flags.extend_from_slice(v.flags);
        gcc(dir.path(), &flags, &[&src], &exe);
        let proof = readelf(v.proof_args, &exe);
        if v.proof == "C" {
            assert!(
                proof
                    .lines()
                    .any(|l| l.contains(".debug_info") && l.contains(" C ")),
                "{:?}: .debug_info is not compressed:\n{proof}",
                v.flags
            );
        } else {
            assert!(
                proof.contains(v.proof),
                "{:?}: readelf shows no {}",
                v.flags,
                v.proof
            );
        }
        let truth = expected.get_or_insert_with(|| truth(&exe));
        let (got, warnings) = dwarf::read_structs(&exe, &names)
            .unwrap_or_else(|e| panic!("{:?}: read_structs: {e}", v.flags));
        assert!(warnings.is_empty(), "{:?}: {warnings:?}", v.flags);
        for (name, (size, fields)) in truth.iter() {
            let spec = got
                .get(name)
                .unwrap_or_else(|| panic!("{:?}: struct {name} not found", v.flags));
            assert_eq!(spec.size, *size, "{:?}: sizeof {name}", v.flags);
            for (f, want) in fields {
                assert_eq!(spec.fields.get(f), Some(want), "{:?}: {name}.{f}", v.flags);
            }
            assert_eq!(
                spec.fields.len(),
                fields.len(),
                "{:?}: {name} has exactly the members the program knows: {:?}",
                v.flags,
                spec.fields.keys().collect::<Vec<_>>()
            );
        }
    }
    // Spot checks of what the program printed, so the test states the shapes it covers.
    let t = expected.expect("at least one variant");
    assert_eq!(
        t["bits"].1["lru"],
        FieldSpec::Bits {
            bit_offset: 8,
            bit_size: 24
        }
    );
    assert_eq!(t["hdr8"].0, 3, "packed");
    assert_eq!(t["hdr64"].0, 17, "packed");
    assert_eq!(
        t["anon"].1["b"],
        FieldSpec::Bytes { offset: 8, size: 8 },
        "anonymous union flattened"
    );
    assert_eq!(
        t["arrays"].1["m"],
        FieldSpec::Bytes {
            offset: 0,
            size: 24
        },
        "2-D array"
    );
    assert_eq!(
        t["arrays"].1["chain"],
        FieldSpec::Bytes {
            offset: 24,
            size: 16
        },
        "typedef/const/volatile chain"
    );
}

// ---------------------------------------------------------------------------------------
// A miniature redis-server
// ---------------------------------------------------------------------------------------

const MINI_H: &str = r##"
#include <stdint.h>
typedef struct dictEntry {
    void *key;
    union { void *val; uint64_t u64; int64_t s64; double d; } v;
    struct dictEntry *next;
} dictEntry;
typedef struct dictType { int dummy; } dictType;
typedef struct dictht { dictEntry **table; unsigned long size; unsigned long sizemask; unsigned long used; } dictht;
typedef struct dict { dictType *type; void *privdata; dictht ht[2]; long rehashidx; int16_t pauserehash; } dict;
typedef struct redisObject { unsigned type:4; unsigned encoding:4; unsigned lru:24; int refcount; void *ptr; } robj;
typedef struct redisDb { dict *dict; dict *expires; dict *blocking_keys; int id; long long avg_ttl; } redisDb;
struct redisServer { int pid; char *configfile; redisDb *db; int hz; struct { int a; long b; }; int dbnum; };
struct __attribute__((packed)) sdshdr8 { uint8_t len; uint8_t alloc; unsigned char flags; char buf[]; };
struct __attribute__((packed)) sdshdr16 { uint16_t len; uint16_t alloc; unsigned char flags; char buf[]; };
struct __attribute__((packed)) sdshdr32 { uint32_t len; uint32_t alloc; unsigned char flags; char buf[]; };
struct __attribute__((packed)) sdshdr64 { uint64_t len; uint64_t alloc; unsigned char flags; char buf[]; };
#ifndef NO_QLNODE
typedef struct quicklistNode {
    struct quicklistNode *prev; struct quicklistNode *next; unsigned char *zl; unsigned int sz;
    unsigned int count : 16; unsigned int encoding : 2; unsigned int container : 2;
    unsigned int recompress : 1; unsigned int attempted_compress : 1; unsigned int extra : 10;
} quicklistNode;
#else
typedef struct quicklistNode quicklistNode;
#endif
typedef struct quicklistLZF { unsigned int sz; char compressed[]; } quicklistLZF;
typedef struct quicklist { quicklistNode *head; quicklistNode *tail; unsigned long count; unsigned long len; int fill : 16; unsigned int compress : 16; } quicklist;
typedef char *sds;
typedef struct zskiplistNode {
    sds ele; double score; struct zskiplistNode *backward;
    struct zskiplistLevel { struct zskiplistNode *forward; unsigned long span; } level[];
} zskiplistNode;
typedef struct zskiplist { struct zskiplistNode *header, *tail; unsigned long length; int level; } zskiplist;
typedef struct zset { dict *dict; zskiplist *zsl; } zset;
typedef struct intset { uint32_t encoding; uint32_t length; int8_t contents[]; } intset;
struct sharedObjectsStruct { robj *crlf, *ok; };
"##;

/// server.c: the globals, version(), INFO's format string.
const MINI_SERVER_C: &str = r##"
#include <stdio.h>
#include "mini.h"
#define REDIS_VERSION "6.2.99"
struct redisServer server;
struct sharedObjectsStruct shared;
const char *sha(void) { return "00000000"; }
void version(void) { printf("Redis server v=%s sha=%s\n", REDIS_VERSION, sha()); }
void info(char *buf) { sprintf(buf, "# Server\r\nredis_version:%s\r\n", REDIS_VERSION); }
int main(int argc, char **argv) {
    char buf[128];
    (void)argv;
    if (argc > 5) { version(); info(buf); }
    return server.dbnum;
}
"##;

/// t_zset.c and friends: the structs used elsewhere, and a decoy version literal.
const MINI_OBJECT_C: &str = r##"
#include <stdio.h>
#include "mini.h"
quicklist *g_ql; quicklistLZF *g_lzf; zset *g_zs; intset *g_is; robj *g_o; dictEntry *g_de;
struct sdshdr8 *h8; struct sdshdr16 *h16; struct sdshdr32 *h32; struct sdshdr64 *h64;
#ifndef NO_QLNODE
quicklistNode *g_qn; unsigned long qn_size = sizeof(quicklistNode);
#endif
unsigned long sizes(void) {
    return sizeof(quicklist) + sizeof(quicklistLZF) + sizeof(zset) + sizeof(zskiplist)
        + sizeof(zskiplistNode) + sizeof(intset) + sizeof(robj) + sizeof(dictEntry) + sizeof(dict)
        + sizeof(*h8) + sizeof(*h16) + sizeof(*h32) + sizeof(*h64);
}
const char *cjson_version(void) { return "2.1.0"; }
"##;

/// A bundled dependency with structs of the same names but other shapes.
const MINI_DEPS_C: &str = r##"
typedef struct zset { long pad1; long pad2; void *zsl; } zset;
typedef struct dictEntry { void *key; void *val; struct dictEntry *next; } dictEntry;
zset deps_zset; dictEntry deps_entry;
"##;

struct Mini {
    _dir: tempfile::TempDir,
    exe: PathBuf,
}

fn build_mini(flags: &[&str], defines: &[&str]) -> Mini {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    std::fs::create_dir_all(root.join("deps/hiredis")).expect("mkdir");
    std::fs::write(root.join("mini.h"), MINI_H).expect("write");
    std::fs::write(root.join("server.c"), MINI_SERVER_C).expect("write");
    std::fs::write(root.join("object.c"), MINI_OBJECT_C).expect("write");
    std::fs::write(root.join("deps/hiredis/async.c"), MINI_DEPS_C).expect("write");
    let exe = root.join("redis-server");
    let mut args = vec!["-O0"];
    args.extend_from_slice(flags);
    args.extend_from_slice(defines);
    // The dependency first: its same-named structs come first in DIE order.
    gcc(
        root,
        &args,
        &[
            Path::new("deps/hiredis/async.c"),
            Path::new("object.c"),
            Path::new("server.c"),
        ],
        &exe,
    );
    Mini { _dir: dir, exe }
}

#[test]
fn derive_a_miniature_redis() {
    for flags in [
        &["-g", "-gdwarf-4"][..],
        &["-g", "-gdwarf-5"][..],
        &["-g", "-gdwarf-5", "-gz=zlib"][..],
    ] {
        let mini = build_mini(flags, &[]);
        let d = dwarf::derive(&mini.exe, &DeriveOptions::default())
            .unwrap_or_else(|e| panic!("{flags:?}: {e}"));
        let p = &d.profile;
        assert!(d.warnings.is_empty(), "{flags:?}: {:?}", d.warnings);
        assert_eq!(
            p.identity.redis_version, "6.2.99",
            "{flags:?}: from version()"
        );
        assert!(
            p.identity.origin.contains("version()"),
            "{}",
            p.identity.origin
        );
        assert_eq!(p.identity.rdb_version, 9);
        assert_eq!(p.identity.server, "redis");
        assert_eq!(p.name, "6.2.99");
        let features: Vec<(&str, &str)> = p
            .features
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            features,
            [
                ("db_array", "structs"),
                ("dict", "dictht"),
                ("dict_entry", "plain"),
                ("expire", "expires_dict"),
                ("hash_fields", "sds"),
                ("key_object", "separate"),
                ("keyspace", "dict"),
                ("quicklist", "ziplist"),
                ("robj_keys", "sds"),
                ("sds", "typed"),
                ("tables", "dict"),
                ("value", "pointer"),
                ("zset_element", "pointer"),
            ],
            "{flags:?}"
        );
        let field = |s: &str, f: &str| p.structs[s].fields[f];
        assert_eq!(
            field("redisServer", "db"),
            FieldSpec::Bytes {
                offset: 16,
                size: 8
            }
        );
        // Members of the anonymous struct are flattened; dbnum follows it.
        assert_eq!(
            field("redisServer", "b"),
            FieldSpec::Bytes {
                offset: 40,
                size: 8
            }
        );
        assert_eq!(
            field("redisServer", "dbnum"),
            FieldSpec::Bytes {
                offset: 48,
                size: 4
            }
        );
        // Redis's zset and dictEntry, not the same-named ones of deps/.
        assert_eq!(
            field("zset", "zsl"),
            FieldSpec::Bytes { offset: 8, size: 8 },
            "{flags:?}"
        );
        assert!(p.structs["dictEntry"].fields.contains_key("v"));
        assert_eq!(
            field("quicklistNode", "container"),
            FieldSpec::Bits {
                bit_offset: 242,
                bit_size: 2
            }
        );
        assert_eq!(
            field("zskiplistNode", "level"),
            FieldSpec::Bytes {
                offset: 24,
                size: 0
            }
        );
        assert_eq!(p.structs["zskiplistLevel"].size, 16);
        assert_eq!(p.structs["sdshdr64"].size, 17);
        assert_eq!(
            p.symbols["server"].size, p.structs["redisServer"].size,
            "symbol from .symtab"
        );
        assert!(p.symbols.contains_key("shared"));
        assert_eq!(p.constants["encodings"]["quicklist"], 9);
        assert_eq!(p.constants["quicklist_node"]["container_packed"], 2);
        assert!(!p.constants["encodings"].contains_key("listpack"));
        // The JSON writer round-trips it.
        let back: redis_rescue::profile::ProfileFile =
            serde_json::from_str(&dwarf::to_json(p)).expect("valid JSON");
        assert!(dwarf::compare(&back, p, true).is_empty());
    }
}

#[test]
fn version_override_and_missing_structs() {
    let mini = build_mini(&["-g"], &[]);
    let d = dwarf::derive(
        &mini.exe,
        &DeriveOptions {
            name: Some("custom".into()),
            redis_version: Some("7.0.15".into()),
            rdb_version: None,
            symbols_from: None,
        },
    )
    .expect("derive");
    assert_eq!(d.profile.name, "custom");
    assert_eq!(d.profile.identity.rdb_version, 10);
    let err = dwarf::derive(
        &mini.exe,
        &DeriveOptions {
            redis_version: Some("9.9.1".into()),
            ..DeriveOptions::default()
        },
    )
    .expect_err("unknown RDB version");
    assert!(matches!(err, DwarfError::RdbVersion { .. }), "{err}");

    let broken = build_mini(&["-g"], &["-DNO_QLNODE"]);
    let err = dwarf::derive(&broken.exe, &DeriveOptions::default()).expect_err("no quicklistNode");
    let msg = err.to_string();
    assert!(matches!(err, DwarfError::MissingStructs { .. }), "{msg}");
    assert!(msg.contains("struct quicklistNode"), "{msg}");
    assert!(!msg.contains("struct quicklistLZF"), "{msg}");
}

/// Add a `.gnu_debugaltlink` naming `name` with `build_id` to a copy of `exe`.
fn with_altlink(exe: &Path, name: &str, build_id: &[u8], out: &Path) {
    let dir = out.parent().expect("parent");
    let section = dir.join("altlink.bin");
    let mut content = name.as_bytes().to_vec();
    content.push(0);
    content.extend_from_slice(build_id);
    std::fs::write(&section, content).expect("write");
    let st = Command::new("objcopy")
        .arg(format!(
            "--add-section=.gnu_debugaltlink={}",
            section.display()
        ))
        .arg(exe)
        .arg(out)
        .status()
        .expect("objcopy (binutils) is needed for this test");
    assert!(st.success());
}

#[test]
fn missing_supplementary_file_is_named() {
    let mini = build_mini(&["-g"], &[]);
    let out = mini.exe.with_file_name("with-altlink");
    with_altlink(
        &mini.exe,
        "/nonexistent/dwz/common.debug",
        &[0xab; 20],
        &out,
    );
    let err = dwarf::derive_profile(&out).expect_err("no supplementary file");
    let msg = err.to_string();
    assert!(matches!(err, DwarfError::AltLinkMissing { .. }), "{msg}");
    assert!(msg.contains("/nonexistent/dwz/common.debug"), "{msg}");
    assert!(msg.contains("/usr/lib/debug/.dwz/common.debug"), "{msg}");
}

/// A real dwz multifile: types shared by two executables move into a supplementary file
/// referenced with DW_FORM_GNU_ref_alt / DW_FORM_GNU_strp_alt. Needs `dwz` (Debian package
/// `dwz`); without it the test fails and says so.
#[test]
fn dwz_supplementary_file_is_followed() {
    let have_dwz = Command::new("dwz").arg("--version").output().is_ok();
    assert!(
        have_dwz,
        "dwz is not installed (apt-get install dwz); it is needed to make a .gnu_debugaltlink fixture"
    );
    let a = build_mini(&["-g", "-gdwarf-4"], &[]);
    let b_dir = a.exe.with_file_name("copy");
    std::fs::copy(&a.exe, &b_dir).expect("copy");
    let common = a.exe.with_file_name("common.debug");
    let o = Command::new("dwz")
        .arg("-m")
        .arg(&common)
        .arg("-M")
        .arg("common.debug")
        .arg(&a.exe)
        .arg(&b_dir)
        .output()
        .expect("run dwz");
    assert!(
        o.status.success(),
        "dwz failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let sections = readelf(&["-S", "-W"], &a.exe);
    assert!(sections.contains(".gnu_debugaltlink"), "{sections}");
    let info = readelf(&["--debug-dump=info"], &a.exe);
    assert!(
        info.contains("DW_AT_import      : <alt 0x") && info.contains("(alt indirect string"),
        "dwz moved nothing into the supplementary file"
    );
    let d = dwarf::derive(&a.exe, &DeriveOptions::default()).expect("derive through dwz");
    assert!(
        d.profile.identity.origin.contains("supplementary file"),
        "{}",
        d.profile.identity.origin
    );
    assert_eq!(
        d.profile.structs["redisServer"].fields["dbnum"],
        FieldSpec::Bytes {
            offset: 48,
            size: 4
        }
    );
    assert_eq!(
        d.profile.structs["robj"].fields["lru"],
        FieldSpec::Bits {
            bit_offset: 8,
            bit_size: 24
        }
    );
    // The same result as without dwz.
    let plain = build_mini(&["-g", "-gdwarf-4"], &[]);
    let p = dwarf::derive(&plain.exe, &DeriveOptions::default()).expect("derive");
    let mut without = p.profile.clone();
    without.symbols.clear();
    without.identity.build_id = None;
    let mut with = d.profile.clone();
    with.symbols.clear();
    with.identity.build_id = None;
    let diffs = dwarf::compare(&with, &without, true);
    assert!(diffs.is_empty(), "{diffs:#?}");
    // Moving the supplementary file away: the error names it.
    std::fs::rename(&common, common.with_file_name("moved.debug")).expect("rename");
    let err = dwarf::derive_profile(&a.exe).expect_err("supplementary file gone");
    assert!(err.to_string().contains("common.debug"), "{err}");
}
