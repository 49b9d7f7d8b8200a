//! The server version of a binary, read from its read-only strings, and what follows from
//! the version alone (RDB version, macro constants).
//!
//! `REDIS_VERSION` (Valkey: `VALKEY_VERSION`) is a bare literal such as `"7.0.15"`. Several
//! bare `x.y.z` literals can exist (bundled libraries: lua-cjson's `"2.1.0"`, Valkey's
//! pinned `REDIS_VERSION "7.2.4"`, …), so a candidate is confirmed by the build-id string
//! every build carries (`redisBuildId`/`redisBuildIdString`): the same version
//! immediately followed by `BUILD_ID`, the dirty count and the 8-hex-digit git SHA1, e.g.
//! `"2.8.17host-17000000000000000"`, `"7.0.151790282056000000000"` (Debian: numeric
//! BUILD_ID) or, in Valkey, `"valkey8.1.8e7aab…-17817994804011280" + "0" + sha`.
//! GCC does not always keep that string as a literal (it may build it on the stack with
//! immediate stores), so next, on x86-64, the literal that the `version()` function
//! (`redis-server --version`) passes to printf is taken: the candidate addressed by a
//! RIP-relative displacement (or an absolute 32-bit address) in its code. Last, the
//! candidate nearest to the INFO format string (`"redis_version:%s"`, or
//! `"valkey_version:%s"`) is taken and a warning says so.

use std::collections::BTreeMap;

use std::collections::HashSet;

use object::{Object, ObjectSection, ObjectSymbol, SectionKind};

/// A NUL-terminated string in a read-only section, with its virtual address.
#[derive(Debug, Clone)]
struct RoString {
    addr: u64,
    text: String,
}

fn read_only_strings(obj: &object::File<'_>) -> Vec<RoString> {
    let mut out = Vec::new();
    for s in obj.sections() {
        let name = s.name().unwrap_or("");
        let ro = matches!(
            s.kind(),
            SectionKind::ReadOnlyData | SectionKind::ReadOnlyString
        ) || name.starts_with(".rodata");
        if !ro {
            continue;
        }
        let Ok(data) = s.uncompressed_data() else {
            continue;
        };
        let base = s.address();
        let mut start = 0usize;
        for (i, b) in data.iter().enumerate() {
            if *b == 0 {
                if let Some(bytes) = data.get(start..i) {
                    // Printable text, line ends included (printf formats end in "\n").
                    let text_byte = |c: &u8| (0x20..0x7f).contains(c) || b"\t\n\r".contains(c);
                    if !bytes.is_empty() && bytes.iter().all(text_byte) {
                        out.push(RoString {
                            addr: base.wrapping_add(start as u64),
                            text: String::from_utf8_lossy(bytes).into_owned(),
                        });
                    }
                }
                start = i + 1;
            }
        }
    }
    out
}

/// `x.y.z` with 1–3 digit parts.
pub fn is_version(s: &str) -> bool {
    let parts: Vec<&str> = s.split('.').collect();
    parts.len() == 3
        && parts
            .iter()
            .all(|p| (1..=3).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()))
}

/// The tail of a build-id string after the version: BUILD_ID (possibly empty), the dirty
/// count and an 8-hex-digit SHA1.
fn is_build_tail(rest: &str) -> bool {
    rest.len() >= 9
        && !rest.starts_with('.')
        && rest
            .get(rest.len() - 8..)
            .is_some_and(|h| h.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The version found, and how.
#[derive(Debug, Clone)]
pub struct FoundVersion {
    /// `x.y.z`.
    pub version: String,
    /// How it was found (for the origin line).
    pub how: String,
    /// Set when the result is a guess.
    pub warning: Option<String>,
}

/// Find the server version in the binary's read-only strings. `valkey` selects the
/// `valkey` build-id prefix and INFO field.
pub fn detect(obj: &object::File<'_>, valkey: bool) -> Result<FoundVersion, String> {
    let strings = read_only_strings(obj);
    let mut candidates: Vec<&RoString> = strings.iter().filter(|s| is_version(&s.text)).collect();
    candidates.sort_by(|a, b| a.text.cmp(&b.text));
    candidates.dedup_by(|a, b| a.text == b.text);
    if candidates.is_empty() {
        return Err("no x.y.z version literal in the binary's read-only data".into());
    }
    let prefixes: &[&str] = if valkey {
        &["valkey", "", "redis"]
    } else {
        &["", "redis"]
    };
    // What follows each prefix in each string, where that starts with a digit (a version
    // can only start there): a few strings out of the many read-only ones, looked up once.
    let tails: Vec<&str> = strings
        .iter()
        .flat_map(|s| prefixes.iter().filter_map(|p| s.text.strip_prefix(p)))
        .filter(|r| r.starts_with(|c: char| c.is_ascii_digit()))
        .collect();
    let mut confirmed: Vec<&str> = candidates
        .iter()
        .map(|c| c.text.as_str())
        .filter(|v| {
            tails
                .iter()
                .any(|r| r.strip_prefix(v).is_some_and(is_build_tail))
        })
        .collect();
    // "7.0.1" is a prefix of "7.0.15…" too: keep the longest.
    confirmed.sort_by_key(|v| std::cmp::Reverse(v.len()));
    if let Some(first) = confirmed.first() {
        let longest_len = first.len();
        let longest: Vec<&&str> = confirmed
            .iter()
            .filter(|v| v.len() == longest_len)
            .collect();
        if longest.len() == 1 {
            return Ok(FoundVersion {
                version: (*first).to_owned(),
                how: "the version literal that starts the build-id string".into(),
                warning: None,
            });
        }
    }
    if let Some(targets) = code_references(obj, "version") {
        let mut hits: Vec<&str> = candidates
            .iter()
            .filter(|c| targets.contains(&c.addr))
            .map(|c| c.text.as_str())
            .collect();
        hits.dedup();
        if let [only] = hits.as_slice() {
            return Ok(FoundVersion {
                version: (*only).to_owned(),
                how: "the version literal printed by version() (--version)".into(),
                warning: None,
            });
        }
    }
    // A binary with no symbols at all (static, fully stripped): the literal that the code
    // loads right beside the `--version` format string.
    let formats: &[&str] = if valkey {
        &["Valkey server v=", "Server v="]
    } else {
        &["Redis server v="]
    };
    let format_addrs: Vec<u64> = strings
        .iter()
        .filter(|s| formats.iter().any(|f| s.text.starts_with(f)))
        .map(|s| s.addr)
        .collect();
    if !format_addrs.is_empty() {
        let texts = code_sections(obj);
        let cands: Vec<(u64, &str)> = candidates
            .iter()
            .map(|c| (c.addr, c.text.as_str()))
            .collect();
        let hits = loaded_beside(&texts, &format_addrs, &cands, FORMAT_WINDOW);
        if let [only] = hits.as_slice() {
            return Ok(FoundVersion {
                version: (*only).to_owned(),
                how: "the version literal loaded beside the --version format string".into(),
                warning: None,
            });
        }
    }
    let markers: &[&str] = if valkey {
        &["valkey_version:", "Valkey version="]
    } else {
        &["redis_version:", "Redis version="]
    };
    let anchor = markers
        .iter()
        .find_map(|m| strings.iter().find(|s| s.text.contains(m)))
        .ok_or_else(|| {
            format!(
                "the version is ambiguous (candidates: {}) and there is no {:?} string",
                candidates
                    .iter()
                    .map(|c| c.text.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                markers.first().copied().unwrap_or_default()
            )
        })?;
    let nearest = candidates
        .iter()
        .min_by_key(|c| c.addr.abs_diff(anchor.addr))
        .ok_or("no candidates")?;
    Ok(FoundVersion {
        version: nearest.text.clone(),
        how: format!("the version literal nearest to {:?}", anchor.text),
        warning: Some(format!(
            "the version {} was guessed from string proximity (candidates: {}); pass --redis-version if it is wrong",
            nearest.text,
            candidates
                .iter()
                .map(|c| c.text.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )),
    })
}

/// Addresses a function's x86-64 code may refer to: for every byte position, the target
/// of a RIP-relative disp32 ending there, and the value as an absolute 32-bit address.
/// Positions are not decoded as instructions; callers match the result against a few
/// known addresses only. `None` for other architectures or when the function is absent.
fn code_references(obj: &object::File<'_>, function: &str) -> Option<HashSet<u64>> {
    if obj.architecture() != object::Architecture::X86_64 {
        return None;
    }
    let sym = obj
        .symbols()
        .find(|s| s.name() == Ok(function) && s.is_definition())
        .or_else(|| {
            obj.dynamic_symbols()
                .find(|s| s.name() == Ok(function) && s.is_definition())
        })?;
    let (addr, size) = (sym.address(), sym.size());
    let section = obj.sections().find(|s| {
        s.address() <= addr
            && addr
                .checked_add(size)
                .is_some_and(|end| end <= s.address() + s.size())
    })?;
    let code = section.data_range(addr, size).ok().flatten()?;
    let mut out = HashSet::new();
    for (i, w) in code.windows(4).enumerate() {
        let raw: [u8; 4] = w.try_into().ok()?;
        let disp = i64::from(i32::from_le_bytes(raw));
        let end = addr.wrapping_add(i as u64 + 4);
        out.insert(end.wrapping_add_signed(disp));
        out.insert(u64::from(u32::from_le_bytes(raw)));
    }
    Some(out)
}

/// Bytes of code either side of a load of the `--version` format string searched for the
/// load of the version literal (`version()` passes it as printf's next argument; 33 bytes
/// apart in a static 6.2.14).
const FORMAT_WINDOW: u64 = 128;

/// The executable sections' `(address, bytes)` (x86-64 only: elsewhere, none).
fn code_sections<'a>(obj: &'a object::File<'_>) -> Vec<(u64, &'a [u8])> {
    if obj.architecture() != object::Architecture::X86_64 {
        return Vec::new();
    }
    obj.sections()
        .filter(|s| s.kind() == SectionKind::Text)
        .filter_map(|s| Some((s.address(), s.data().ok()?)))
        .collect()
}

/// The distinct texts of `candidates` (`(address, text)`) whose address the code loads
/// within `window` bytes of a load of one of `anchors`. A load is a RIP-relative disp32 or
/// an absolute 32-bit address at any byte position (not decoded as instructions: only a
/// few known addresses are matched).
fn loaded_beside<'c>(
    code: &[(u64, &[u8])],
    anchors: &[u64],
    candidates: &[(u64, &'c str)],
    window: u64,
) -> Vec<&'c str> {
    let mut anchor_at = Vec::new();
    let mut cand_at: Vec<(u64, &'c str)> = Vec::new();
    for (base, bytes) in code {
        for (i, w) in bytes.windows(4).enumerate() {
            let Ok(raw) = <[u8; 4]>::try_from(w) else {
                continue;
            };
            let at = base.wrapping_add(i as u64);
            let rip = at
                .wrapping_add(4)
                .wrapping_add_signed(i64::from(i32::from_le_bytes(raw)));
            let abs = u64::from(u32::from_le_bytes(raw));
            for target in [rip, abs] {
                if anchors.contains(&target) {
                    anchor_at.push(at);
                }
                if let Some((_, text)) = candidates.iter().find(|(a, _)| *a == target) {
                    cand_at.push((at, text));
                }
            }
        }
    }
    let mut hits: Vec<&'c str> = cand_at
        .iter()
        .filter(|(at, _)| anchor_at.iter().any(|f| f.abs_diff(*at) <= window))
        .map(|(_, t)| *t)
        .collect();
    hits.sort_unstable();
    hits.dedup();
    hits
}

/// Major and minor of `x.y.z`.
pub fn major_minor(v: &str) -> Option<(u32, u32)> {
    let mut it = v.split('.');
    let major = it.next()?.parse().ok()?;
    let minor = it.next()?.parse().ok()?;
    Some((major, minor))
}

/// The RDB version a server of this version writes, when known.
pub fn rdb_version(valkey: bool, version: &str) -> Option<u32> {
    let (major, minor) = major_minor(version)?;
    if valkey {
        return match (major, minor) {
            (7, 2) | (8, _) => Some(11),
            (9, _) => Some(80),
            _ => None,
        };
    }
    match (major, minor) {
        (2, 6) | (2, 8) | (3, 0) => Some(6),
        (3, 2) => Some(7),
        (4, 0) => Some(8),
        (5, 0) | (6, _) => Some(9),
        (7, 0) => Some(10),
        (7, 2) => Some(11),
        (7, 4) | (8, 0) | (8, 2) | (8, 4) => Some(12),
        (8, 6) => Some(13),
        _ => None,
    }
}

/// Named constant groups (`types`, `encodings`, `quicklist_node`). These are `#define`s,
/// absent from DWARF; the values come from the Redis headers of each family (2.8
/// `redis.h` … 6.2 `server.h`, and redis-internals §3.2, §5.5) and are stable across
/// versions: a constant is present from the release that introduced it.
pub fn constants(
    valkey: bool,
    version: (u32, u32),
    features: &crate::profile::features::Features,
) -> BTreeMap<String, BTreeMap<String, i64>> {
    use crate::profile::features::{HashFieldFlavor, QuicklistFlavor};
    let quicklist = features.quicklist.map(QuicklistFlavor::name);
    // Valkey forked from Redis 7.2.4: it has everything 7.2 has.
    let at_least = |m: u32, n: u32| valkey || version >= (m, n);
    let group = |items: &[(&str, i64)]| -> BTreeMap<String, i64> {
        items.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
    };
    let mut types = vec![
        ("string", 0),
        ("list", 1),
        ("set", 2),
        ("zset", 3),
        ("hash", 4),
    ];
    if at_least(4, 0) {
        types.push(("module", 5));
    }
    if at_least(5, 0) {
        types.push(("stream", 6));
    }
    let mut enc = vec![
        ("raw", 0),
        ("int", 1),
        ("hashtable", 2),
        ("zipmap", 3),
        ("linkedlist", 4),
        ("ziplist", 5),
        ("intset", 6),
        ("skiplist", 7),
    ];
    if at_least(3, 0) {
        enc.push(("embstr", 8));
    }
    if at_least(3, 2) {
        enc.push(("quicklist", 9));
    }
    if at_least(5, 0) {
        enc.push(("stream", 10));
    }
    if at_least(7, 0) {
        enc.push(("listpack", 11));
    }
    if !valkey && version >= (7, 4) {
        enc.push(("listpack_ex", 12));
    }
    let mut out = BTreeMap::new();
    if features.hash_fields == HashFieldFlavor::Entry {
        // The aux bits of a field sds announcing the blocks before its header
        // (t_hash.c / entry.c): Valkey 8.1 has only the value pointer (aux bit 0);
        // Redis 8.6 puts an ExpireMeta (aux bit 0) before the value pointer (aux bit 1).
        let entry: &[(&str, i64)] = if valkey && version.0 >= 9 {
            // Valkey 9: an int64 expiry (aux bit 0) before the value pointer (aux bit 1);
            // 9.1 adds aux bit 2, the pointer leads to a module-shared string reference.
            if version >= (9, 1) {
                &[
                    ("expire_bit", 0),
                    ("expire_size", 8),
                    ("value_ptr_bit", 1),
                    ("string_ref_bit", 2),
                ]
            } else {
                &[("expire_bit", 0), ("expire_size", 8), ("value_ptr_bit", 1)]
            }
        } else if valkey {
            &[("value_ptr_bit", 0)]
        } else {
            &[("expire_bit", 0), ("expire_size", 16), ("value_ptr_bit", 1)]
        };
        out.insert("hash_entry".to_owned(), group(entry));
    }
    out.insert("types".to_owned(), group(&types));
    out.insert("encodings".to_owned(), group(&enc));
    match quicklist {
        // 3.2–6.2: QUICKLIST_NODE_CONTAINER_NONE 1 (unused), _ZIPLIST 2.
        Some("ziplist") => {
            out.insert(
                "quicklist_node".to_owned(),
                group(&[
                    ("encoding_raw", 1),
                    ("encoding_lzf", 2),
                    ("container_packed", 2),
                ]),
            );
        }
        // 7.0+: QUICKLIST_NODE_CONTAINER_PLAIN 1, _PACKED 2.
        Some(_) => {
            out.insert(
                "quicklist_node".to_owned(),
                group(&[
                    ("encoding_raw", 1),
                    ("encoding_lzf", 2),
                    ("container_plain", 1),
                    ("container_packed", 2),
                ]),
            );
        }
        None => {}
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_literal_loaded_beside_the_format_is_the_version() {
        // lea 0x..(%rip),%rsi (format) … mov $0x5c39b3,%edx (the version), as in a static
        // 6.2.14; a lua-cjson "2.1.0" loaded far away does not count.
        let base = 0x401000u64;
        let mut code = vec![0x90u8; 0x400];
        let format = 0x5c6e58u64;
        let at = 0x20usize;
        let disp = (format as i64 - (base as i64 + at as i64 + 4)) as i32;
        code[at..at + 4].copy_from_slice(&disp.to_le_bytes());
        code[at + 33..at + 37].copy_from_slice(&0x5c39b3u32.to_le_bytes());
        code[0x300..0x304].copy_from_slice(&0x5ea3ebu32.to_le_bytes());
        let cands = [(0x5c39b3, "6.2.14"), (0x5ea3eb, "2.1.0")];
        let texts = [(base, code.as_slice())];
        assert_eq!(
            loaded_beside(&texts, &[format], &cands, FORMAT_WINDOW),
            ["6.2.14"]
        );
        // Both near: ambiguous, two answers (the caller then does not take either).
        code[0x60..0x64].copy_from_slice(&0x5ea3ebu32.to_le_bytes());
        let texts = [(base, code.as_slice())];
        assert_eq!(
            loaded_beside(&texts, &[format], &cands, FORMAT_WINDOW).len(),
            2
        );
        // Truncated or empty code: nothing, no panic.
        assert!(loaded_beside(&[(base, &code[..3])], &[format], &cands, 128).is_empty());
    }

    #[test]
    fn version_shapes() {
        assert!(is_version("2.8.17"));
        assert!(is_version("255.255.255"));
        assert!(!is_version("2.8"));
        assert!(!is_version("1.2.3.4"));
        assert!(!is_version("v2.8.1"));
        assert!(is_build_tail("vm-1795440737000000000"));
        assert!(is_build_tail("1790282056000000000"));
        assert!(!is_build_tail(".1"));
        assert!(!is_build_tail("abc"));
    }

    #[test]
    fn rdb_versions() {
        assert_eq!(rdb_version(false, "2.8.17"), Some(6));
        assert_eq!(rdb_version(false, "3.0.5"), Some(6));
        assert_eq!(rdb_version(false, "3.2.6"), Some(7));
        assert_eq!(rdb_version(false, "4.0.14"), Some(8));
        assert_eq!(rdb_version(false, "5.0.6"), Some(9));
        assert_eq!(rdb_version(false, "6.2.14"), Some(9));
        assert_eq!(rdb_version(false, "7.0.15"), Some(10));
        assert_eq!(rdb_version(false, "7.2.6"), Some(11));
        assert_eq!(rdb_version(false, "7.4.1"), Some(12));
        assert_eq!(rdb_version(false, "8.2.3"), Some(12));
        assert_eq!(rdb_version(false, "8.6.3"), Some(13));
        assert_eq!(rdb_version(true, "8.1.8"), Some(11));
        assert_eq!(rdb_version(false, "9.9.9"), None);
    }

    /// The features of a shipped profile.
    fn features_of(name: &str) -> crate::profile::features::Features {
        let p = crate::profile::load(name).unwrap();
        crate::profile::features::Features::from_map(&p.features).unwrap()
    }

    #[test]
    fn constants_match_the_shipped_7_0_profile() {
        let c = constants(false, (7, 0), &features_of("7.0.15-debian"));
        let shipped = crate::profile::load("7.0.15-debian").unwrap();
        assert_eq!(c, shipped.constants);
    }

    #[test]
    fn constants_by_family() {
        let c = constants(false, (2, 8), &features_of("2.8.17"));
        assert!(!c["encodings"].contains_key("embstr"));
        assert!(!c.contains_key("quicklist_node"));
        let c = constants(false, (3, 2), &features_of("3.2.6"));
        assert_eq!(c["encodings"]["quicklist"], 9);
        assert!(!c["quicklist_node"].contains_key("container_plain"));
        let c = constants(true, (8, 1), &features_of("valkey-8.1.8"));
        assert_eq!(c["hash_entry"]["value_ptr_bit"], 0);
        assert_eq!(c["encodings"]["listpack"], 11);
        assert!(!c["encodings"].contains_key("listpack_ex"));
    }
}
