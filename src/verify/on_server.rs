//! Steps 3 and 4 once a server is reachable: its version, `DBSIZE` per db against the
//! dump's counts, every key (or a sample) compared, and the keys the server holds that the
//! dump lacks.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::Path;

use redis::Connection;

use super::compare::{self, now_ms, Comparer};
use super::dump::{self, DumpError, DumpSummary};
use super::report::RecoveryReport;
use super::{
    choose_sample, random_seed, server, CheckResult, Outcome, Sample, Target, VerifyOptions,
    KEYS_CHECK,
};

/// Largest db for which keys on the server but not in the dump are looked for by name (a
/// 64-bit hash per dump key is kept meanwhile).
pub(super) const MAX_KEYS_FOR_EXTRA_SCAN: u64 = 10_000_000;

pub(super) fn key_hash(key: &[u8]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    key.hash(&mut h);
    h.finish()
}

/// Keys of `db` on the server that the dump lacks: (how many, the first `limit` names).
pub(super) fn extra_keys(
    conn: &mut Connection,
    dump: &Path,
    db: u32,
    limit: usize,
) -> Result<(u64, Vec<String>), String> {
    let mut known = HashSet::new();
    let mut reader = dump::open(dump).map_err(|e| e.to_string())?;
    while let Some(e) = reader.next_entry().map_err(|e| e.to_string())? {
        if e.db == db {
            known.insert(key_hash(&e.key));
        }
    }
    redis::cmd("SELECT")
        .arg(db)
        .exec(conn)
        .map_err(|e| format!("SELECT {db}: {e}"))?;
    let (mut count, mut names) = (0u64, Vec::new());
    let mut cursor = 0u64;
    loop {
        let (next, keys): (u64, Vec<Vec<u8>>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("COUNT")
            .arg(1000)
            .query(conn)
            .map_err(|e| format!("SCAN: {e}"))?;
        for k in keys {
            if !known.contains(&key_hash(&k)) {
                count += 1;
                if names.len() < limit {
                    names.push(crate::value::printable(&k));
                }
            }
        }
        if next == 0 {
            return Ok((count, names));
        }
        cursor = next;
    }
}

/// Steps 3–4 once a server is reachable.
pub(super) fn verify_on_server(
    mut o: Outcome,
    opts: &VerifyOptions,
    report: Option<&RecoveryReport>,
    summary: Result<DumpSummary, DumpError>,
    conn: &mut Connection,
) -> Outcome {
    let connected = matches!(opts.target, Target::Connect(_));
    let summary = match summary {
        Ok(s) => s,
        Err(e) if connected => return o.not_verified(format!("the dump cannot be read: {e}")),
        Err(_) => {
            o.warnings.push(
                "the server loaded a dump this tool cannot read: nothing could be compared".into(),
            );
            return o.conclude();
        }
    };

    // Version.
    let version = match server::version(conn) {
        Ok(v) => v,
        Err(e) => return o.not_verified(e.to_string()),
    };
    o.server_version = Some(version.text.clone());
    let want_version = report
        .and_then(|r| r.server_version().map(|v| (v, "report")))
        .or_else(|| summary.redis_ver.clone().map(|v| (v, "dump")));
    match want_version {
        Some((want, from)) => {
            let same = want == version.text;
            let result = if same {
                CheckResult::Ok
            } else if opts.allow_version_mismatch {
                CheckResult::Warn
            } else {
                CheckResult::Fail
            };
            o.check(
                "redis version",
                format!("{want} ({from})"),
                version.text.clone(),
                result,
            );
        }
        None => o.check(
            "redis version",
            "unknown (no report, no redis-ver in the dump)",
            version.text.clone(),
            CheckResult::Warn,
        ),
    }

    // A running server must hold this dump's keyspace.
    if connected {
        let total: u64 = match server::keyspace(conn) {
            Ok(k) => k.iter().map(|(_, n)| n).sum(),
            Err(e) => return o.not_verified(e.to_string()),
        };
        if total == 0 && !summary.probes.is_empty() {
            o.check(
                "server holds this dump",
                "its keys",
                "an empty server",
                CheckResult::Fail,
            );
            return o.not_verified(
                "the server is empty: it did not load this dump (start it on a copy of the dump)",
            );
        }
        if !summary.probes.is_empty() {
            let mut p = redis::pipe();
            for (db, key) in &summary.probes {
                p.cmd("SELECT").arg(*db).ignore();
                p.cmd("EXISTS").arg(key.as_slice());
            }
            let found: Vec<i64> = match p.query(conn) {
                Ok(f) => f,
                Err(e) => return o.not_verified(format!("EXISTS: {e}")),
            };
            let present = found.iter().filter(|&&n| n > 0).count();
            let ok = present * 2 > summary.probes.len();
            o.ok_if(
                ok,
                "server holds this dump",
                format!("{} probe keys present", summary.probes.len()),
                format!("{present} present, {total} keys in all"),
            );
            if !ok {
                return o.not_verified(
                    "this server does not hold this dump's keyspace (most probe keys are missing)",
                );
            }
        }
        o.loaded = true;
    }

    // DBSIZE per db, now; keys that expire from here on may or may not be gone.
    let t0 = now_ms();
    let server_dbs = match server::keyspace(conn) {
        Ok(k) => k,
        Err(e) => return o.not_verified(e.to_string()),
    };
    let dbs: BTreeSet<u32> = summary
        .dbs
        .keys()
        .copied()
        .chain(server_dbs.iter().map(|(db, _)| *db))
        .collect();
    let mut sizes: BTreeMap<u32, u64> = BTreeMap::new();
    for &db in &dbs {
        let r: redis::RedisResult<(u64,)> = redis::pipe()
            .cmd("SELECT")
            .arg(db)
            .ignore()
            .cmd("DBSIZE")
            .query(conn);
        match r {
            Ok((n,)) => {
                sizes.insert(db, n);
            }
            Err(e) => return o.not_verified(format!("SELECT {db} / DBSIZE: {e}")),
        }
    }

    // Key by key.
    let chosen = match opts.sample {
        Some(n) if n < summary.keys => {
            let seed = opts.seed.unwrap_or_else(random_seed);
            o.sample = Some(Sample {
                requested: n,
                chosen: n,
                seed,
            });
            Some(choose_sample(n, summary.keys, seed))
        }
        Some(n) => {
            o.warnings.push(format!(
                "--sample {n} is not less than the dump's {} keys: comparing all",
                summary.keys
            ));
            None
        }
        None => None,
    };
    let mut expired_t0: BTreeMap<u32, u64> = BTreeMap::new();
    let stats = {
        let mut reader = match dump::open(&opts.dump) {
            Ok(r) => r,
            Err(e) => return o.not_verified(e.to_string()),
        };
        let mut cmp = Comparer::new(conn, &version, opts.max_listed);
        o.expire_mode = Some(cmp.mode());
        let mut next_pick = chosen.as_ref().map(|c| c.iter().copied().peekable());
        let mut index = 0u64;
        loop {
            let e = match reader.next_entry() {
                Ok(Some(e)) => e,
                Ok(None) => break,
                Err(e) => return o.not_verified(format!("the dump changed while verifying: {e}")),
            };
            if e.expire_ms.is_some_and(|t| t <= t0) || compare::all_fields_expired(&e.value, t0) {
                *expired_t0.entry(e.db).or_default() += 1;
            }
            let take = match next_pick.as_mut() {
                None => true,
                Some(picks) => {
                    if picks.peek() == Some(&index) {
                        picks.next();
                        true
                    } else {
                        false
                    }
                }
            };
            index += 1;
            if take {
                if let Err(e) = cmp.push(e) {
                    return o.not_verified(e.to_string());
                }
            }
        }
        match cmp.finish() {
            Ok(s) => s,
            Err(e) => return o.not_verified(e.to_string()),
        }
    };

    // Keys the server holds beyond the dump's: DBSIZE says so (or, comparing all keys, more
    // keys than the dump's found there); name them.
    let mut stats = stats;
    for &db in &dbs {
        let want = summary.dbs.get(&db).map_or(0, |d| d.keys);
        let got = sizes.get(&db).copied().unwrap_or(0);
        let seen = stats.present.get(&db).copied().unwrap_or(0)
            + stats.expired_by_db.get(&db).copied().unwrap_or(0);
        let suspicious = got > want || (chosen.is_none() && got > seen);
        if suspicious && want <= MAX_KEYS_FOR_EXTRA_SCAN {
            match extra_keys(conn, &opts.dump, db, opts.max_listed) {
                Ok((n, names)) => {
                    let unnamed = n.saturating_sub(names.len() as u64);
                    for key in names {
                        stats.differs(
                            compare::Difference {
                                db,
                                key,
                                what: "extra".into(),
                                expected: "no such key".into(),
                                found: "a key".into(),
                            },
                            opts.max_listed,
                        );
                    }
                    stats.differing += unnamed;
                }
                Err(e) => o
                    .warnings
                    .push(format!("db {db}: cannot list the keys the dump lacks: {e}")),
            }
        }
    }
    for &db in &dbs {
        let want = summary.dbs.get(&db).map_or(0, |d| d.keys);
        let gone = expired_t0.get(&db).copied().unwrap_or(0);
        let got = sizes.get(&db).copied().unwrap_or(0);
        let expected = if gone > 0 {
            format!("{} to {want} ({gone} expired)", want.saturating_sub(gone))
        } else {
            want.to_string()
        };
        o.ok_if(
            (want.saturating_sub(gone)..=want).contains(&got),
            format!("DBSIZE db {db}"),
            expected,
            got.to_string(),
        );
    }
    let expected = match &o.sample {
        Some(s) => format!("{} sampled of {}", s.chosen, summary.keys),
        None => format!("{} keys", summary.keys),
    };
    let mut found = format!("{} match", stats.matched);
    if stats.differing > 0 {
        found.push_str(&format!(", {} differ", stats.differing));
    }
    if stats.expired > 0 {
        found.push_str(&format!(", {} expired", stats.expired));
    }
    o.ok_if(stats.differing == 0, KEYS_CHECK, expected, found);
    o.comparison = stats;
    o.conclude()
}
