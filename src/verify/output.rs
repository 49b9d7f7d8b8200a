//! The outcome as a short table for people, or JSON for scripts.

use std::fmt::Write as _;

use super::{CheckResult, Outcome};

/// Widest a table cell gets before it is cut.
const MAX_CELL: usize = 60;

fn cut(s: &str) -> String {
    if s.chars().count() <= MAX_CELL {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(MAX_CELL - 1).collect();
        t.push('…');
        t
    }
}

/// The human form: a header, the checks table, the first differences, warnings, the verdict.
pub fn table(o: &Outcome) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "dump    {}", o.dump);
    let _ = writeln!(
        s,
        "report  {}",
        o.report
            .as_deref()
            .unwrap_or("(none: the dump is verified alone)")
    );
    if let Some(addr) = &o.server {
        let how = match o.mode.as_str() {
            "started" => "a private redis-server on a copy of the dump, stopped afterwards",
            "container" => "a container on a copy of the dump, taken down afterwards",
            _ => "a running server",
        };
        let _ = writeln!(
            s,
            "server  {addr}{} ({how})",
            o.server_version
                .as_deref()
                .map(|v| format!(", version {v}"))
                .unwrap_or_default()
        );
    }
    if let Some(c) = &o.container {
        let _ = writeln!(
            s,
            "image   {}{}",
            c.image,
            c.image_id
                .as_deref()
                .map(|id| format!(
                    " ({})",
                    id.trim_start_matches("sha256:").get(..12).unwrap_or(id)
                ))
                .unwrap_or_default()
        );
        let _ = writeln!(
            s,
            "engine  {}, {} project {}{}",
            c.engine,
            c.compose,
            if c.project.is_empty() {
                "(not up)"
            } else {
                &c.project
            },
            if c.teardown.down_ok && c.teardown.leftovers.is_empty() {
                ", taken down"
            } else {
                ""
            }
        );
    }
    let _ = writeln!(s);
    let rows: Vec<[String; 4]> = o
        .checks
        .iter()
        .map(|c| {
            [
                cut(&c.check),
                cut(&c.expected),
                cut(&c.found),
                match c.result {
                    CheckResult::Ok => "ok",
                    CheckResult::Fail => "FAIL",
                    CheckResult::Warn => "warn",
                }
                .to_owned(),
            ]
        })
        .collect();
    let header = [
        "check".to_owned(),
        "expected".to_owned(),
        "found".to_owned(),
        String::new(),
    ];
    let mut width = [0usize; 4];
    for r in rows.iter().chain(std::iter::once(&header)) {
        for (w, cell) in width.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    for r in std::iter::once(&header).chain(rows.iter()) {
        let line = format!(
            "{:<w0$}  {:<w1$}  {:<w2$}  {}",
            r[0],
            r[1],
            r[2],
            r[3],
            w0 = width[0],
            w1 = width[1],
            w2 = width[2]
        );
        let _ = writeln!(s, "{}", line.trim_end());
    }
    for c in &o.checks {
        if c.result == CheckResult::Fail && c.found.chars().count() > MAX_CELL {
            let _ = writeln!(s, "  {}: {}", c.check, c.found);
        }
    }
    if let Some(log) = &o.server_log {
        let _ = writeln!(s, "\nserver log:");
        for l in log.lines() {
            let _ = writeln!(s, "  {l}");
        }
    }
    let c = &o.comparison;
    if !c.first.is_empty() {
        let _ = writeln!(
            s,
            "\ndifferences ({} listed of {}):",
            c.first.len(),
            c.differing
        );
        for d in &c.first {
            let _ = match d.what.as_str() {
                "missing" => writeln!(
                    s,
                    "  db {} key {}: missing on the server (the dump has {})",
                    d.db, d.key, d.expected
                ),
                "extra" => writeln!(
                    s,
                    "  db {} key {}: on the server but not in the dump",
                    d.db, d.key
                ),
                _ => writeln!(
                    s,
                    "  db {} key {}: {} differs: dump {}; server {}",
                    d.db, d.key, d.what, d.expected, d.found
                ),
            };
        }
    }
    if let Some(sm) = &o.sample {
        let _ = writeln!(
            s,
            "\nsample: {} random keys of {} compared (--sample {} --seed {} repeats it)",
            sm.chosen, o.keys_in_dump, sm.requested, sm.seed
        );
    }
    if !o.warnings.is_empty() {
        let _ = writeln!(s);
        for w in &o.warnings {
            let _ = writeln!(s, "warning: {w}");
        }
    }
    let _ = writeln!(s, "\n{}", o.verdict);
    s
}

/// The JSON form (pretty-printed).
pub fn json(o: &Outcome) -> String {
    serde_json::to_string_pretty(o).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}
