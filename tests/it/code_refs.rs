//! `code_refs` on real binaries: a static that a stripped build no longer names, found from
//! the code of the exported function that reads it, must be exactly where the symbol table
//! of the unstripped build (or the shipped profile) puts it.
//!
//! - Debian 12's `redis-check-rdb` 7.0.15 (stripped, `.dynsym` only; `.ci/run` installs
//!   it): `curr_functions_lib_ctx` must be the offset `layouts/7.0.15-debian.json` records.
//! - The provisioned Valkey 8.1.8 (LTO, `curr_functions_lib_ctx.lto_priv.0` in `.symtab`)
//!   and a `strip --strip-all` copy of it: the same offset as the symbol.
//! - Small C programs compiled with gcc at -O0 and -O2, with and without `endbr64`, PIE
//!   and not: the getters of both statics, a `lea` getter, and getters that must be
//!   refused (ones that read a field of `server`, disagree, or take an address).

use std::path::{Path, PathBuf};
use std::process::Command;

use redis_rescue::binary::Executable;
use redis_rescue::code_refs::{find_static, static_loaded_by, Access, CodeRefError};

const DEBIAN_BINARY: &str = "/usr/bin/redis-check-rdb";

/// `symbols.<name>` of a shipped profile, with the profile's build-id.
fn profile_symbol(profile: &str, name: &str) -> (String, u64, u64) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("layouts")
        .join(format!("{profile}.json"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let json: serde_json::Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()));
    let build_id = json["identity"]["build_id"]
        .as_str()
        .unwrap_or_else(|| panic!("{}: no identity.build_id", path.display()))
        .to_owned();
    let sym = &json["symbols"][name];
    let field = |f: &str| {
        sym[f]
            .as_u64()
            .unwrap_or_else(|| panic!("{}: no symbols.{name}.{f}", path.display()))
    };
    (build_id, field("offset"), field("size"))
}

/// The Valkey 8.1.8 server `.ci/provision-redis.sh` installs (`$REDIS_BUILDS_DIR` or
/// `target/redis-builds`). Fails, never skips, when it is missing.
fn provisioned_valkey() -> PathBuf {
    let dir = std::env::var_os("REDIS_BUILDS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/redis-builds"));
    let bin = dir.join("valkey-8.1.8/valkey-server");
    assert!(
        bin.exists(),
        "{} is missing: .ci/run provisions it (.ci/provision-redis.sh valkey-8.1.8)",
        bin.display()
    );
    bin
}

fn open(path: &Path) -> Executable {
    Executable::open(path).unwrap_or_else(|e| panic!("{e}"))
}

/// `strip --strip-all` copy of `bin` in `dir` (keeps `.dynsym`, drops `.symtab`).
fn stripped_copy(bin: &Path, dir: &Path) -> PathBuf {
    let out = dir.join(format!(
        "{}.stripped",
        bin.file_name().and_then(|n| n.to_str()).unwrap_or("bin")
    ));
    let status = Command::new("strip")
        .arg("--strip-all")
        .arg("-o")
        .arg(&out)
        .arg(bin)
        .status()
        .unwrap_or_else(|e| panic!("cannot run strip ({e}): .ci/run installs binutils"));
    assert!(
        status.success(),
        "strip --strip-all {} failed",
        bin.display()
    );
    out
}

#[test]
fn debian_7_0_15_stripped_binary_gives_the_profiles_offset() {
    let path = Path::new(DEBIAN_BINARY);
    assert!(
        path.exists(),
        "{DEBIAN_BINARY} is missing: .ci/run installs Debian 12's redis-server package"
    );
    let exe = open(path);
    let (build_id, offset, size) = profile_symbol("7.0.15-debian", "curr_functions_lib_ctx");
    assert_eq!(
        exe.build_id.as_deref(),
        Some(build_id.as_str()),
        "{DEBIAN_BINARY} is not the build layouts/7.0.15-debian.json describes"
    );
    // The premise: the shipped binary has no name for the static.
    assert_eq!(exe.symbol("curr_functions_lib_ctx"), None);

    let found = find_static(&exe, "curr_functions_lib_ctx").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(found.offset, offset, "{found:?}");
    assert_eq!(found.size, size, "{found:?}");
    assert_eq!(found.access, Access::Load { width: 8 });
    assert_eq!(found.function, "functionsLibCtxGetCurrent");
    assert_eq!(found.section, ".bss");
    assert_eq!(found.covering_symbol, None);
    assert_eq!(found.symbol_info().offset, offset);
    // The getter itself is exported: the instruction is inside it.
    let getter = exe
        .symbol("functionsLibCtxGetCurrent")
        .expect("functionsLibCtxGetCurrent in .dynsym");
    assert!(
        (getter.offset..getter.offset + getter.size).contains(&found.instruction),
        "{found:?} vs {getter:?}"
    );
    // 7.0 has no lru_clock and no getter of it.
    let err = find_static(&exe, "lru_clock").unwrap_err();
    assert!(
        matches!(err, CodeRefError::NotFound { .. }),
        "{err}: expected NotFound"
    );
}

#[test]
fn valkey_8_1_8_stripped_copy_gives_the_symbols_offset() {
    let bin = provisioned_valkey();
    let exe = open(&bin);
    let truth = exe
        .symbol("curr_functions_lib_ctx")
        .unwrap_or_else(|| panic!("{}: no curr_functions_lib_ctx in .symtab", bin.display()));
    let (_, shipped, _) = profile_symbol("valkey-8.1.8", "curr_functions_lib_ctx");
    assert_eq!(truth.offset, shipped, "symbol vs layouts/valkey-8.1.8.json");

    // Unstripped, the code agrees with the (LTO-renamed) symbol it lands on.
    let found = find_static(&exe, "curr_functions_lib_ctx").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(found.offset, truth.offset);
    let (name, delta) = found.covering_symbol.clone().expect("a covering symbol");
    assert!(
        name.starts_with("curr_functions_lib_ctx"),
        "covered by {name}"
    );
    assert_eq!(delta, 0);

    let dir = tempfile::tempdir().expect("temp dir");
    let stripped = open(&stripped_copy(&bin, dir.path()));
    assert_eq!(
        stripped.symbol("curr_functions_lib_ctx"),
        None,
        "not stripped"
    );
    let found = find_static(&stripped, "curr_functions_lib_ctx").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(found.offset, truth.offset, "{found:?}");
    assert_eq!(found.size, 8);
    assert_eq!(found.covering_symbol, None);
}

/// Getters of both statics, an address getter, and a main that writes them (so -O2 cannot
/// fold the never-written statics to constants).
const GOOD_C: &str = r#"
#include <stdint.h>
typedef struct functionsLibCtx { void *libraries, *functions; long cache_memory; void *engines_stats; } functionsLibCtx;
static functionsLibCtx *curr_functions_lib_ctx;
static uint32_t lru_clock;
static int counter;
functionsLibCtx *functionsLibCtxGetCurrent(void) { return curr_functions_lib_ctx; }
void functionsLibCtxSet(functionsLibCtx *c) { curr_functions_lib_ctx = c; }
uint32_t lru_getIdleSecs(uint32_t lru) { return (lru_clock - lru) & 0xffffff; }
uint32_t lru_import(uint32_t idle) { return (lru_clock - idle) & 0xfffff; }
void lru_tick(uint32_t now) { lru_clock = now; }
int *counter_addr(void) { return &counter; }
int main(int argc, char **argv) { (void)argv; counter = argc; return 0; }
"#;

/// Getters that must be refused: the LRU getters read a field of `server` (as a build
/// without `lru_clock` does), the functions getter returns the address of a context struct
/// of the right name instead of loading a pointer.
const REFUSED_C: &str = r#"
#include <stdint.h>
struct valkeyServer { long pad[8]; long unixtime; long more[4]; } server;
typedef struct functionsLibCtx { void *libraries, *functions; long cache_memory; void *engines_stats; } functionsLibCtx;
static functionsLibCtx curr_functions_lib_ctx;
uint32_t lru_getIdleSecs(uint32_t lru) { return (server.unixtime - lru) & 0xffffff; }
uint32_t lru_import(uint32_t idle) { return (server.unixtime - idle) & 0xfffff; }
functionsLibCtx *functionsLibCtxGetCurrent(void) { return &curr_functions_lib_ctx; }
int main(int argc, char **argv) { (void)argv; server.unixtime = argc; curr_functions_lib_ctx.cache_memory = argc; return 0; }
"#;

/// Two getters of `lru_clock` that read different statics.
const DISAGREE_C: &str = r#"
#include <stdint.h>
static uint32_t lru_clock, other_clock;
uint32_t lru_getIdleSecs(uint32_t lru) { return (lru_clock - lru) & 0xffffff; }
uint32_t lru_import(uint32_t idle) { return (other_clock - idle) & 0xfffff; }
void lru_tick(uint32_t a, uint32_t b) { lru_clock = a; other_clock = b; }
int main(int argc, char **argv) { (void)argv; lru_tick(argc, argc); return 0; }
"#;

/// Compile `source` with `flags` (plus `-rdynamic`, as Redis links) into `dir/name`.
fn compile(dir: &Path, name: &str, source: &str, flags: &[&str]) -> PathBuf {
    let src = dir.join(format!("{name}.c"));
    std::fs::write(&src, source).expect("write C source");
    let out = dir.join(name);
    let output = Command::new("gcc")
        .args(flags)
        .args(["-rdynamic", "-o"])
        .arg(&out)
        .arg(&src)
        .output()
        .unwrap_or_else(|e| panic!("cannot run gcc ({e}): .ci/run installs it"));
    assert!(
        output.status.success(),
        "gcc {flags:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    out
}

/// Every code shape a getter takes in practice: -O0 frames, -O2, CET `endbr64`, PIE and not.
fn flag_sets() -> Vec<Vec<&'static str>> {
    let mut sets = Vec::new();
    for opt in ["-O0", "-O2"] {
        for cet in ["-fcf-protection=none", "-fcf-protection=full"] {
            for pie in [["-fPIE", "-pie"], ["-fno-pie", "-no-pie"]] {
                sets.push(vec![opt, cet, pie[0], pie[1]]);
            }
        }
    }
    sets
}

#[test]
fn compiled_getters_are_found_stripped_and_unstripped() {
    let dir = tempfile::tempdir().expect("temp dir");
    for (i, flags) in flag_sets().iter().enumerate() {
        let bin = compile(dir.path(), &format!("good{i}"), GOOD_C, flags);
        let full = open(&bin);
        let stripped = open(&stripped_copy(&bin, dir.path()));
        for (name, width) in [("curr_functions_lib_ctx", 8), ("lru_clock", 4)] {
            let truth = full
                .symbol(name)
                .unwrap_or_else(|| panic!("{flags:?}: no {name} in .symtab"));
            assert_eq!(stripped.symbol(name), None, "{flags:?}: not stripped");
            for exe in [&full, &stripped] {
                let found = find_static(exe, name)
                    .unwrap_or_else(|e| panic!("{flags:?} {}: {e}", exe.path.display()));
                assert_eq!(found.offset, truth.offset, "{flags:?} {name}: {found:?}");
                assert_eq!(found.size, width, "{flags:?} {name}");
            }
            // Both lru_clock getters decode on their own too.
            if name == "lru_clock" {
                let other = static_loaded_by(&stripped, "lru_import")
                    .unwrap_or_else(|e| panic!("{flags:?}: {e}"));
                assert_eq!(other.offset, truth.offset, "{flags:?}");
            }
        }
        // `return &counter;` is reported as an address, at the static itself, in PIE
        // code (`lea`); non-PIE code moves the address as an immediate, which is refused
        // rather than guessed at.
        if flags.contains(&"-pie") {
            let counter = full.symbol("counter").expect("counter in .symtab");
            let found = static_loaded_by(&stripped, "counter_addr")
                .unwrap_or_else(|e| panic!("{flags:?}: {e}"));
            assert_eq!(found.access, Access::AddressOf, "{flags:?}");
            assert_eq!(found.offset, counter.offset, "{flags:?}");
            assert_eq!(
                found.size, 0,
                "{flags:?}: a stripped build has no size for it"
            );
            let found = static_loaded_by(&full, "counter_addr").expect("counter_addr");
            assert_eq!(found.size, 4, "{flags:?}: the symbol's size");
        } else {
            let err = static_loaded_by(&stripped, "counter_addr").unwrap_err();
            assert!(
                matches!(err, CodeRefError::Decode { .. }),
                "{flags:?}: {err}"
            );
        }
        // A function that is not there, and code without a RIP-relative load first.
        assert!(matches!(
            static_loaded_by(&stripped, "noSuchFunction"),
            Err(CodeRefError::NoFunction(_))
        ));
        let err = static_loaded_by(&stripped, "main").unwrap_err();
        assert!(
            matches!(err, CodeRefError::Decode { .. }),
            "{flags:?}: main: {err}"
        );
    }
}

#[test]
fn compiled_getters_of_something_else_are_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    for (i, flags) in flag_sets().iter().enumerate() {
        let bin = compile(dir.path(), &format!("refused{i}"), REFUSED_C, flags);
        let stripped = open(&stripped_copy(&bin, dir.path()));
        for exe in [&open(&bin), &stripped] {
            // `server` is exported (-rdynamic), so even the stripped copy knows the load
            // lands in it.
            let err = find_static(exe, "lru_clock").unwrap_err();
            let text = err.to_string();
            assert!(
                matches!(err, CodeRefError::NotFound { .. }) && text.contains("server+0x40"),
                "{flags:?}: {text}"
            );
            // PIE code takes the address with `lea`; non-PIE code with `mov r32, imm32`,
            // which is not decoded at all.
            let err = find_static(exe, "curr_functions_lib_ctx").unwrap_err();
            let pie = flags.contains(&"-pie");
            assert!(
                !pie || err.to_string().contains("an address computation (lea)"),
                "{flags:?}: {err}"
            );
            assert!(
                pie || err.to_string().contains("is not one this decoder knows"),
                "{flags:?}: {err}"
            );
        }

        let bin = compile(dir.path(), &format!("disagree{i}"), DISAGREE_C, flags);
        let stripped = open(&stripped_copy(&bin, dir.path()));
        let err = find_static(&stripped, "lru_clock").unwrap_err();
        assert!(
            matches!(err, CodeRefError::Disagree { .. }),
            "{flags:?}: {err}"
        );
    }
}

#[test]
fn other_architectures_are_refused_by_name() {
    let dir = tempfile::tempdir().expect("temp dir");
    let bin = compile(dir.path(), "good", GOOD_C, &["-O2"]);
    let mut bytes = std::fs::read(&bin).expect("read binary");
    // e_machine (offset 18, little-endian): EM_AARCH64 = 183.
    bytes[18..20].copy_from_slice(&183u16.to_le_bytes());
    let arm = dir.path().join("good-aarch64");
    std::fs::write(&arm, &bytes).expect("write copy");
    let exe = open(&arm);
    let err = find_static(&exe, "curr_functions_lib_ctx").unwrap_err();
    assert!(
        matches!(&err, CodeRefError::UnsupportedArchitecture(a) if a == "Aarch64"),
        "{err}"
    );
    assert!(
        err.to_string().contains("unsupported architecture"),
        "{err}"
    );
}
