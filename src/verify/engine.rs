//! The container engine `verify --docker` talks to: Docker or Podman, found through its
//! Docker-compatible API socket, and asked a few read-only questions over it (is it there,
//! what is it, an image's id, what a compose project left behind).
//!
//! Plain HTTP/1.0 GETs over the socket: no client library, and a 1.0 request gets a body
//! that simply ends with the connection (no chunking).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use serde_json::Value;

/// How long one API request may take.
const API_TIMEOUT: Duration = Duration::from_secs(10);

/// Largest API answer read (a listing of containers or an image's description).
const MAX_ANSWER: u64 = 16 << 20;

/// Why the engine could not be asked.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// No socket answered.
    #[error("no container engine answered ({0})")]
    Unreachable(String),
    /// The engine answered with an error status.
    #[error("the container engine answered {status} to GET {path}: {body}")]
    Status {
        /// HTTP status.
        status: u16,
        /// What was asked.
        path: String,
        /// The first part of its answer.
        body: String,
    },
    /// The answer was not what the API promises.
    #[error("the container engine's answer to GET {path} is not understood: {why}")]
    Answer {
        /// What was asked.
        path: String,
        /// What is wrong with it.
        why: String,
    },
}

/// A container engine that answered its ping.
#[derive(Debug, Clone)]
pub struct Engine {
    /// The `DOCKER_HOST` form of its address (`unix:///run/podman/podman.sock`).
    pub host: String,
    /// `Docker Engine 28.2.2` or `Podman Engine 4.3.1`.
    pub name: String,
}

/// Where engines listen when `DOCKER_HOST` does not say: Docker's socket, Podman's
/// system socket, then the per-user sockets of rootless engines.
fn default_hosts() -> Vec<String> {
    let mut v = vec![
        "unix:///var/run/docker.sock".to_owned(),
        "unix:///run/podman/podman.sock".to_owned(),
    ];
    if let Some(dir) = std::env::var_os("XDG_RUNTIME_DIR") {
        let dir = Path::new(&dir);
        for s in ["podman/podman.sock", "docker.sock"] {
            v.push(format!("unix://{}", dir.join(s).display()));
        }
    }
    v
}

impl Engine {
    /// The engine `DOCKER_HOST` names, else the first default socket that answers `/_ping`.
    pub fn find() -> Result<Engine, EngineError> {
        let hosts = match std::env::var("DOCKER_HOST") {
            Ok(h) if !h.trim().is_empty() => vec![h.trim().to_owned()],
            _ => default_hosts(),
        };
        let mut tried = Vec::new();
        for host in hosts {
            match Engine::at(&host) {
                Ok(e) => return Ok(e),
                Err(e) => tried.push(format!("{host}: {e}")),
            }
        }
        Err(EngineError::Unreachable(tried.join("; ")))
    }

    /// The engine at `host` (`unix://PATH` or `tcp://HOST:PORT`), if it answers.
    pub fn at(host: &str) -> Result<Engine, EngineError> {
        let mut e = Engine {
            host: host.to_owned(),
            name: String::new(),
        };
        let (status, body) = e.request("/_ping")?;
        if status != 200 || !body.starts_with(b"OK") {
            return Err(EngineError::Unreachable(format!(
                "{host} answered its ping with {status}"
            )));
        }
        e.name = e
            .get_json("/version")
            .ok()
            .and_then(|v| {
                let c = v.get("Components")?.get(0)?;
                Some(format!(
                    "{} {}",
                    c.get("Name")?.as_str()?,
                    c.get("Version")?.as_str()?
                ))
            })
            .unwrap_or_else(|| "a Docker-compatible engine".to_owned());
        Ok(e)
    }

    /// One GET: (status, body).
    fn request(&self, path: &str) -> Result<(u16, Vec<u8>), EngineError> {
        let unreachable = |e: std::io::Error| EngineError::Unreachable(e.to_string());
        let req = format!("GET {path} HTTP/1.0\r\nHost: docker\r\n\r\n");
        let raw = if let Some(sock) = self.host.strip_prefix("unix://") {
            let s = UnixStream::connect(sock).map_err(unreachable)?;
            s.set_read_timeout(Some(API_TIMEOUT)).map_err(unreachable)?;
            s.set_write_timeout(Some(API_TIMEOUT))
                .map_err(unreachable)?;
            exchange(s, &req).map_err(unreachable)?
        } else if let Some(addr) = self.host.strip_prefix("tcp://") {
            let s = TcpStream::connect(addr.trim_end_matches('/')).map_err(unreachable)?;
            s.set_read_timeout(Some(API_TIMEOUT)).map_err(unreachable)?;
            s.set_write_timeout(Some(API_TIMEOUT))
                .map_err(unreachable)?;
            exchange(s, &req).map_err(unreachable)?
        } else {
            return Err(EngineError::Unreachable(format!(
                "{}: only unix:// and tcp:// hosts are supported",
                self.host
            )));
        };
        parse_http(&raw).ok_or_else(|| EngineError::Answer {
            path: path.to_owned(),
            why: "not an HTTP answer".into(),
        })
    }

    /// A GET whose answer is JSON, with status 200.
    pub fn get_json(&self, path: &str) -> Result<Value, EngineError> {
        let (status, body) = self.request(path)?;
        if status != 200 {
            let text = String::from_utf8_lossy(&body);
            return Err(EngineError::Status {
                status,
                path: path.to_owned(),
                body: text.chars().take(300).collect(),
            });
        }
        serde_json::from_slice(&body).map_err(|e| EngineError::Answer {
            path: path.to_owned(),
            why: e.to_string(),
        })
    }

    /// The id of a local image, `None` when the engine does not have it.
    pub fn image_id(&self, image: &str) -> Result<Option<String>, EngineError> {
        let path = format!("/images/{}/json", url_escape(image));
        match self.get_json(&path) {
            Ok(v) => Ok(v.get("Id").and_then(Value::as_str).map(str::to_owned)),
            Err(EngineError::Status { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Containers of a compose project, running or not: (name, state, exit code).
    pub fn project_containers(
        &self,
        project: &str,
    ) -> Result<Vec<(String, String, i64)>, EngineError> {
        let path = format!(
            "/containers/json?all=1&filters={}",
            url_escape(&label_filter(project))
        );
        let v = self.get_json(&path)?;
        let list = v.as_array().ok_or_else(|| EngineError::Answer {
            path: path.clone(),
            why: "not a list".into(),
        })?;
        Ok(list
            .iter()
            .map(|c| {
                let name = c
                    .get("Names")
                    .and_then(|n| n.get(0))
                    .and_then(Value::as_str)
                    .unwrap_or("?")
                    .trim_start_matches('/')
                    .to_owned();
                let state = c
                    .get("State")
                    .and_then(Value::as_str)
                    .unwrap_or("?")
                    .to_owned();
                let code = c.get("ExitCode").and_then(Value::as_i64).unwrap_or(0);
                (name, state, code)
            })
            .collect())
    }

    /// Names of the networks and volumes a compose project owns.
    pub fn project_networks_and_volumes(&self, project: &str) -> Result<Vec<String>, EngineError> {
        let filter = url_escape(&label_filter(project));
        let mut out = Vec::new();
        let nets = self.get_json(&format!("/networks?filters={filter}"))?;
        for n in nets.as_array().into_iter().flatten() {
            if let Some(name) = n.get("Name").and_then(Value::as_str) {
                out.push(format!("network {name}"));
            }
        }
        let vols = self.get_json(&format!("/volumes?filters={filter}"))?;
        for v in vols
            .get("Volumes")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(name) = v.get("Name").and_then(Value::as_str) {
                out.push(format!("volume {name}"));
            }
        }
        Ok(out)
    }
}

/// Sends `req` and reads the answer to its end (at most [`MAX_ANSWER`] bytes).
fn exchange(mut s: impl Read + Write, req: &str) -> std::io::Result<Vec<u8>> {
    s.write_all(req.as_bytes())?;
    let mut raw = Vec::new();
    s.take(MAX_ANSWER).read_to_end(&mut raw)?;
    Ok(raw)
}

/// The API filter selecting what compose made for `project`.
fn label_filter(project: &str) -> String {
    serde_json::json!({ "label": [format!("com.docker.compose.project={project}")] }).to_string()
}

/// Percent-escapes what may not stand in a URL path or query as it is.
fn url_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~/:@".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// (status, body) of an HTTP/1.x answer.
fn parse_http(raw: &[u8]) -> Option<(u16, Vec<u8>)> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(raw.get(..end)?).ok()?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    let body = raw.get(end + 4..)?.to_vec();
    let chunked = head.lines().any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    Some((status, if chunked { dechunk(&body)? } else { body }))
}

/// The body of a chunked answer (an engine may chunk even a 1.0 answer).
fn dechunk(mut b: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let eol = b.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(b.get(..eol)?).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        b = b.get(eol + 2..)?;
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(b.get(..size)?);
        b = b.get(size + 2..)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_answers_plain_and_chunked() {
        let (s, b) = parse_http(b"HTTP/1.0 200 OK\r\nApi-Version: 1.41\r\n\r\nOK").unwrap();
        assert_eq!((s, b.as_slice()), (200, b"OK".as_slice()));
        let raw = b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nno s\r\n3\r\nuch\r\n0\r\n\r\n";
        let (s, b) = parse_http(raw).unwrap();
        assert_eq!((s, b.as_slice()), (404, b"no such".as_slice()));
        assert!(parse_http(b"HTTP/1.0 200").is_none());
        assert!(
            parse_http(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n").is_none()
        );
    }

    #[test]
    fn escaping_keeps_image_names_readable() {
        assert_eq!(url_escape("valkey/valkey:9.1"), "valkey/valkey:9.1");
        assert_eq!(
            url_escape(r#"{"label":["a=b"]}"#),
            "%7B%22label%22%3A%5B%22a%3Db%22%5D%7D".replace("%3A", ":")
        );
    }

    #[test]
    fn a_missing_socket_is_unreachable_not_a_panic() {
        let e = Engine::at("unix:///nonexistent/redis-rescue.sock").unwrap_err();
        assert!(matches!(e, EngineError::Unreachable(_)), "{e}");
        let e = Engine::at("ssh://host").unwrap_err();
        assert!(e.to_string().contains("only unix://"), "{e}");
    }
}
