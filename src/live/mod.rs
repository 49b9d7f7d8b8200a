//! `--pid`: a running (or hung) redis-server read in place, with no core written first.
//! Writing a core needs as much free disk as the process has memory, which is exactly what
//! is missing when Redis hangs on a full disk.
//!
//! The process is presented as a [`CoreFile`], so everything after opening the target is the
//! same as for a core: its memory is read from `/proc/PID/mem`
//! ([`ProcessMemory`](crate::core::proc_mem::ProcessMemory), an
//! [`AddressSpace`](crate::core::AddressSpace) backend), its mappings come from
//! `/proc/PID/maps` (the readable ones are readable; the file-backed ones stand for
//! NT_FILE), the auxiliary vector from `/proc/PID/auxv`, and pid, name and command line
//! from `/proc/PID/status` and `cmdline` (NT_PRPSINFO). By default every thread is stopped
//! for the walk ([`freeze`]); `--no-freeze` reads it running.

pub mod freeze;

use std::io;
use std::path::PathBuf;
use std::time::Duration;

use crate::core::address_space::{AddressSpace, Segment};
use crate::core::notes::{self, FileMapping, ProcessInfo};
use crate::core::proc_mem::ProcessMemory;
use crate::core::{CoreFile, ExecutableInCore};

use freeze::{Freeze, FreezeError};

/// ELF segment flags, as a core's program headers carry them.
const PF_X: u32 = 1;
const PF_W: u32 = 2;
const PF_R: u32 = 4;
/// `/proc/PID/maps` of a process with the kernel's maximum number of mappings (65530) is
/// about 7 MB; more is not a maps file.
const MAX_PROC_FILE: u64 = 64 << 20;
/// `NT_PRPSINFO` keeps 80 bytes of the command line; so does the process info built here.
const PSARGS_LEN: usize = 80;
/// CAP_SYS_PTRACE's bit in `CapEff`.
const CAP_SYS_PTRACE: u32 = 19;

/// The live process cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    /// No such process.
    #[error("no process {0} (is the server running? `pidof redis-server` lists its pid)")]
    NoProcess(i32),
    /// The pid is a thread of another process.
    #[error("{pid} is a thread of process {tgid}: pass --pid {tgid}")]
    NotProcess {
        /// The pid given.
        pid: i32,
        /// Its process.
        tgid: i32,
    },
    /// The process has exited and waits to be reaped.
    #[error("process {0} is a zombie: it has exited and its memory is gone")]
    Zombie(i32),
    /// The pid is redis-rescue's own.
    #[error("--pid {0} is redis-rescue itself")]
    OwnProcess(i32),
    /// A file of `/proc/PID` could not be read.
    #[error("cannot read {path}: {source}")]
    Proc {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// Reading the process is not allowed: the message names the cause and its fix.
    #[error("{0}")]
    Refused(String),
    /// The process could not be stopped.
    #[error(transparent)]
    Freeze(#[from] FreezeError),
}

/// How a live process was read, for the report.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct LiveRead {
    /// The process.
    pub pid: i32,
    /// Every thread was stopped (ptrace) for the walk; false with `--no-freeze`.
    pub frozen: bool,
    /// How long the process was stopped, in seconds: from the first thread stopped to the
    /// last one let go (opening the binary, choosing the profile and the walk); `null` when
    /// it was not stopped.
    pub stopped_seconds: Option<f64>,
    /// Threads stopped and let go.
    pub threads_stopped: usize,
    /// Threads that did not stop (they were in the kernel, e.g. in uninterruptible sleep on
    /// a full disk: they run no user code until they return, and stop then).
    pub threads_not_stopped: Vec<String>,
}

impl LiveRead {
    /// What the report's warnings should say about this read.
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        if !self.frozen {
            out.push(format!(
                "process {} was read while it ran (--no-freeze): keys changed during the walk may be missing, stale or reported lost",
                self.pid
            ));
        }
        if !self.threads_not_stopped.is_empty() {
            out.push(format!(
                "process {}: {} did not stop (in the kernel; they ran no user code meanwhile): {}",
                self.pid,
                self.threads_not_stopped.len(),
                self.threads_not_stopped.join(", ")
            ));
        }
        out
    }
}

/// A live process opened for a rescue; stopped until [`LiveSession::release`] (or until it
/// is dropped, on any error) unless `--no-freeze`.
#[derive(Debug)]
pub struct LiveSession {
    pid: i32,
    freeze: Option<Freeze>,
}

impl LiveSession {
    /// The process id.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// What the report names as the source (`source.core`).
    pub fn source_label(&self) -> String {
        format!("/proc/{}/mem (live process {})", self.pid, self.pid)
    }

    /// The executable to read symbols from when no `--binary` is given: the very file the
    /// process runs, through `/proc/PID/exe`, which stays readable when the path on disk
    /// was replaced by a newer package or deleted. `exe` is what the mappings say (path,
    /// load address, in-memory build-id, still checked against the file's).
    pub fn binary_default(&self, exe: Option<&ExecutableInCore>) -> ExecutableInCore {
        let path = format!("/proc/{}/exe", self.pid);
        match exe {
            Some(e) => ExecutableInCore { path, ..e.clone() },
            None => ExecutableInCore {
                path,
                base: 0,
                build_id: None,
            },
        }
    }

    /// Let the process go (when it was stopped) and say how the read went; `log` gets one
    /// line.
    pub fn release(self, log: &mut dyn FnMut(&str)) -> LiveRead {
        let pid = self.pid;
        let Some(freeze) = self.freeze else {
            return LiveRead {
                pid,
                frozen: false,
                ..LiveRead::default()
            };
        };
        let r = freeze.release();
        log(&format!(
            "process {pid} was stopped for {} ({} threads); it runs again",
            seconds(r.stopped_for),
            r.threads
        ));
        LiveRead {
            pid,
            frozen: true,
            stopped_seconds: Some(r.stopped_for.as_secs_f64()),
            threads_stopped: r.threads,
            threads_not_stopped: r.not_stopped,
        }
    }
}

/// `0.123 s`, or `1.2 ms` under a tenth of a second.
fn seconds(d: Duration) -> String {
    if d < Duration::from_millis(100) {
        format!("{:.1} ms", d.as_secs_f64() * 1000.0)
    } else {
        format!("{:.3} s", d.as_secs_f64())
    }
}

/// Open process `pid` for a rescue: stop it (unless `!freeze`), then read its mappings,
/// auxiliary vector and identity, and open its memory. Stopping comes first so that the
/// mappings read are those of the state walked.
pub fn open(
    pid: i32,
    freeze: bool,
    log: &mut dyn FnMut(&str),
) -> Result<(LiveSession, CoreFile<'static>), LiveError> {
    if u32::try_from(pid).ok() == Some(std::process::id()) {
        return Err(LiveError::OwnProcess(pid));
    }
    let status = match std::fs::read_to_string(format!("/proc/{pid}/status")) {
        Ok(s) => Status::parse(&s),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(LiveError::NoProcess(pid)),
        Err(source) => {
            return Err(LiveError::Proc {
                path: format!("/proc/{pid}/status").into(),
                source,
            })
        }
    };
    if let Some(tgid) = status.tgid.filter(|&t| t != pid) {
        return Err(LiveError::NotProcess { pid, tgid });
    }
    if matches!(status.state, Some('Z' | 'X')) {
        return Err(LiveError::Zombie(pid));
    }
    let session = LiveSession {
        pid,
        freeze: if freeze {
            let f = Freeze::stop(pid)?;
            log(&format!(
                "process {pid} ({}): {} threads stopped with ptrace for the walk (let go at its end, or if redis-rescue is interrupted or killed)",
                status.name,
                f.threads()
            ));
            for t in f.not_stopped() {
                log(&format!(
                    "warning: {t} did not stop within {} s: it is in the kernel and runs no user code until it returns (then it stops)",
                    freeze::STOP_WAIT.as_secs()
                ));
            }
            Some(f)
        } else {
            None
        },
    };
    let maps = proc_text(pid, "maps")?;
    let (segments, files) = parse_maps(&maps);
    let auxv = notes::parse_auxv(&proc_bytes(pid, "auxv")?);
    let cmdline = proc_bytes(pid, "cmdline")?;
    let memory = ProcessMemory::open(format!("/proc/{pid}/mem").as_ref())
        .map_err(|e| proc_error(pid, "mem", e))?;
    let process = ProcessInfo {
        pid,
        uid: status.uid.unwrap_or(0),
        fname: status.name.clone(),
        psargs: psargs(&cmdline),
    };
    if session.freeze.is_none() {
        log(&format!(
            "warning: process {pid} ({}) is read while it runs (--no-freeze)",
            status.name
        ));
    }
    let core = CoreFile {
        space: AddressSpace::process(memory, segments),
        files,
        process: Some(process),
        auxv,
    };
    Ok((session, core))
}

/// A permission error on `/proc/PID/NAME` explained (the same checks as ptrace apply to
/// `maps`, `auxv` and `mem`), any other error as it is.
fn proc_error(pid: i32, name: &str, e: io::Error) -> LiveError {
    match e.raw_os_error() {
        Some(errno @ (libc::EACCES | libc::EPERM)) => LiveError::Refused(format!(
            "cannot read /proc/{pid}/{name}: {e}; {}",
            explain_refusal(pid, errno)
        )),
        _ => LiveError::Proc {
            path: format!("/proc/{pid}/{name}").into(),
            source: e,
        },
    }
}

fn proc_bytes(pid: i32, name: &str) -> Result<Vec<u8>, LiveError> {
    use std::io::Read;
    let file =
        std::fs::File::open(format!("/proc/{pid}/{name}")).map_err(|e| proc_error(pid, name, e))?;
    let mut out = Vec::new();
    file.take(MAX_PROC_FILE)
        .read_to_end(&mut out)
        .map_err(|e| proc_error(pid, name, e))?;
    Ok(out)
}

fn proc_text(pid: i32, name: &str) -> Result<String, LiveError> {
    Ok(String::from_utf8_lossy(&proc_bytes(pid, name)?).into_owned())
}

/// The command line as NT_PRPSINFO holds it: arguments joined by spaces, 80 bytes at most.
fn psargs(cmdline: &[u8]) -> String {
    let joined: Vec<u8> = cmdline
        .iter()
        .take(PSARGS_LEN)
        .map(|&b| if b == 0 { b' ' } else { b })
        .collect();
    String::from_utf8_lossy(&joined).trim_end().to_owned()
}

/// The fields of `/proc/PID/status` the tool uses.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Status {
    name: String,
    state: Option<char>,
    tgid: Option<i32>,
    /// Real, effective and saved uid.
    uids: Vec<u32>,
    uid: Option<u32>,
    tracer: Option<i32>,
    /// `CapEff`.
    cap_eff: Option<u64>,
}

impl Status {
    fn parse(text: &str) -> Status {
        let mut s = Status::default();
        for line in text.lines() {
            let Some((key, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim();
            match key {
                "Name" => s.name = value.to_owned(),
                "State" => s.state = value.chars().next(),
                "Tgid" => s.tgid = value.parse().ok(),
                "TracerPid" => s.tracer = value.parse().ok(),
                "Uid" => {
                    s.uids = value
                        .split_whitespace()
                        .take(3)
                        .filter_map(|u| u.parse().ok())
                        .collect();
                    s.uid = s.uids.first().copied();
                }
                "CapEff" => s.cap_eff = u64::from_str_radix(value, 16).ok(),
                _ => {}
            }
        }
        s
    }

    fn of(pid: &str) -> Status {
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .map(|t| Status::parse(&t))
            .unwrap_or_default()
    }
}

/// The state letter of a `/proc/.../stat` line: the field after the command name, which is in
/// parentheses and may itself hold spaces and parentheses.
pub(crate) fn state_of_stat(stat: &str) -> Option<char> {
    let after = stat.get(stat.rfind(')')? + 1..)?;
    after.trim_start().chars().next()
}

/// User name of `uid` from /etc/passwd, for messages.
fn user_name(uid: u32) -> Option<String> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let mut f = l.split(':');
        let name = f.next()?;
        let id: u32 = f.nth(1)?.parse().ok()?;
        (id == uid).then(|| name.to_owned())
    })
}

/// Why ptrace (or `/proc/PID/mem`, which takes the same permission) is refused for process
/// `pid`, and what to do about it, in one clause: another tracer, another user, Yama's
/// `ptrace_scope`, a missing CAP_SYS_PTRACE (containers); checked in that order.
pub(crate) fn explain_refusal(pid: i32, errno: i32) -> String {
    let target = Status::of(&pid.to_string());
    let me = Status::of("self");
    let has_cap = me
        .cap_eff
        .is_some_and(|c| c & (1u64 << CAP_SYS_PTRACE) != 0);
    if let Some(tracer) = target.tracer.filter(|&t| t != 0) {
        let name = Status::of(&tracer.to_string()).name;
        return format!(
            "it is already traced by process {tracer} ({name}), and a process has one tracer at a time: detach that debugger or tracer (quit gdb or strace), or pass --no-freeze to read it without stopping it"
        );
    }
    let my_uid = me.uids.get(1).copied();
    if my_uid != Some(0) && !has_cap {
        if let (Some(mine), Some(theirs)) = (my_uid, target.uids.get(1).copied()) {
            if target.uids.iter().any(|&u| u != mine) {
                let user = user_name(theirs).map_or(String::new(), |n| format!(" ({n})"));
                return format!(
                    "redis-rescue runs as uid {mine} and the server as uid {theirs}{user}: run redis-rescue as that user (sudo -u) or as root"
                );
            }
        }
    }
    let yama = std::fs::read_to_string("/proc/sys/kernel/yama/ptrace_scope")
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok());
    match yama {
        Some(1) if !has_cap => return "kernel.yama.ptrace_scope is 1 (only a parent may trace its children): run redis-rescue as root, or allow it with `sysctl kernel.yama.ptrace_scope=0`".into(),
        Some(2) if !has_cap => return "kernel.yama.ptrace_scope is 2 (only CAP_SYS_PTRACE may trace): run redis-rescue as root".into(),
        Some(3) => return "kernel.yama.ptrace_scope is 3 (no process may trace another until reboot): a live rescue is impossible on this boot; dump a core by other means (systemd-coredump, kill -SEGV with a core limit) and recover that".into(),
        _ => {}
    }
    if !has_cap {
        return "redis-rescue lacks CAP_SYS_PTRACE: run it as root (in a container, add the capability: docker run --cap-add=SYS_PTRACE, or run it from the host)".into();
    }
    format!(
        "refused ({}) although redis-rescue has CAP_SYS_PTRACE: a security module (SELinux, AppArmor) or a container boundary forbids it; run it from the host, or where the policy allows ptrace",
        io::Error::from_raw_os_error(errno)
    )
}

/// One line of `/proc/PID/maps`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct MapLine {
    start: u64,
    end: u64,
    /// `rwxp`.
    perms: [u8; 4],
    offset: u64,
    /// Path or pseudo-name (`[heap]`); empty for anonymous memory.
    path: String,
}

fn parse_map_line(line: &str) -> Option<MapLine> {
    // start-end perms offset dev inode [path]; the path may hold spaces.
    let mut it = line.splitn(6, ' ');
    let (start, end) = it.next()?.split_once('-')?;
    let perms: [u8; 4] = it.next()?.as_bytes().try_into().ok()?;
    let offset = u64::from_str_radix(it.next()?, 16).ok()?;
    let _dev = it.next()?;
    let _inode = it.next()?;
    let path = it.next().unwrap_or("").trim_start().to_owned();
    let (start, end) = (
        u64::from_str_radix(start, 16).ok()?,
        u64::from_str_radix(end, 16).ok()?,
    );
    (end > start).then_some(MapLine {
        start,
        end,
        perms,
        offset,
        path,
    })
}

/// `/proc/PID/maps` as a core would have it: one segment per mapping (readable only with
/// `r`), and the file-backed mappings as NT_FILE lists them (path, range, file offset; a
/// deleted file keeps the kernel's ` (deleted)` suffix, as in NT_FILE).
fn parse_maps(text: &str) -> (Vec<Segment>, Vec<FileMapping>) {
    let mut segments = Vec::new();
    let mut files = Vec::new();
    for m in text.lines().filter_map(parse_map_line) {
        let [r, w, x, _] = m.perms;
        let readable = r == b'r';
        let len = m.end - m.start;
        let mut flags = 0;
        for (set, bit) in [(r == b'r', PF_R), (w == b'w', PF_W), (x == b'x', PF_X)] {
            if set {
                flags |= bit;
            }
        }
        segments.push(Segment {
            vaddr: m.start,
            memsz: len,
            filesz: if readable { len } else { 0 },
            file_offset: 0,
            present: if readable { len } else { 0 },
            flags,
        });
        if m.path.starts_with('/') {
            files.push(FileMapping {
                start: m.start,
                end: m.end,
                file_offset: m.offset,
                path: m.path,
            });
        }
    }
    (segments, files)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAPS: &str = "\
55d0c6a00000-55d0c6a53000 r--p 00000000 fe:01 1234                       /usr/bin/redis-check-rdb
55d0c6a53000-55d0c6c40000 r-xp 00053000 fe:01 1234                       /usr/bin/redis-check-rdb
55d0c6d00000-55d0c6d10000 rw-p 00200000 fe:01 1234                       /usr/bin/redis-check-rdb
55d0c7e00000-55d0c7e21000 rw-p 00000000 00:00 0                          [heap]
7f1200000000-7f1200200000 ---p 00000000 00:00 0 
7f1300000000-7f1300001000 r--p 00000000 fe:01 99                         /tmp/a file (deleted)
7ffd1000000-7ffd1021000 rw-p 00000000 00:00 0                            [stack]
ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]
garbage line
";

    #[test]
    fn maps_become_segments_and_file_mappings() {
        let (segments, files) = parse_maps(MAPS);
        assert_eq!(segments.len(), 8);
        assert_eq!(segments[0].vaddr, 0x55d0c6a00000);
        assert_eq!(segments[0].flags, PF_R);
        assert_eq!(segments[1].flags, PF_R | PF_X);
        assert_eq!(segments[2].flags, PF_R | PF_W);
        // No read permission: mapped, but never read.
        assert_eq!((segments[4].present, segments[4].memsz), (0, 0x200000));
        assert_eq!(segments[7].present, 0);
        assert_eq!(files.len(), 4);
        assert_eq!(files[2].file_offset, 0x200000);
        assert_eq!(files[3].path, "/tmp/a file (deleted)");
        assert!(files.iter().all(|f| !f.path.starts_with('[')));
    }

    #[test]
    fn status_and_stat_fields() {
        let s = Status::parse(
            "Name:\tredis-server\nState:\tS (sleeping)\nTgid:\t77\nPid:\t78\nTracerPid:\t0\nUid:\t101\t101\t101\t101\nCapEff:\t0000000000080000\n",
        );
        assert_eq!(s.name, "redis-server");
        assert_eq!(
            (s.state, s.tgid, s.tracer, s.uid),
            (Some('S'), Some(77), Some(0), Some(101))
        );
        assert_eq!(s.uids, [101, 101, 101]);
        assert_eq!(s.cap_eff, Some(1 << CAP_SYS_PTRACE));
        assert_eq!(state_of_stat("12 (redis (x) y) t 1 2"), Some('t'));
        assert_eq!(state_of_stat("garbage"), None);
        assert_eq!(psargs(b"redis-server\0*:6379\0"), "redis-server *:6379");
        assert_eq!(psargs(&[b'a'; 200]).len(), PSARGS_LEN);
    }

    /// This test process read live, without freezing (it cannot stop itself): its own
    /// executable is found through the mappings and auxv exactly as in a core.
    #[test]
    fn a_live_process_reads_like_a_core() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        let mut lines = Vec::new();
        let (session, core) = open(pid, true, &mut |l: &str| lines.push(l.to_owned())).unwrap();
        assert!(lines[0].contains("1 threads stopped"), "{lines:?}");
        let exe = core
            .executable()
            .expect("the executable from maps and auxv");
        let on_disk = std::fs::canonicalize("/proc/self/exe").unwrap();
        let sleep = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap();
        assert_eq!(std::path::Path::new(&exe.path), sleep);
        assert_ne!(sleep, on_disk);
        // The ELF header of the running binary, read from its memory.
        assert_eq!(core.space.read_array::<4>(exe.base).unwrap(), *b"\x7fELF");
        assert!(exe.build_id.is_some());
        assert_eq!(core.process.as_ref().unwrap().pid, pid);
        assert_eq!(
            session.binary_default(Some(&exe)).path,
            format!("/proc/{pid}/exe")
        );
        let read = session.release(&mut |l: &str| lines.push(l.to_owned()));
        assert!(read.frozen && read.stopped_seconds.is_some() && read.threads_stopped == 1);
        assert!(
            lines.last().unwrap().contains("was stopped for"),
            "{lines:?}"
        );
        assert!(matches!(
            open(std::process::id() as i32, false, &mut |_: &str| {}),
            Err(LiveError::OwnProcess(_))
        ));
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(matches!(
            open(pid, false, &mut |_: &str| {}),
            Err(LiveError::NoProcess(_))
        ));
    }
}
