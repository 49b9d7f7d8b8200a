//! Stopping a live process for the walk, so that the walk reads one consistent state, and
//! letting it go again in every case.
//!
//! Every thread (`/proc/PID/task/*`) is attached with `PTRACE_SEIZE`, which, unlike
//! `PTRACE_ATTACH`, sends no signal, and stopped with `PTRACE_INTERRUPT`. A thread created
//! meanwhile is found by listing `task/` again until no new one shows up (a stopped thread
//! creates none). The process is let go with `PTRACE_DETACH`:
//! - after the walk, by [`Freeze::release`];
//! - on an error, by [`Drop`];
//! - on SIGINT, SIGTERM or SIGHUP, by a handler that detaches every seized thread and then
//!   lets the signal end the tool as it would have;
//! - when the tool dies any other way (SIGKILL included), by the kernel: the exit of a tracer
//!   detaches its tracees, drops their pending interrupt and wakes the stopped ones.
//!
//! SIGSTOP is never used: if the tool died, nobody would send the SIGCONT, and the server
//! would stay stopped. Only these requests are made: ptrace never writes the target's memory.
//!
//! A thread that stops to receive a signal (signal-delivery-stop) instead of for the
//! interrupt is given that signal back when it is let go, so the server misses nothing
//! (except when the tool is killed with SIGKILL, which no handler sees).
//!
//! A thread in uninterruptible sleep (state D: a Redis hung in the kernel writing to a full
//! disk) cannot stop until it returns from the kernel. It runs no user code before then, and
//! the pending interrupt stops it on the way out, so the walk goes ahead after
//! [`STOP_WAIT`] and the report names the thread.

use std::collections::BTreeSet;
use std::io;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Once;
use std::time::{Duration, Instant};

/// How long the threads get to stop before the walk goes ahead without the ones that have
/// not (they are in the kernel: see the module documentation).
pub const STOP_WAIT: Duration = Duration::from_secs(2);
/// Listings of `task/` before giving up on a process whose thread count does not settle.
const MAX_SCANS: usize = 64;
/// Threads seized at most.
const MAX_THREADS: usize = 1 << 16;
/// `waitpid` status bits 16..: the ptrace event of a stop (`PTRACE_EVENT_STOP` for the
/// interrupt and for group-stops).
const PTRACE_EVENT_STOP: i32 = 128;
/// Interrupted `waitpid` calls retried before a thread is treated as not stopped yet.
const MAX_EINTR_RETRIES: u32 = 100;

/// The process could not be stopped.
#[derive(Debug, thiserror::Error)]
pub enum FreezeError {
    /// `/proc/PID/task` could not be listed.
    #[error("cannot list the threads of process {pid} ({path}): {source}")]
    Tasks {
        /// The process.
        pid: i32,
        /// The directory.
        path: String,
        /// The cause.
        source: io::Error,
    },
    /// ptrace was refused: the message names the cause and its fix.
    #[error("{0}")]
    Refused(String),
    /// Another ptrace request failed.
    #[error("ptrace {op} of thread {tid} of process {pid} failed: {source}")]
    Ptrace {
        /// The process.
        pid: i32,
        /// The thread.
        tid: i32,
        /// The request.
        op: &'static str,
        /// The cause.
        source: io::Error,
    },
    /// Threads kept appearing, or there are too many.
    #[error("process {pid} does not hold still: {threads} threads seized and new ones still appear; retry, or pass --no-freeze")]
    Unstable {
        /// The process.
        pid: i32,
        /// Threads seized so far.
        threads: usize,
    },
    /// Every thread exited while being seized.
    #[error("process {0} exited while it was being stopped")]
    Exited(i32),
}

/// Where a seized thread stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    /// Seized and interrupted; its stop has not been seen yet.
    Waiting,
    /// Stopped. `signal` is the one it was about to receive (given back at detach), or 0.
    Stopped { signal: i32 },
    /// Exited, or detached.
    Gone,
}

#[derive(Debug)]
struct Tracee {
    tid: i32,
    stop: Stop,
    /// Its entry in the signal handler's table, when there was room.
    slot: Option<usize>,
}

/// What a freeze amounted to, once let go.
#[derive(Debug, Clone, PartialEq)]
pub struct Released {
    /// From the first thread seized to the last one let go.
    pub stopped_for: Duration,
    /// Threads that were stopped and let go.
    pub threads: usize,
    /// Threads that never stopped (in the kernel), as `thread TID (state S)`.
    pub not_stopped: Vec<String>,
}

/// A process stopped with ptrace; let go by [`Freeze::release`], or when dropped.
#[derive(Debug)]
pub struct Freeze {
    pid: i32,
    tracees: Vec<Tracee>,
    started: Instant,
    /// Threads that had not stopped when the walk went ahead, with their state then.
    late: Vec<String>,
}

impl Freeze {
    /// Stop every thread of process `pid`. Waits up to [`STOP_WAIT`] for the stops; threads
    /// still running then (in uninterruptible sleep) are listed in the result of
    /// [`Freeze::release`].
    pub fn stop(pid: i32) -> Result<Freeze, FreezeError> {
        install_signal_handlers();
        let mut freeze = Freeze {
            pid,
            tracees: Vec::new(),
            started: Instant::now(),
            late: Vec::new(),
        };
        let deadline = freeze.started + STOP_WAIT;
        let mut known = BTreeSet::new();
        for _ in 0..MAX_SCANS {
            let new: Vec<i32> = task_ids(pid)?
                .into_iter()
                .filter(|t| !known.contains(t))
                .collect();
            if new.is_empty() {
                if freeze.live_threads() == 0 {
                    return Err(FreezeError::Exited(pid));
                }
                freeze.note_late();
                return Ok(freeze);
            }
            for tid in new {
                known.insert(tid);
                if freeze.tracees.len() >= MAX_THREADS {
                    return Err(FreezeError::Unstable {
                        pid,
                        threads: freeze.tracees.len(),
                    });
                }
                freeze.seize(tid)?;
            }
            freeze.wait_for_stops(deadline);
        }
        Err(FreezeError::Unstable {
            pid,
            threads: freeze.tracees.len(),
        })
    }

    /// Threads seized (stopped, or still on their way to the stop).
    pub fn threads(&self) -> usize {
        self.live_threads()
    }

    /// Threads that had not stopped when the walk went ahead (`thread TID (state S)`).
    pub fn not_stopped(&self) -> &[String] {
        &self.late
    }

    fn live_threads(&self) -> usize {
        self.tracees.iter().filter(|t| t.stop != Stop::Gone).count()
    }

    /// Seize and interrupt one thread. A thread that is gone by then is skipped; a refusal
    /// on the first thread is explained (the others are refused for the same reason, if
    /// at all).
    fn seize(&mut self, tid: i32) -> Result<(), FreezeError> {
        if let Err(e) = ptrace_request(libc::PTRACE_SEIZE, tid, 0) {
            return match e.raw_os_error() {
                Some(libc::ESRCH) => Ok(()),
                Some(errno) if self.tracees.is_empty() => Err(FreezeError::Refused(format!(
                    "cannot stop process {} with ptrace: {e}; {}",
                    self.pid,
                    super::explain_refusal(self.pid, errno)
                ))),
                _ => Err(FreezeError::Ptrace {
                    pid: self.pid,
                    tid,
                    op: "SEIZE",
                    source: e,
                }),
            };
        }
        let slot = register(tid);
        self.tracees.push(Tracee {
            tid,
            stop: Stop::Waiting,
            slot,
        });
        match ptrace_request(libc::PTRACE_INTERRUPT, tid, 0) {
            Ok(()) => Ok(()),
            // It exited between the two requests; its exit is collected by the wait.
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => Ok(()),
            Err(e) => Err(FreezeError::Ptrace {
                pid: self.pid,
                tid,
                op: "INTERRUPT",
                source: e,
            }),
        }
    }

    /// Collect the stops of the interrupted threads until all have stopped or `deadline`.
    fn wait_for_stops(&mut self, deadline: Instant) {
        let mut pause = Duration::from_micros(50);
        loop {
            let mut waiting = false;
            for t in self.tracees.iter_mut().filter(|t| t.stop == Stop::Waiting) {
                t.stop = poll_stop(t.tid);
                match t.stop {
                    Stop::Waiting => waiting = true,
                    Stop::Stopped { signal } => set_signal(t.slot, t.tid, signal),
                    Stop::Gone => unregister(t.slot),
                }
            }
            if !waiting || Instant::now() >= deadline {
                return;
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(5));
        }
    }

    fn note_late(&mut self) {
        self.late = self
            .tracees
            .iter()
            .filter(|t| t.stop == Stop::Waiting)
            .map(|t| {
                format!(
                    "thread {} (state {})",
                    t.tid,
                    thread_state(self.pid, t.tid).unwrap_or('?')
                )
            })
            .collect();
    }

    /// Let every thread go; the stopped ones get back the signal they were stopped on.
    pub fn release(mut self) -> Released {
        self.detach_all()
    }

    fn detach_all(&mut self) -> Released {
        let mut threads = 0;
        let mut still_running = Vec::new();
        for t in &mut self.tracees {
            if t.stop == Stop::Waiting {
                // It may have come out of the kernel and stopped since.
                t.stop = poll_stop(t.tid);
            }
            match t.stop {
                Stop::Stopped { signal } => {
                    // ESRCH: it exited meanwhile (killed by SIGKILL); nothing to let go.
                    if ptrace_request(libc::PTRACE_DETACH, t.tid, signal).is_ok() {
                        threads += 1;
                    }
                }
                // Still in the kernel: a running tracee cannot be detached. It is let go
                // when this process exits (the kernel then drops its pending interrupt).
                Stop::Waiting => still_running.push(t.tid),
                Stop::Gone => {}
            }
            unregister(t.slot);
            t.stop = Stop::Gone;
        }
        let mut not_stopped = std::mem::take(&mut self.late);
        for tid in still_running {
            not_stopped.push(format!(
                "thread {tid} (still in the kernel; let go when redis-rescue exits)"
            ));
        }
        Released {
            stopped_for: self.started.elapsed(),
            threads,
            not_stopped,
        }
    }
}

impl Drop for Freeze {
    fn drop(&mut self) {
        if self.tracees.iter().any(|t| t.stop != Stop::Gone) {
            self.detach_all();
        }
    }
}

/// The thread ids of process `pid`, from `/proc/PID/task`.
fn task_ids(pid: i32) -> Result<Vec<i32>, FreezeError> {
    let path = format!("/proc/{pid}/task");
    let err = |source| FreezeError::Tasks {
        pid,
        path: path.clone(),
        source,
    };
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&path).map_err(err)? {
        let entry = entry.map_err(err)?;
        if let Some(tid) = entry.file_name().to_str().and_then(|s| s.parse().ok()) {
            out.push(tid);
        }
        if out.len() > MAX_THREADS {
            break;
        }
    }
    out.sort_unstable();
    // The main thread first: a refusal is explained on it.
    if let Some(i) = out.iter().position(|&t| t == pid) {
        out.swap(0, i);
    }
    Ok(out)
}

/// The state letter of thread `tid` (`/proc/PID/task/TID/stat`, after the command name).
fn thread_state(pid: i32, tid: i32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/stat")).ok()?;
    super::state_of_stat(&stat)
}

/// One ptrace request with no address: SEIZE, INTERRUPT or DETACH (`data`: options, or the
/// signal to deliver on detach).
fn ptrace_request(request: libc::c_uint, tid: i32, data: i32) -> io::Result<()> {
    // SAFETY: SEIZE (no options), INTERRUPT and DETACH take no address and write no memory of
    // this process; `data` is passed by value (a signal number, or 0).
    let r = unsafe {
        libc::ptrace(
            request,
            tid,
            std::ptr::null_mut::<libc::c_void>(),
            data as libc::c_long as *mut libc::c_void,
        )
    };
    if r == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Whether thread `tid` (seized and interrupted) has stopped, without blocking.
fn poll_stop(tid: i32) -> Stop {
    let mut status: libc::c_int = 0;
    for _ in 0..MAX_EINTR_RETRIES {
        // SAFETY: waitpid writes the status through a pointer to a live local and nothing
        // else; WNOHANG keeps it from blocking.
        let r = unsafe { libc::waitpid(tid, &mut status, libc::__WALL | libc::WNOHANG) };
        if r == 0 {
            return Stop::Waiting;
        }
        if r < 0 {
            if io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            // ECHILD: not (or no longer) our tracee.
            return Stop::Gone;
        }
        if libc::WIFSTOPPED(status) {
            // The interrupt (or a group-stop) reports PTRACE_EVENT_STOP: nothing to give
            // back. Any other stop is a signal-delivery-stop: the signal is given back at
            // detach, or the server would never see it.
            let signal = if status >> 16 == PTRACE_EVENT_STOP {
                0
            } else {
                libc::WSTOPSIG(status)
            };
            return Stop::Stopped { signal };
        }
        // Exited or killed.
        return Stop::Gone;
    }
    Stop::Waiting
}

// ---------------------------------------------------------------------------------------
// SIGINT, SIGTERM, SIGHUP: let the threads go before the signal ends the tool.
// ---------------------------------------------------------------------------------------

/// Seized threads the signal handler must let go: `signal << 32 | tid`, 0 for a free slot.
/// Atomics, because a handler can only touch what is async-signal-safe. A thread beyond the
/// table is let go by the kernel when the tool dies (without its signal given back).
const SLOTS: usize = 1024;
static TRACEES: [AtomicI64; SLOTS] = [const { AtomicI64::new(0) }; SLOTS];

fn pack(tid: i32, signal: i32) -> i64 {
    (i64::from(signal) << 32) | i64::from(tid as u32)
}

fn register(tid: i32) -> Option<usize> {
    TRACEES.iter().position(|s| {
        s.compare_exchange(0, pack(tid, 0), Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
    })
}

fn set_signal(slot: Option<usize>, tid: i32, signal: i32) {
    if let Some(s) = slot.and_then(|i| TRACEES.get(i)) {
        s.store(pack(tid, signal), Ordering::SeqCst);
    }
}

fn unregister(slot: Option<usize>) {
    if let Some(s) = slot.and_then(|i| TRACEES.get(i)) {
        s.store(0, Ordering::SeqCst);
    }
}

extern "C" fn on_fatal_signal(signum: libc::c_int) {
    for slot in &TRACEES {
        let v = slot.swap(0, Ordering::SeqCst);
        if v != 0 {
            // Only system calls below: async-signal-safe. A thread that is not stopped
            // refuses the detach (ESRCH) and is let go by the kernel when the tool exits.
            let _ = ptrace_request(libc::PTRACE_DETACH, v as u32 as i32, (v >> 32) as i32);
        }
    }
    // SAFETY: signal() and raise() are async-signal-safe. The handler is installed only over
    // the default action, so restoring that and raising the signal again ends the tool just
    // as the signal would have without the handler.
    unsafe {
        libc::signal(signum, libc::SIG_DFL);
        libc::raise(signum);
    }
}

/// Install [`on_fatal_signal`] for SIGINT, SIGTERM and SIGHUP, once, where their action is
/// the default one (a signal ignored, as under nohup, or handled by someone else, is left so).
fn install_signal_handlers() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        for signum in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
            // SAFETY: sigaction() with a null new action only reads the current one into
            // `old`, a zeroed plain C struct; the new action then points at a handler
            // that makes only async-signal-safe calls, with an emptied mask.
            unsafe {
                let mut old: libc::sigaction = std::mem::zeroed();
                if libc::sigaction(signum, std::ptr::null(), &mut old) != 0
                    || old.sa_sigaction != libc::SIG_DFL
                {
                    continue;
                }
                let mut act: libc::sigaction = std::mem::zeroed();
                act.sa_sigaction = on_fatal_signal as extern "C" fn(libc::c_int) as usize;
                libc::sigemptyset(&mut act.sa_mask);
                libc::sigaction(signum, &act, std::ptr::null_mut());
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Command, Stdio};

    fn state(pid: i32) -> char {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        super::super::state_of_stat(&stat).unwrap()
    }

    /// A real child process (a shell sleeping), stopped and let go: it is in tracing stop
    /// ('t') while frozen, not stopped afterwards, and still alive.
    #[test]
    fn freezes_and_lets_go_of_a_child() {
        let mut child = Command::new("sleep")
            .arg("30")
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        let freeze = Freeze::stop(pid).unwrap();
        assert_eq!(freeze.threads(), 1);
        assert!(freeze.not_stopped().is_empty());
        assert_eq!(state(pid), 't');
        let released = freeze.release();
        assert_eq!(released.threads, 1);
        assert!(released.not_stopped.is_empty());
        assert!(released.stopped_for > Duration::ZERO);
        // Let go: sleeping again (its nanosleep restarted), not stopped.
        std::thread::sleep(Duration::from_millis(50));
        assert!(matches!(state(pid), 'S' | 'R'), "state {}", state(pid));
        assert!(child.try_wait().unwrap().is_none());
        // A second freeze works: nothing was left attached.
        drop(Freeze::stop(pid).unwrap());
        std::thread::sleep(Duration::from_millis(50));
        assert!(matches!(state(pid), 'S' | 'R'));
        child.kill().unwrap();
        child.wait().unwrap();
    }

    /// A process can have one tracer: a second freeze of a frozen process is refused with a
    /// reason naming the tracer and --no-freeze.
    #[test]
    fn a_traced_process_is_refused_with_the_fix() {
        let mut child = Command::new("sleep").arg("30").spawn().unwrap();
        let pid = child.id() as i32;
        let first = Freeze::stop(pid).unwrap();
        // The tracer is this test process: run the second attempt from another thread, which
        // the kernel treats as another tracer too (ptrace is per thread).
        let err = std::thread::spawn(move || Freeze::stop(pid).map(|_| ()))
            .join()
            .unwrap()
            .unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, FreezeError::Refused(_)), "{msg}");
        assert!(
            msg.contains("already traced") && msg.contains("--no-freeze"),
            "{msg}"
        );
        assert!(!msg.contains('\n'), "{msg}");
        drop(first);
        child.kill().unwrap();
        child.wait().unwrap();
    }

    #[test]
    fn signal_slots_pack_and_clear() {
        let slot = register(4242);
        assert!(slot.is_some());
        set_signal(slot, 4242, libc::SIGTERM);
        let v = TRACEES[slot.unwrap()].load(Ordering::SeqCst);
        assert_eq!((v as u32 as i32, (v >> 32) as i32), (4242, libc::SIGTERM));
        unregister(slot);
        assert_eq!(TRACEES[slot.unwrap()].load(Ordering::SeqCst), 0);
    }
}
