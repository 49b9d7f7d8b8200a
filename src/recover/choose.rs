//! The phase that chooses the layout: candidate profiles in the order recovery prefers
//! them, where `server` is in each, and the first whose databases the live data fits.

use super::{Options, RecoverError};
use crate::binary::Executable;
use crate::core::{CoreFile, ExecutableInCore};
use crate::profile::{self, Layout, ProfileFile};
use crate::walker::{DbInfo, KeyspaceWalker};

/// Why the core alone does not say which executable it is.
fn no_build_id_reason(core: &CoreFile<'_>) -> &'static str {
    if core.files.is_empty() {
        "the core's NT_FILE note is missing or unreadable (gdb writes notes at the end of the file, so a truncated gcore core loses them), so the executable and its load address are unknown"
    } else {
        "the executable's ELF header page is not in the core and no binary was usable; pass --binary or --profile"
    }
}

/// A profile to try, and why it is a candidate.
struct Candidate {
    file: ProfileFile,
    why: String,
}

/// The profiles to try first: the one the user named or asked to derive (alone), else the
/// shipped one recorded for the core's build-id. Cheap: nothing is read from the binary.
fn exact_candidates(
    opts: &Options,
    shipped: &[ProfileFile],
    build_id: Option<&str>,
    binary: Option<&Executable>,
    core: &CoreFile<'_>,
    tried: &mut Vec<String>,
) -> Result<Vec<Candidate>, RecoverError> {
    if let Some(p) = &opts.profile {
        return Ok(vec![Candidate {
            file: profile::load(p)?,
            why: format!("--profile {p}"),
        }]);
    }
    let mut out = Vec::new();
    if opts.derive {
        let bin = binary.ok_or_else(|| {
            RecoverError::Usage(
                "--derive needs a binary (--binary, or the core's NT_FILE path)".into(),
            )
        })?;
        let file = crate::dwarf::derive_profile(&bin.path)
            .map_err(|e| RecoverError::NoProfile(format!("--derive: {e}")))?;
        return Ok(vec![Candidate {
            file,
            why: format!(
                "derived from the DWARF of {} (--derive)",
                bin.path.display()
            ),
        }]);
    }
    match build_id {
        Some(id) => {
            if let Some(p) = shipped
                .iter()
                .find(|p| p.identity.build_id.as_deref() == Some(id))
            {
                out.push(Candidate {
                    file: p.clone(),
                    why: format!("shipped profile for build-id {id}"),
                });
            } else {
                tried.push(format!(
                    "no shipped profile has build-id {id} (shipped: {})",
                    profile::shipped_names().join(", ")
                ));
            }
        }
        None => tried.push(format!(
            "the core's build-id is unknown: {}",
            no_build_id_reason(core)
        )),
    }
    Ok(out)
}

/// The profiles to try when no exact one fits, in the order issue-free recovery prefers
/// them: one derived from the binary's DWARF, then the shipped ones for the binary's Redis
/// version or its release line (accepted only if the live data fits them). Deriving reads
/// and indexes the binary's debug info (a tenth of a second or more for a big build), so
/// it is done only when needed.
fn fallback_candidates(
    shipped: &[ProfileFile],
    binary: Option<&Executable>,
    tried: &mut Vec<String>,
) -> Result<Vec<Candidate>, RecoverError> {
    let mut out = Vec::new();
    let Some(bin) = binary else {
        tried.push(
            "no binary to derive a layout from (--binary, or the core's NT_FILE path)".into(),
        );
        return Ok(out);
    };
    // A binary with debug info describes itself exactly.
    match crate::dwarf::derive_profile(&bin.path) {
        Ok(p) => out.push(Candidate {
            file: p,
            why: format!("derived from the DWARF of {}", bin.path.display()),
        }),
        Err(e) => tried.push(format!("deriving from {}: {e}", bin.path.display())),
    }
    // Without debug info: shipped profiles of the binary's version, if the data fits them.
    let versions = crate::dwarf::binary_versions(&bin.path);
    if versions.is_empty() {
        tried.push(format!(
            "cannot read a version string from {}",
            bin.path.display()
        ));
    }
    for (version, valkey) in versions {
        let kind = if valkey { "valkey" } else { "redis" };
        let mut any = false;
        for p in same_release_line(shipped, kind, &version) {
            any = true;
            let why = if p.identity.redis_version == version {
                format!(
                    "shipped profile for {kind} {version} (the binary's version), checked against the live data"
                )
            } else {
                format!(
                    "shipped profile for {kind} {} of the same release line as the binary's {version} (nearest patch release first), checked against the live data",
                    p.identity.redis_version
                )
            };
            out.push(Candidate {
                file: p.clone(),
                why,
            });
        }
        if !any {
            tried.push(format!(
                "no shipped profile for {kind} {version} or its release line"
            ));
        }
    }
    Ok(out)
}

/// Shipped profiles of `kind` whose version shares `version`'s major.minor: the exact
/// version first, then by distance of the patch release (the newer one first on a tie).
pub(super) fn same_release_line<'p>(
    shipped: &'p [ProfileFile],
    kind: &str,
    version: &str,
) -> Vec<&'p ProfileFile> {
    let parse = |v: &str| -> Option<(u32, u32, u32)> {
        let mut it = v.split('.').map(|p| p.parse::<u32>().ok());
        Some((it.next()??, it.next()??, it.next().flatten().unwrap_or(0)))
    };
    let Some(want) = parse(version) else {
        return Vec::new();
    };
    let mut line: Vec<(&ProfileFile, (u32, u32, u32))> = shipped
        .iter()
        .filter(|p| p.identity.server == kind)
        .filter_map(|p| Some((p, parse(&p.identity.redis_version)?)))
        .filter(|(_, v)| (v.0, v.1) == (want.0, want.1))
        .collect();
    line.sort_by_key(|(_, v)| (v.2.abs_diff(want.2), std::cmp::Reverse(v.2)));
    line.into_iter().map(|(p, _)| p).collect()
}

/// Where `server` is, and how that was found: the binary's `server` symbol, else the
/// offset the profile records (for its own build-id; any with `--force`), else a search of
/// the executable's writable image for the structure the layout describes, accepted only
/// when one candidate alone passes ([`crate::walker::locate`]).
fn server_address(
    core: &CoreFile<'_>,
    layout: &Layout,
    exe: Option<&ExecutableInCore>,
    binary: Option<&Executable>,
    build_id: Option<&str>,
    force: bool,
) -> Result<(u64, String), RecoverError> {
    let base = exe.map(|e| e.base);
    let at = |base: u64, offset: u64| {
        base.checked_add(offset)
            .ok_or_else(|| RecoverError::Symbol("address overflow".into()))
    };
    let unknown_base = "the executable's load address is unknown (no readable NT_FILE note: missing, or cut off by truncation)";
    let mut why_not = Vec::new();
    if let Some(b) = binary {
        match (b.symbol("server"), base) {
            (Some(s), Some(base)) => {
                return Ok((
                    at(base, s.offset)?,
                    format!("symbol of {}", b.path.display()),
                ))
            }
            (Some(_), None) => why_not.push(format!(
                "{} has a `server` symbol, but {unknown_base}",
                b.path.display()
            )),
            (None, _) => why_not.push(format!("{} has no `server` symbol", b.path.display())),
        }
    }
    let (recorded, p, c) = (
        layout.server_symbol,
        layout.identity.build_id.as_deref(),
        build_id,
    );
    match recorded {
        // A recorded offset counts unless the build-ids say it is another build's.
        Some(s) if p.is_none() || c.is_none() || p == c || force => match base {
            Some(base) => {
                return Ok((
                    at(base, s.offset)?,
                    format!("recorded in profile {}", layout.name),
                ))
            }
            None => why_not.push(format!(
                "profile {} records its offset, but {unknown_base}",
                layout.name
            )),
        },
        Some(_) => why_not.push(format!(
            "profile {} records symbols for build-id {}, but the core is build-id {} (a matching --binary, or --force, would use them)",
            layout.name,
            p.unwrap_or("(none)"),
            c.unwrap_or("(unknown)")
        )),
        None => why_not.push(format!(
            "profile {} describes a layout only (no symbol offsets)",
            layout.name
        )),
    }
    match crate::walker::locate::find_server(core, layout, base) {
        Ok(found) => Ok((found.address, found.summary())),
        Err(e) => Err(RecoverError::Symbol(format!(
            "{}; and the structure search found no unique `server`: {e}",
            why_not.join("; ")
        ))),
    }
}

/// The offset from the load base of the static `name`: the binary's symbol, else the
/// RIP-relative load in the exported getter that returns it (stripped builds keep only
/// exported symbols), else the profile's record, which counts only for the build-id it was
/// recorded for. Also says how it was found.
pub(super) fn static_offset(
    name: &str,
    binary: Option<&Executable>,
    layout: &Layout,
    recorded: Option<crate::profile::schema::SymbolSpec>,
    core_build_id: Option<&str>,
) -> Result<(u64, String), String> {
    let mut tried = Vec::new();
    if let Some(b) = binary {
        if let Some(s) = b.symbol(name) {
            return Ok((s.offset, format!("symbol of {}", b.path.display())));
        }
        match crate::code_refs::find_static(b, name) {
            Ok(r) => {
                return Ok((
                    r.offset,
                    format!(
                        "found in the machine code of {}() in {} (no symbol)",
                        r.function,
                        b.path.display()
                    ),
                ))
            }
            Err(e) => tried.push(format!("{}: {e}", b.path.display())),
        }
    }
    match (recorded, layout.identity.build_id.as_deref(), core_build_id) {
        // As for `server`: a recorded offset counts unless the build-ids say it is another build's.
        (Some(s), p, c) if p.is_none() || c.is_none() || p == c => {
            Ok((s.offset, format!("recorded in profile {}", layout.name)))
        }
        (Some(_), p, c) => {
            tried.push(format!(
                "profile {} records it for build-id {}, the core is build-id {}",
                layout.name,
                p.unwrap_or("(none)"),
                c.unwrap_or("(unknown)")
            ));
            Err(tried.join("; "))
        }
        (None, _, _) => {
            tried.push(format!("profile {} does not record it", layout.name));
            Err(tried.join("; "))
        }
    }
}

/// The phase that chooses the layout: the first candidate profile the live data fits, with
/// where `server` is and the databases read through it.
pub(super) struct Chosen {
    pub(super) layout: Layout,
    pub(super) server: u64,
    pub(super) server_found_by: String,
    pub(super) dbs: Vec<DbInfo>,
    pub(super) choice: String,
}

pub(super) fn choose_profile(
    opts: &Options,
    core: &CoreFile<'_>,
    exe: Option<&ExecutableInCore>,
    binary: Option<&Executable>,
    build_id: Option<&str>,
) -> Result<Chosen, RecoverError> {
    let mut tried = Vec::new();
    let explicit = opts.profile.is_some() || opts.derive;
    let mut chosen = None;
    // Parsed once for both lists, and not at all for an explicit choice.
    let shipped = if explicit {
        Vec::new()
    } else {
        profile::shipped_profiles()?
    };
    let mut cands =
        exact_candidates(opts, &shipped, build_id, binary, core, &mut tried)?.into_iter();
    // An explicit choice has no fallback.
    let mut fallback_due = !explicit;
    while let Some(cand) = match cands.next() {
        Some(c) => Some(c),
        None if std::mem::take(&mut fallback_due) => {
            cands = fallback_candidates(&shipped, binary, &mut tried)?.into_iter();
            cands.next()
        }
        None => None,
    } {
        // A profile is accepted only if the live data fits it: `server` found, dbnum
        // plausible, db[i].id == i, and every keys dict header valid.
        let attempt = Layout::resolve(&cand.file)
            .map_err(RecoverError::from)
            .and_then(|layout| {
                let (server, found_by) =
                    server_address(core, &layout, exe, binary, build_id, opts.force)?;
                let dbs = KeyspaceWalker::new(&core.space, &layout).databases(server)?;
                Ok((layout, (server, found_by), dbs))
            });
        match attempt {
            Ok((layout, server, dbs)) => {
                let bad = dbs.iter().filter(|d| d.keys.is_err()).count();
                if bad > 0 && !explicit {
                    tried.push(format!(
                        "{} ({}): {bad} database(s) have keys dicts that do not fit it",
                        layout.name, cand.why
                    ));
                    continue;
                }
                chosen = Some((layout, server, dbs, cand.why));
                break;
            }
            Err(e) if explicit => return Err(e),
            Err(e) => tried.push(format!("{} ({}): {e}", cand.file.name, cand.why)),
        }
    }
    let Some((layout, (server, server_found_by), dbs, choice)) = chosen else {
        return Err(RecoverError::NoProfile(format!(
            "tried: {}; pass --profile NAME|PATH or a --binary with debug info",
            tried.join("; ")
        )));
    };
    Ok(Chosen {
        layout,
        server,
        server_found_by,
        dbs,
        choice,
    })
}
