//! Cores and ELF files: gcore of a running server, the name the kernel gives a core, a few
//! reads of ELF files taken whole, and the shared core fixtures (a filled server's core and
//! its truth, in a directory of its own).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use redis::Connection;

use super::fill::{fill_dataset, function_libraries, load_function_libraries, FUNCTION_LIBS};
use super::find_in_path;
use super::server::RedisServer;
use super::truth::{record_truth, Truth};

/// The GNU build-id of an ELF file (hex, lower case), read from its SHT_NOTE sections.
/// Only 64-bit little-endian ELF is supported, which is all the tests need.
pub fn elf_build_id(path: &Path) -> Option<String> {
    let data = fs::read(path).ok()?;
    let u16_at = |o: usize| -> Option<u16> {
        Some(u16::from_le_bytes(data.get(o..o + 2)?.try_into().ok()?))
    };
    let u32_at = |o: usize| -> Option<u32> {
        Some(u32::from_le_bytes(data.get(o..o + 4)?.try_into().ok()?))
    };
    let u64_at = |o: usize| -> Option<u64> {
        Some(u64::from_le_bytes(data.get(o..o + 8)?.try_into().ok()?))
    };
    if data.get(0..6)? != b"\x7fELF\x02\x01" {
        return None;
    }
    let shoff = usize::try_from(u64_at(0x28)?).ok()?;
    let shentsize = usize::from(u16_at(0x3a)?);
    let shnum = usize::from(u16_at(0x3c)?);
    for i in 0..shnum {
        let sh = shoff + i * shentsize;
        if u32_at(sh + 4)? != 7 {
            continue; // not SHT_NOTE
        }
        let off = usize::try_from(u64_at(sh + 0x18)?).ok()?;
        let size = usize::try_from(u64_at(sh + 0x20)?).ok()?;
        let mut p = off;
        while p + 12 <= off + size {
            let namesz = u32_at(p)? as usize;
            let descsz = u32_at(p + 4)? as usize;
            let ntype = u32_at(p + 8)?;
            let name_start = p + 12;
            let desc_start = name_start + namesz.div_ceil(4) * 4;
            if ntype == 3 && data.get(name_start..name_start + namesz)? == b"GNU\0" {
                let desc = data.get(desc_start..desc_start + descsz)?;
                return Some(desc.iter().map(|b| format!("{b:02x}")).collect());
            }
            p = desc_start + descsz.div_ceil(4) * 4;
        }
    }
    None
}

/// Take a core of the running server with `gcore -o out_dir/core <pid>`; returns `out_dir/core.<pid>`.
pub fn gcore(server: &RedisServer, out_dir: &Path) -> PathBuf {
    let prefix = out_dir.join("core");
    let out = Command::new("gcore")
        .arg("-o")
        .arg(&prefix)
        .arg(server.pid().to_string())
        .stdin(Stdio::null())
        .output()
        .expect("cannot run gcore (is gdb installed?)");
    let core = out_dir.join(format!("core.{}", server.pid()));
    assert!(
        out.status.success() && core.is_file(),
        "gcore of pid {} failed ({}), core {} exists: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        server.pid(),
        out.status,
        core.display(),
        core.exists(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    core
}

/// The file name the kernel gives the core of `pid`, from `kernel.core_pattern` and
/// `kernel.core_uses_pid`, relative to the crashing process's cwd. Panics (the test must not be
/// skipped) when the pattern pipes to a helper or names an absolute path.
pub fn kernel_core_name(pid: u32) -> String {
    let pattern = fs::read_to_string("/proc/sys/kernel/core_pattern")
        .expect("read /proc/sys/kernel/core_pattern")
        .trim_end_matches('\n')
        .to_string();
    let uses_pid = fs::read_to_string("/proc/sys/kernel/core_uses_pid")
        .map(|s| s.trim() == "1")
        .unwrap_or(false);
    let fix = "the kernel-core tests (kernel_core_recovers, the matrix's *_kernel_core) need the \
               kernel to write cores as plain files in the crashing process's directory: .ci/run \
               must set `sysctl -w kernel.core_pattern=core` (as root, before `cargo test`)";
    assert!(
        !pattern.starts_with('|'),
        "kernel.core_pattern is {pattern:?}: cores go to a helper (systemd-coredump, apport…), not \
         to a file. {fix}"
    );
    assert!(
        !pattern.starts_with('/') && !pattern.contains('/'),
        "kernel.core_pattern is {pattern:?}: cores are written under another directory. {fix}"
    );
    assert!(!pattern.is_empty(), "kernel.core_pattern is empty. {fix}");
    let mut name = String::new();
    let mut has_pid = false;
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            name.push(c);
            continue;
        }
        match chars.next() {
            Some('%') => name.push('%'),
            Some('p') => {
                has_pid = true;
                name.push_str(&pid.to_string());
            }
            other => panic!(
                "kernel.core_pattern {pattern:?} uses %{} which this test does not expand. {fix}",
                other.map(String::from).unwrap_or_default()
            ),
        }
    }
    if uses_pid && !has_pid {
        name.push_str(&format!(".{pid}"));
    }
    name
}

/// Removes a file when dropped (kernel cores are large and root-only).
pub struct RemoveOnDrop(pub PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

/// Little-endian u16 at `o` of an ELF file read whole (panics past its end).
pub fn u16_at(b: &[u8], o: usize) -> u16 {
    u16::from_le_bytes(b[o..o + 2].try_into().unwrap())
}

/// Little-endian u32 at `o`.
pub fn u32_at(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes(b[o..o + 4].try_into().unwrap())
}

/// Little-endian u64 at `o`.
pub fn u64_at(b: &[u8], o: usize) -> u64 {
    u64::from_le_bytes(b[o..o + 8].try_into().unwrap())
}

/// (e_phoff, e_phentsize, e_phnum).
pub fn phdr_table(b: &[u8]) -> (u64, u64, u64) {
    (
        u64_at(b, 0x20),
        u64::from(u16_at(b, 0x36)),
        u64::from(u16_at(b, 0x38)),
    )
}

/// The load address of the running process `pid`'s executable: where /proc/PID/maps maps
/// file offset 0 of /proc/PID/exe.
pub fn exe_load_base(pid: u32) -> u64 {
    let exe = fs::read_link(format!("/proc/{pid}/exe"))
        .unwrap_or_else(|e| panic!("readlink /proc/{pid}/exe: {e}"));
    let maps = fs::read_to_string(format!("/proc/{pid}/maps"))
        .unwrap_or_else(|e| panic!("read /proc/{pid}/maps: {e}"));
    maps.lines()
        .find_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            (f.len() >= 6 && Path::new(f[5]) == exe && u64::from_str_radix(f[2], 16).ok()? == 0)
                .then(|| u64::from_str_radix(f[0].split('-').next()?, 16).ok())
                .flatten()
        })
        .unwrap_or_else(|| {
            panic!(
                "no mapping of {} at offset 0 in /proc/{pid}/maps",
                exe.display()
            )
        })
}

/// Panics (naming `what`) unless the process `pid` may write a core of any size.
pub fn assert_core_limit_unlimited(pid: u32, what: &str) {
    let limits = fs::read_to_string(format!("/proc/{pid}/limits")).unwrap_or_default();
    let core_limit = limits
        .lines()
        .find(|l| l.starts_with("Max core file size"))
        .unwrap_or("<no such line>");
    assert!(
        core_limit
            .split_whitespace()
            .skip(4)
            .take(2)
            .all(|v| v == "unlimited"),
        "{what}the server should run with RLIMIT_CORE unlimited: {core_limit}"
    );
}

/// A core of a filled server, kept in a directory removed when this is dropped.
pub struct CoreFixture {
    pub dir: PathBuf,
    pub core: PathBuf,
    pub truth: Truth,
    /// The server binary the core was taken from (absolute).
    pub binary: PathBuf,
    /// How long filling, recording and gcore took.
    pub elapsed: Duration,
}

impl Drop for CoreFixture {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Directory for a core of this test process: `CARGO_TARGET_TMPDIR/cores/<tag>-<n>-<pid>`,
/// `n` counting the directories made so far, so that two fixtures of one process never share
/// one (every test file runs in this one binary, side by side). Statics are never dropped,
/// so a fixture kept in a `static` leaves its core behind; this removes the directories of
/// test processes that are gone.
fn core_dir(tag: &str) -> PathBuf {
    static MADE: AtomicUsize = AtomicUsize::new(0);
    let base = Path::new(env!("CARGO_TARGET_TMPDIR")).join("cores");
    fs::create_dir_all(&base).expect("create the cores directory");
    if let Ok(entries) = fs::read_dir(&base) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(pid) = name.rsplit('-').next().and_then(|p| p.parse::<u32>().ok()) else {
                continue;
            };
            if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
                let _ = fs::remove_dir_all(entry.path());
            }
        }
    }
    let n = MADE.fetch_add(1, Ordering::Relaxed);
    let dir = base.join(format!("{tag}-{n}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("create the core directory");
    dir
}

/// Start `binary` with `--activerehashing no`, fill it, record the truth, gcore it, kill it.
pub fn make_core_fixture(binary: &Path, tag: &str) -> CoreFixture {
    make_core_fixture_with(binary, tag, |_| {})
}

/// [`make_core_fixture`], with `prepare` run on the filled server before the truth is
/// recorded (to add what the dataset lacks, such as function libraries).
pub fn make_core_fixture_with(
    binary: &Path,
    tag: &str,
    prepare: impl FnOnce(&mut Connection),
) -> CoreFixture {
    let started = Instant::now();
    let binary = find_in_path(binary.to_str().expect("UTF-8 binary path"));
    let dir = core_dir(tag);
    let server = RedisServer::start(&binary, &["--activerehashing", "no"]);
    let dataset = fill_dataset(&server);
    let mut conn = server.conn();
    prepare(&mut conn);
    let truth = record_truth(&mut conn, dataset);
    let core = gcore(&server, &dir);
    drop(conn);
    drop(server);
    CoreFixture {
        dir,
        core,
        truth,
        binary,
        elapsed: started.elapsed(),
    }
}

/// A core fixture whose server also held function libraries.
pub struct FunctionsFixture {
    pub core: CoreFixture,
    /// FUNCTION LIST WITHCODE of the source ([`function_libraries`]).
    pub libraries: Vec<(String, String)>,
}

/// A core of a filled 7.0+ server with [`FUNCTION_LIBS`] loaded (see
/// [`make_core_fixture_with`]), `extra` run before the truth is recorded.
pub fn make_core_fixture_with_functions(
    binary: &Path,
    tag: &str,
    extra: impl FnOnce(&mut Connection),
) -> FunctionsFixture {
    let mut libraries = Vec::new();
    let core = make_core_fixture_with(binary, tag, |conn| {
        load_function_libraries(conn);
        libraries = function_libraries(conn);
        extra(conn);
    });
    assert_eq!(libraries.len(), FUNCTION_LIBS.len());
    FunctionsFixture { core, libraries }
}
