//! Shared harness for the end-to-end tests: start real redis-server processes, fill them with a
//! dataset that covers every type and encoding, record the truth (DEBUG DIGEST, DBSIZE, TTLs,
//! rehash state), take a core with gcore, run redis-rescue and restore what it wrote.
//!
//! Every helper takes the server binary as a parameter so that tests for other Redis versions can
//! reuse it; [`DEFAULT_SERVER`] is the one on `PATH`. By job: `server` (starting servers,
//! the provisioned builds), `fill` and `streams` (the dataset), `truth` (what a server holds),
//! `cores` (gcore, kernel cores, ELF reads, core fixtures), `rescue` (running the tool, its
//! report, its dumps, live sources); small utilities here. Everything is re-exported here, so
//! a test says `use crate::common::*;` or names what it takes.

mod cores;
mod fill;
mod rescue;
mod server;
mod streams;
mod truth;

pub use cores::*;
pub use fill::*;
pub use rescue::*;
pub use server::*;
pub use streams::*;
pub use truth::*;

use std::fs;
use std::path::{Path, PathBuf};

/// The server binary used when a test does not name one (looked up on `PATH`).
pub const DEFAULT_SERVER: &str = "redis-server";

/// Absolute path of `name` on `PATH` (or `name` itself when it already contains a slash).
pub fn find_in_path(name: &str) -> PathBuf {
    if name.contains('/') {
        return PathBuf::from(name);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        let candidate = dir.join(name);
        if candidate.is_file() {
            return candidate;
        }
    }
    panic!("`{name}` was not found on PATH ({path:?}); see tests/README.md for what the tests need")
}

/// Last `max_lines` lines of a text file, for panic messages.
pub fn tail_of(path: &Path, max_lines: usize) -> String {
    match fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let lines: Vec<&str> = text.lines().collect();
            let start = lines.len().saturating_sub(max_lines);
            lines[start..].join("\n")
        }
        Err(e) => format!("<cannot read {}: {e}>", path.display()),
    }
}

/// First `max` characters of a text, for panic messages.
pub fn snippet(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        let cut: String = text.chars().take(max).collect();
        format!("{cut}… [{} bytes in all]", text.len())
    }
}

/// Printable form of a binary key.
pub fn show(bytes: &[u8]) -> String {
    bytes.escape_ascii().to_string()
}

/// Deterministic pseudo-random bytes (xorshift64*), so the dataset is the same on every run.
pub fn pseudo_random_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        out.extend_from_slice(&state.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// The file names in `dir`, sorted.
pub fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read_dir {}: {e}", dir.display()))
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// `p` with links and `..` resolved.
pub fn canonical(p: &Path) -> PathBuf {
    fs::canonicalize(p).unwrap_or_else(|e| panic!("canonicalize {}: {e}", p.display()))
}

/// One day in milliseconds.
pub const DAY_MS: i64 = 86_400_000;

/// The bytes of `s`.
pub fn b(s: &str) -> Vec<u8> {
    s.as_bytes().to_vec()
}

/// Text that LZF compresses well, `len` bytes.
pub fn compressible(tag: &str, len: usize) -> Vec<u8> {
    let unit = format!("{tag}: the quick brown fox jumps over the lazy dog 0123456789. ");
    unit.as_bytes().iter().copied().cycle().take(len).collect()
}

/// A reply as text: bulk strings lossily, statuses, integers, `<nil>`; anything else debug
/// printed.
pub fn value_text(v: &redis::Value) -> String {
    match v {
        redis::Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        redis::Value::SimpleString(s) => s.clone(),
        redis::Value::Okay => "OK".into(),
        redis::Value::Nil => "<nil>".into(),
        redis::Value::Int(i) => i.to_string(),
        other => format!("{other:?}"),
    }
}
