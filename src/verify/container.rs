//! `verify --docker`: the dump restored into a container of the right image by the bundled
//! compose file, run as a compose project of its own, and always taken down again.
//!
//! The project is taken down by [`Project::down`] (also on drop), and on SIGINT, SIGTERM or
//! SIGHUP by a thread that waits for those signals (they are blocked in every other thread
//! once a project exists), runs `down` for every project still up, then ends the tool with
//! the signal's exit status.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, Once};
use std::time::{Duration, Instant};

use super::docker::COMPOSE_YML;
use super::engine::{Engine, EngineError};
use super::server;

/// The compose service's name in `docker/compose.yml`.
const SERVICE: &str = "redis";

/// How long `down` may take before it is given up (and the leftovers reported).
const DOWN_TIMEOUT: Duration = Duration::from_secs(120);

/// Attempts at a free port (another program may take the one chosen before compose binds it).
const PORT_ATTEMPTS: usize = 3;

/// Why a container could not be started or asked.
#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    /// The engine.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// No compose tool runs.
    #[error("neither `docker compose` nor `docker-compose` runs here")]
    NoCompose,
    /// A compose command could not be run, or failed.
    #[error("{0}")]
    Compose(String),
    /// The temporary directory for the compose file.
    #[error("cannot prepare the compose file: {0}")]
    Dir(std::io::Error),
}

/// A compose command line: `docker compose` (v2) or `docker-compose` (v1).
#[derive(Debug, Clone)]
pub struct ComposeTool {
    argv: Vec<String>,
}

impl ComposeTool {
    /// The first of `docker compose` and `docker-compose` that answers `version`.
    pub fn find() -> Result<ComposeTool, ContainerError> {
        for argv in [&["docker", "compose"][..], &["docker-compose"][..]] {
            let Some((cmd, rest)) = argv.split_first() else {
                continue;
            };
            let ok = Command::new(cmd)
                .args(rest)
                .arg("version")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if ok {
                return Ok(ComposeTool {
                    argv: argv.iter().map(|s| (*s).to_owned()).collect(),
                });
            }
        }
        Err(ContainerError::NoCompose)
    }

    /// `docker compose` or `docker-compose`, for messages.
    pub fn name(&self) -> String {
        self.argv.join(" ")
    }
}

/// What `down` needs, kept where the signal thread finds it.
#[derive(Debug, Clone)]
struct DownCommand {
    project: String,
    argv: Vec<String>,
    compose_file: PathBuf,
    env: Vec<(String, String)>,
}

impl DownCommand {
    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(self.argv.first().map_or("docker-compose", String::as_str));
        c.args(self.argv.iter().skip(1))
            .arg("-p")
            .arg(&self.project)
            .arg("-f")
            .arg(&self.compose_file)
            .args(args)
            .stdin(Stdio::null());
        for (k, v) in &self.env {
            c.env(k, v);
        }
        c
    }

    /// `down -v --remove-orphans`, bounded; Ok when it exited 0.
    fn run(&self) -> Result<(), String> {
        let mut c = self.command(&["down", "-v", "--remove-orphans", "-t", "5"]);
        c.stdout(Stdio::null()).stderr(Stdio::piped());
        let child = c.spawn().map_err(|e| format!("cannot run down: {e}"))?;
        let out = wait_bounded(child, DOWN_TIMEOUT)?;
        if out.0.success() {
            Ok(())
        } else {
            Err(format!("down failed ({}): {}", out.0, out.1.trim()))
        }
    }
}

/// Projects up, for the signal thread.
static ACTIVE: Mutex<Vec<DownCommand>> = Mutex::new(Vec::new());

/// Set by the signal thread when it starts taking the projects down.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// `up` commands running: an interrupted one may still create what `down` just removed.
static UPS_RUNNING: AtomicUsize = AtomicUsize::new(0);

/// Takes `project` off the list; true when it was on it (nobody took it down yet).
fn take_active(project: &str) -> Option<DownCommand> {
    let mut list = ACTIVE.lock().unwrap_or_else(|e| e.into_inner());
    let at = list.iter().position(|d| d.project == project)?;
    Some(list.swap_remove(at))
}

/// Blocks SIGINT, SIGTERM and SIGHUP in this thread (and the threads it starts later), and
/// starts the thread that takes every project down when one arrives.
fn guard_signals() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: plain libc calls on a zeroed sigset_t owned by this frame; the mask
        // changes only this thread's signal mask (children's masks are reset at spawn).
        let set = unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            for s in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
                libc::sigaddset(&mut set, s);
            }
            libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
            set
        };
        let spawned = std::thread::Builder::new()
            .name("verify-docker-signals".into())
            .spawn(move || loop {
                let mut sig: libc::c_int = 0;
                // SAFETY: sigwait reads the set built above and writes one int.
                if unsafe { libc::sigwait(&set, &mut sig) } != 0 {
                    continue;
                }
                INTERRUPTED.store(true, Ordering::SeqCst);
                let pending: Vec<DownCommand> = ACTIVE
                    .lock()
                    .map(|mut l| std::mem::take(&mut *l))
                    .unwrap_or_default();
                for d in &pending {
                    eprintln!(
                        "redis-rescue: interrupted: taking down the compose project {}",
                        d.project
                    );
                    if let Err(e) = d.run() {
                        eprintln!("redis-rescue: {e}");
                    }
                }
                // An `up` under way when the signal came may create the container after
                // that `down`: wait for it (bounded), then take the projects down again.
                if UPS_RUNNING.load(Ordering::SeqCst) > 0 {
                    let deadline = Instant::now() + DOWN_TIMEOUT;
                    while UPS_RUNNING.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
                        std::thread::sleep(Duration::from_millis(50));
                    }
                    for d in &pending {
                        let _ = d.run();
                    }
                }
                std::process::exit(128 + sig);
            });
        if spawned.is_err() {
            // Without the thread the signals must not stay blocked.
            // SAFETY: as above.
            unsafe {
                libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
            }
        }
    });
}

/// Waits for `child` at most `timeout` (killing it then); (status, stderr).
fn wait_bounded(mut child: Child, timeout: Duration) -> Result<(ExitStatus, String), String> {
    let stderr = child.stderr.take();
    // Read stderr on the side so a chatty command cannot fill the pipe and stall.
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(mut e) = stderr {
            let _ = std::io::Read::read_to_string(&mut e, &mut s);
        }
        s
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) if Instant::now() > deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("gave up after {} s", timeout.as_secs()));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => return Err(e.to_string()),
        }
    };
    Ok((status, reader.join().unwrap_or_default()))
}

/// What `down` left behind, and whether it ran cleanly.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Teardown {
    /// `down` ran and exited 0.
    pub down_ok: bool,
    /// Its error, when not.
    pub error: Option<String>,
    /// Containers, networks or volumes of the project still there afterwards.
    pub leftovers: Vec<String>,
}

/// A compose project that is up: one container of the image, the dump loaded from a
/// read-only bind mount, published on a loopback port.
#[derive(Debug)]
pub struct Project {
    engine: Engine,
    down: DownCommand,
    /// Holds the compose file for as long as the project lives.
    _dir: Option<tempfile::TempDir>,
    port: u16,
    image: String,
    taken_down: bool,
}

/// How the start went.
#[derive(Debug)]
pub enum ContainerStart {
    /// Up, answering, and done loading.
    Loaded {
        /// The project (take it down when done).
        project: Project,
        /// From `up` to loaded.
        elapsed: Duration,
    },
    /// `up` failed, or the server exited or never finished loading; the project is
    /// already down.
    Failed {
        /// What went wrong.
        status: String,
        /// The container's log lines (or compose's error) that say why.
        log_excerpt: String,
        /// The teardown.
        teardown: Teardown,
    },
}

/// A name no other run uses: the tool's pid and the clock.
fn project_name() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("redis-rescue-verify-{}-{:x}", std::process::id(), nanos)
}

impl Project {
    /// Starts `image` on `dump` with the bundled compose file and waits up to `timeout` for
    /// the server to answer and finish loading.
    pub fn start(
        engine: &Engine,
        tool: &ComposeTool,
        image: &str,
        dump: &Path,
        timeout: Duration,
    ) -> Result<ContainerStart, ContainerError> {
        let mut dir = Some(
            tempfile::Builder::new()
                .prefix("redis-rescue-compose-")
                .tempdir()
                .map_err(ContainerError::Dir)?,
        );
        let compose_file = dir
            .as_ref()
            .map(|d| d.path().join("compose.yml"))
            .unwrap_or_default();
        std::fs::write(&compose_file, COMPOSE_YML).map_err(ContainerError::Dir)?;
        let dump_abs = std::fs::canonicalize(dump).map_err(ContainerError::Dir)?;
        guard_signals();
        let started = Instant::now();
        let mut last_error = String::new();
        for _ in 0..PORT_ATTEMPTS {
            let port = server::free_port().map_err(|e| ContainerError::Compose(e.to_string()))?;
            let down = DownCommand {
                project: project_name(),
                argv: tool.argv.clone(),
                compose_file: compose_file.clone(),
                env: vec![
                    ("DOCKER_HOST".into(), engine.host.clone()),
                    ("REDIS_IMAGE".into(), image.to_owned()),
                    ("DUMP".into(), dump_abs.display().to_string()),
                    ("PORT".into(), port.to_string()),
                    ("SERVER".into(), String::new()),
                ],
            };
            ACTIVE
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(down.clone());
            let mut project = Project {
                engine: engine.clone(),
                down,
                _dir: None,
                port,
                image: image.to_owned(),
                taken_down: false,
            };
            let mut up = project.down.command(&["up", "-d"]);
            up.stdout(Stdio::null()).stderr(Stdio::piped());
            let child = up.spawn().map_err(|e| {
                ContainerError::Compose(format!("cannot run {} up: {e}", tool.name()))
            });
            let outcome = match child {
                Ok(child) => {
                    UPS_RUNNING.fetch_add(1, Ordering::SeqCst);
                    let waited = wait_bounded(child, timeout);
                    UPS_RUNNING.fetch_sub(1, Ordering::SeqCst);
                    waited
                }
                Err(e) => {
                    let _ = project.teardown();
                    return Err(e);
                }
            };
            match outcome {
                Ok((status, _)) if status.success() => {
                    project._dir = dir.take();
                    return Ok(project.wait_loaded(started, timeout));
                }
                Ok((status, err)) => {
                    let teardown = project.teardown();
                    let port_taken = err.contains("address already in use")
                        || err.contains("port is already allocated");
                    if port_taken {
                        last_error = err;
                        continue;
                    }
                    let missing = engine.image_id(image).ok().flatten().is_none();
                    let status = if missing {
                        format!(
                            "the image {image} is not on this engine and could not be pulled \
                             (build or pull it, or pass --image)"
                        )
                    } else {
                        format!("{} up failed ({status})", tool.name())
                    };
                    return Ok(ContainerStart::Failed {
                        status,
                        log_excerpt: tail_lines(&err, 15),
                        teardown,
                    });
                }
                Err(why) => {
                    let teardown = project.teardown();
                    return Ok(ContainerStart::Failed {
                        status: format!("{} up: {why}", tool.name()),
                        log_excerpt: String::new(),
                        teardown,
                    });
                }
            }
        }
        Err(ContainerError::Compose(format!(
            "no free loopback port after {PORT_ATTEMPTS} attempts: {}",
            tail_lines(&last_error, 5)
        )))
    }

    /// Polls the published port and the container until the server has loaded, exited, or
    /// `timeout` passed.
    fn wait_loaded(mut self, started: Instant, timeout: Duration) -> ContainerStart {
        let deadline = started + timeout;
        let addr = self.address();
        loop {
            // A published port may accept before the server listens: only an INFO answer
            // counts.
            if let Ok(mut c) = server::connect(&addr, Duration::ZERO) {
                if let Ok(info) = server::info(&mut c, "persistence") {
                    if server::info_field(&info, "loading") == Some("0") {
                        return ContainerStart::Loaded {
                            elapsed: started.elapsed(),
                            project: self,
                        };
                    }
                }
            }
            let exited = self
                .engine
                .project_containers(&self.down.project)
                .map(|cs| {
                    cs.into_iter()
                        .find(|(_, state, _)| state == "exited" || state == "dead")
                });
            let failure = match exited {
                Ok(Some((name, state, code))) => {
                    Some(format!("the container {name} {state} with status {code}"))
                }
                _ if Instant::now() > deadline => Some(format!(
                    "the server had not loaded the dump after {} s (--timeout)",
                    timeout.as_secs()
                )),
                _ => None,
            };
            if let Some(status) = failure {
                let log = self.logs();
                let teardown = self.teardown();
                return ContainerStart::Failed {
                    status,
                    log_excerpt: server::log_excerpt(&log, 12),
                    teardown,
                };
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The published address.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The compose project's name.
    pub fn name(&self) -> &str {
        &self.down.project
    }

    /// The image it runs.
    pub fn image(&self) -> &str {
        &self.image
    }

    /// The container's output so far (`logs --no-color`).
    pub fn logs(&self) -> String {
        let mut c = self.down.command(&["logs", "--no-color", SERVICE]);
        c.stdout(Stdio::piped()).stderr(Stdio::null());
        match c.output() {
            Ok(o) => String::from_utf8_lossy(&o.stdout).into_owned(),
            Err(e) => format!("(no logs: {e})"),
        }
    }

    /// `down -v --remove-orphans`, then a look for anything of the project left behind.
    pub fn teardown(&mut self) -> Teardown {
        self.taken_down = true;
        let mut t = Teardown::default();
        match take_active(&self.down.project) {
            Some(d) => match d.run() {
                Ok(()) => t.down_ok = true,
                Err(e) => t.error = Some(e),
            },
            // The signal thread has it and ends the tool once it is down: wait for that
            // rather than report on a project being taken down.
            None if INTERRUPTED.load(Ordering::SeqCst) => loop {
                std::thread::sleep(Duration::from_secs(1));
            },
            None => t.error = Some("already taken down".into()),
        }
        let project = &self.down.project;
        match self.engine.project_containers(project) {
            Ok(cs) => t.leftovers.extend(
                cs.into_iter()
                    .map(|(n, s, _)| format!("container {n} ({s})")),
            ),
            Err(e) => t.leftovers.push(format!("(containers not listed: {e})")),
        }
        match self.engine.project_networks_and_volumes(project) {
            Ok(v) => t.leftovers.extend(v),
            Err(e) => t.leftovers.push(format!("(networks not listed: {e})")),
        }
        t
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        if !self.taken_down {
            let _ = self.teardown();
        }
    }
}

fn tail_lines(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().filter(|l| !l.trim().is_empty()).collect();
    lines
        .get(lines.len().saturating_sub(n)..)
        .unwrap_or_default()
        .join("\n")
}

/// The image for a dump: `--image`, else the official one of the dump's version.
pub fn image_for(explicit: Option<&str>, version: Option<&str>) -> Option<String> {
    explicit
        .map(str::to_owned)
        .or_else(|| version.map(super::docker::image_for))
}
