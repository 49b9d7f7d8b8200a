//! `redis-rescue bundle`: one archive to recover from elsewhere. Each source is Debian 12's
//! redis-server 7.0.15 filled with the common dataset (every type and encoding, TTLs,
//! streams, db 3 mid-rehash):
//! - a bundle made with `--pid` (the core written by the tool while the server is stopped)
//!   recovers on its own, from another directory, with the executable it carries (the report
//!   says so): DEBUG DIGEST, DBSIZE per db, TTLs and streams equal; the source keeps serving
//!   with its digest unchanged; the archive and its entries are 0600; the core inside keeps
//!   only the writable mappings, the executable's writable image and its header page, and the
//!   archive is a small fraction of what the process maps; `--no-dry-run` leaves the report
//!   out;
//! - a bundle of a gcore core recovers the same; a cut, a corrupted or a core-less copy is
//!   refused (exit 2, one line saying which) with no temporary file left behind.
//!
//! Needs root (ptrace), gdb, and the system's `tar` with zstd for the core-less copy.

use std::ffi::OsStr;
use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::common::{
    assert_report_matches, assert_restores_exactly, assert_source_unharmed, describe, elf_build_id,
    exe_load_base, fill_dataset, find_in_path, make_core_fixture, phdr_table, read_report,
    record_truth, run_rescue, run_rescue_in, u32_at, u64_at, RedisServer,
};

const PF_W: u32 = 2;
const PT_LOAD: u32 = 1;

fn work_dir(tag: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("bundle-{tag}-"))
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .expect("create the test's work dir")
}

fn os(s: &str) -> &OsStr {
    OsStr::new(s)
}

fn mode_of(path: &Path) -> u32 {
    fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// One entry of a bundle, read with the tar and zstd crates.
struct TarEntry {
    name: String,
    mode: u32,
    data: Vec<u8>,
}

fn entries_of(bundle: &Path) -> Vec<TarEntry> {
    let file = fs::File::open(bundle).expect("open the bundle");
    let mut archive = tar::Archive::new(zstd::stream::read::Decoder::new(file).expect("zstd"));
    archive
        .entries()
        .expect("a tar archive")
        .map(|e| {
            let mut e = e.expect("a tar entry");
            let mut data = Vec::new();
            e.read_to_end(&mut data).expect("read a tar entry");
            TarEntry {
                name: String::from_utf8_lossy(&e.path_bytes()).into_owned(),
                mode: e.header().mode().expect("a mode"),
                data,
            }
        })
        .collect()
}

/// `(start, end, perms, path)` of each line of `/proc/PID/maps` text.
fn parse_maps(maps: &str) -> Vec<(u64, u64, String, String)> {
    maps.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let (a, b) = f.first()?.split_once('-')?;
            Some((
                u64::from_str_radix(a, 16).ok()?,
                u64::from_str_radix(b, 16).ok()?,
                f.get(1)?.to_string(),
                f.get(5..).map(|p| p.join(" ")).unwrap_or_default(),
            ))
        })
        .collect()
}

/// `(vaddr, filesz, memsz, flags)` of the PT_LOADs of an ELF file held whole.
fn loads(elf: &[u8]) -> Vec<(u64, u64, u64, u32)> {
    let (phoff, phentsize, phnum) = phdr_table(elf);
    (0..phnum)
        .map(|i| (phoff + i * phentsize) as usize)
        .filter(|&p| u32_at(elf, p) == PT_LOAD)
        .map(|p| {
            (
                u64_at(elf, p + 0x10),
                u64_at(elf, p + 0x20),
                u64_at(elf, p + 0x28),
                u32_at(elf, p + 4),
            )
        })
        .collect()
}

/// A run of the tool with `TMPDIR` set, so its temporary files can be looked for.
fn rescue_with_tmpdir(tmpdir: &Path, args: &[&OsStr]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_redis-rescue"))
        .args(args)
        .env("TMPDIR", tmpdir)
        .stdin(Stdio::null())
        .output()
        .expect("run redis-rescue")
}

#[test]
fn bundle_of_a_live_7_0_15_recovers_on_its_own() {
    let bin = find_in_path("redis-server");
    let source = RedisServer::start(&bin, &["--activerehashing", "no"]);
    let dataset = fill_dataset(&source);
    let mut conn = source.conn();
    let truth = record_truth(&mut conn, dataset);
    drop(conn);
    let pid = source.pid();
    let dir = work_dir("pid");
    let bundle = dir.path().join("rescue.tar.zst");

    let pid_text = pid.to_string();
    let out = run_rescue(&[
        os("bundle"),
        os("--pid"),
        os(&pid_text),
        os("-o"),
        bundle.as_os_str(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("process {pid} was stopped for")),
        "{}",
        describe(&out)
    );
    assert_source_unharmed(&source, &truth.digest, "after bundle --pid");

    // The archive and every entry in it are private.
    assert_eq!(mode_of(&bundle), 0o600, "the bundle's mode");
    let entries = entries_of(&bundle);
    let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "redis-rescue-bundle/manifest.json",
            "redis-rescue-bundle/maps",
            "redis-rescue-bundle/report.json",
            "redis-rescue-bundle/bin/redis-check-rdb",
            "redis-rescue-bundle/core",
        ],
        "the bundle's entries"
    );
    for e in &entries {
        assert_eq!(e.mode, 0o600, "mode of {}", e.name);
    }
    let manifest: serde_json::Value =
        serde_json::from_slice(&entries[0].data).expect("the manifest is JSON");
    let build_id = elf_build_id(&fs::canonicalize(&bin).unwrap()).expect("a build-id");
    assert_eq!(manifest["build_id"], build_id, "manifest: {manifest:#}");
    assert_eq!(manifest["source"]["pid"], pid, "manifest: {manifest:#}");
    assert_eq!(manifest["binary"]["build_id"], build_id);
    assert_eq!(
        entries[3].data,
        fs::read(fs::canonicalize(&bin).unwrap()).unwrap(),
        "the bundled executable is the server's"
    );
    let dry: serde_json::Value = serde_json::from_slice(&entries[2].data).unwrap();
    assert_report_matches(&dry, &truth);
    assert_eq!(dry["dry_run"], true);

    // The core keeps only what a walk reads: writable mappings, the executable's writable
    // image (part of it read-only after relocation) and its ELF header page.
    let maps_text = String::from_utf8(entries[1].data.clone()).unwrap();
    let maps = parse_maps(&maps_text);
    let mapped: u64 = maps.iter().map(|m| m.1 - m.0).sum();
    let base = exe_load_base(pid);
    let exe_file = fs::read(fs::canonicalize(&bin).unwrap()).unwrap();
    let first_vaddr = loads(&exe_file)
        .iter()
        .map(|l| l.0)
        .min()
        .expect("the executable has PT_LOADs");
    let exe_writable: Vec<(u64, u64)> = loads(&exe_file)
        .iter()
        .filter(|l| l.3 & PF_W != 0)
        .map(|l| {
            let start = base + l.0 - first_vaddr;
            (start & !4095, (start + l.2 + 4095) & !4095)
        })
        .collect();
    let core = &entries[4].data;
    assert_eq!(&core[..4], b"\x7fELF");
    assert_eq!(u16::from_le_bytes([core[16], core[17]]), 4, "ET_CORE");
    let mut kept = 0;
    for (vaddr, filesz, _, _) in loads(core).into_iter().filter(|l| l.1 > 0) {
        let end = vaddr + filesz;
        let writable = maps
            .iter()
            .any(|m| m.2.contains('w') && m.0 <= vaddr && end <= m.1);
        let header = vaddr == base && filesz == 4096;
        let image = exe_writable.iter().any(|r| r.0 <= vaddr && end <= r.1);
        assert!(
            writable || header || image,
            "the core keeps {vaddr:#x}..{end:#x}, which is neither writable nor the executable's header page or writable image\n{maps_text}"
        );
        kept += filesz;
    }
    let code = maps
        .iter()
        .find(|m| m.2 == "r-xp" && m.0 > base && m.0 < base + (64 << 20))
        .expect("the executable's code mapping");
    assert!(
        !loads(core)
            .iter()
            .any(|l| l.1 > 0 && l.0 < code.1 && code.0 < l.0 + l.1),
        "the executable's code is in the core"
    );
    let bundle_size = fs::metadata(&bundle).unwrap().len();
    eprintln!(
        "bundle --pid: {bundle_size} bytes; core {} bytes keeping {kept} of the {mapped} bytes mapped",
        core.len()
    );
    assert!(kept < mapped, "kept {kept} of {mapped}");
    assert!(
        bundle_size * 10 < mapped,
        "the bundle ({bundle_size} bytes) should be much smaller than the process's mappings ({mapped} bytes)"
    );

    // Without the dry run the process is stopped only for the copy, and the bundle holds no
    // report.
    let quick = dir.path().join("quick.tar.zst");
    let out = run_rescue(&[
        os("bundle"),
        os("--pid"),
        os(&pid_text),
        os("--no-dry-run"),
        os("-o"),
        quick.as_os_str(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let quick_entries = entries_of(&quick);
    assert!(
        !quick_entries
            .iter()
            .any(|e| e.name.ends_with("report.json")),
        "a --no-dry-run bundle holds a report"
    );
    let quick_manifest: serde_json::Value = serde_json::from_slice(&quick_entries[0].data).unwrap();
    assert_eq!(quick_manifest["dry_run"]["error"], "not run (--no-dry-run)");
    assert_source_unharmed(&source, &truth.digest, "after bundle --pid --no-dry-run");

    // Recovered elsewhere: from a directory of its own, with nothing but the bundle.
    let elsewhere = dir.path().join("elsewhere");
    fs::create_dir(&elsewhere).unwrap();
    let out = run_rescue_in(
        Some(&elsewhere),
        &[bundle.as_os_str(), os("-o"), os("dump.rdb")],
    );
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let dump = elsewhere.join("dump.rdb");
    let report = read_report(&elsewhere.join("dump.rdb.report.json"));
    let binary = report["source"]["binary"].as_str().unwrap_or_default();
    assert!(
        binary.starts_with(&format!(
            "{}:redis-rescue-bundle/bin/redis-check-rdb",
            bundle.display()
        )) && binary.contains("from the bundle"),
        "report.source.binary should name the bundle's executable: {:#}",
        report["source"]
    );
    assert!(
        !report["source"]
            .to_string()
            .contains("redis-rescue-bundle."),
        "the report names a temporary file: {:#}",
        report["source"]
    );
    assert_report_matches(&report, &truth);
    assert_eq!(mode_of(&dump), 0o600, "the dump's mode");
    assert_restores_exactly(&bin, &dump, &truth);
    drop(source);
}

#[test]
fn bundle_of_a_gcore_core_recovers_and_damage_is_refused() {
    let fixture = make_core_fixture(Path::new("redis-server"), "bundle");
    let dir = work_dir("core");
    let bundle = dir.path().join("core.tar.zst");
    let out = run_rescue(&[
        os("bundle"),
        fixture.core.as_os_str(),
        os("-o"),
        bundle.as_os_str(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert_eq!(mode_of(&bundle), 0o600);
    let names: Vec<String> = entries_of(&bundle).into_iter().map(|e| e.name).collect();
    assert_eq!(
        names,
        [
            "redis-rescue-bundle/manifest.json",
            "redis-rescue-bundle/report.json",
            "redis-rescue-bundle/bin/redis-check-rdb",
            "redis-rescue-bundle/core",
        ]
    );

    let elsewhere = dir.path().join("elsewhere");
    fs::create_dir(&elsewhere).unwrap();
    let out = run_rescue_in(
        Some(&elsewhere),
        &[bundle.as_os_str(), os("-o"), os("dump.rdb")],
    );
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let report = read_report(&elsewhere.join("dump.rdb.report.json"));
    assert!(
        report["source"]["binary"]
            .as_str()
            .is_some_and(|b| b.contains("from the bundle")),
        "{:#}",
        report["source"]
    );
    assert_report_matches(&report, &fixture.truth);
    assert_restores_exactly(&fixture.binary, &elsewhere.join("dump.rdb"), &fixture.truth);

    // An existing archive is kept unless --force; --mode widens it.
    let out = run_rescue(&[
        os("bundle"),
        fixture.core.as_os_str(),
        os("-o"),
        bundle.as_os_str(),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    let out = run_rescue(&[
        os("bundle"),
        fixture.core.as_os_str(),
        os("-o"),
        bundle.as_os_str(),
        os("--force"),
        os("--mode"),
        os("0640"),
        os("-q"),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert_eq!(mode_of(&bundle), 0o640);

    // Damaged copies: cut in the core, a corrupted byte, the core left out.
    let whole = fs::read(&bundle).unwrap();
    let cut = dir.path().join("cut.tar.zst");
    fs::write(&cut, &whole[..whole.len() / 2]).unwrap();
    let flipped = dir.path().join("flipped.tar.zst");
    let mut bytes = whole.clone();
    let at = bytes.len() * 2 / 3;
    bytes[at] ^= 0x55;
    fs::write(&flipped, &bytes).unwrap();
    let unpacked = dir.path().join("unpacked");
    fs::create_dir(&unpacked).unwrap();
    let tar_ok = |args: &[&str]| {
        let st = Command::new("tar")
            .args(args)
            .current_dir(&unpacked)
            .status()
            .expect("run tar");
        assert!(st.success(), "tar {args:?}");
    };
    tar_ok(&["--zstd", "-xf", bundle.to_str().unwrap()]);
    let coreless = dir.path().join("coreless.tar.zst");
    tar_ok(&[
        "--zstd",
        "-cf",
        coreless.to_str().unwrap(),
        "redis-rescue-bundle/manifest.json",
        "redis-rescue-bundle/report.json",
        "redis-rescue-bundle/bin/redis-check-rdb",
    ]);
    let tmpdir = dir.path().join("tmp");
    fs::create_dir(&tmpdir).unwrap();
    for (damaged, says) in [
        (&cut, "is an incomplete bundle: it is cut off in core"),
        (&flipped, "is a damaged bundle"),
        (&coreless, "is an incomplete bundle: it lacks core"),
    ] {
        let rdb = dir.path().join("never.rdb");
        let out = rescue_with_tmpdir(&tmpdir, &[damaged.as_os_str(), os("-o"), rdb.as_os_str()]);
        assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        let errors: Vec<&str> = stderr
            .lines()
            .filter(|l| l.starts_with("redis-rescue:"))
            .collect();
        assert_eq!(errors.len(), 1, "{}", describe(&out));
        assert!(errors[0].contains(says), "{}", describe(&out));
        assert!(!rdb.exists());
        let left: Vec<PathBuf> = fs::read_dir(&tmpdir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert!(left.is_empty(), "temporary files left: {left:?}");
    }
}
