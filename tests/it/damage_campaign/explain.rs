//! The explanations a wrong key may have: the damage landed in its value's bytes, a length
//! byte, an intset's count, or named another key of the source; a key is allowed to be a part
//! of the source's key, never something else.

use super::*;

/// Whether `got` differs from `want` only where damaged bytes inside the key's own data
/// would put a difference: same type, the same number of elements (fewer for a partial
/// key), and every element the source does not have standing in for one of the same length
/// that the dump lacks. The expire may differ (its 8 bytes are payload too).
pub(super) fn explained_by_payload(got: &KeyState, want: &KeyState, partial: bool) -> bool {
    if got.ty != want.ty {
        return false;
    }
    let count_ok = |g: usize, w: usize| if partial { g <= w } else { g == w };
    // An integer is stored as a number (in the robj, an intset or a listpack): a flipped
    // bit changes its digits, not just their bytes.
    let same_shape = |g: &[u8], w: &[u8]| g.len() == w.len() || (is_int(g) && is_int(w));
    match got.ty.as_str() {
        "string" | "list" => {
            count_ok(got.value.len(), want.value.len())
                && got
                    .value
                    .iter()
                    .zip(&want.value)
                    .all(|(g, w)| same_shape(g, w))
        }
        // Entries are listpacks of numbers and strings; their text shifts with the numbers.
        "stream" => count_ok(got.value.len(), want.value.len()),
        "set" | "hash" | "zset" => {
            let unit = if got.ty == "set" { 1 } else { 2 };
            if !count_ok(got.value.len() / unit, want.value.len() / unit) {
                return false;
            }
            // Each unit the dump alone has must stand in for one the source alone has (a
            // zset's score, its second element, is free).
            let n = if got.ty == "zset" { 1 } else { unit };
            pair_leftovers(&got.value, &want.value, unit, |a, b| {
                a.iter().zip(b).take(n).all(|(x, y)| same_shape(x, y))
            })
            .is_some()
        }
        _ => false,
    }
}

/// Whether `got` is `want` with elements damaged in place only, at least one of them in its
/// length (its own sds header): the source's bytes followed by NULs, or cut short where a
/// NUL stood; others may have changed bytes at the same length (see
/// [`Outcome::length_damaged`]). Type, count and expire must be equal.
pub(super) fn explained_by_length_byte(got: &KeyState, want: &KeyState) -> bool {
    if got.ty != want.ty || got.pexpiretime != want.pexpiretime {
        return false;
    }
    if got.ty == "set" && intset_count_damaged(&got.value, &want.value) {
        return true;
    }
    if got.value.len() != want.value.len() {
        return false;
    }
    let differing: Vec<(&Vec<u8>, &Vec<u8>)> = match got.ty.as_str() {
        // Unordered: compare as multisets of units (a hash's field and value, a set's
        // member), then pair each leftover unit of the dump with one of the source's it
        // could have been.
        "set" | "hash" | "zset" => {
            let unit = if got.ty == "set" { 1 } else { 2 };
            let Some((pairs, 0)) = pair_leftovers(&got.value, &want.value, unit, |g, m| {
                g.iter().zip(m).all(|(a, b)| in_place(a, b))
            }) else {
                return false;
            };
            pairs
                .into_iter()
                .flat_map(|(g, m)| g.iter().zip(m).filter(|(a, b)| a != b))
                .collect()
        }
        _ => got
            .value
            .iter()
            .zip(&want.value)
            .filter(|(a, b)| a != b)
            .collect(),
    };
    // Every difference in place, and at least one a change of length.
    !differing.is_empty()
        && differing.iter().all(|(g, w)| in_place(g, w))
        && differing.iter().any(|(g, w)| g.len() != w.len())
}

/// An intset whose own `length` field was damaged: its members, in their stored (ascending)
/// order, are a prefix of the source's, or the source's followed by whatever integers the
/// allocation's slack holds. An intset keeps no terminator to catch it.
pub(super) fn intset_count_damaged(got: &[Vec<u8>], want: &[Vec<u8>]) -> bool {
    let ints = |v: &[Vec<u8>]| -> Option<Vec<i64>> {
        let mut n: Vec<i64> = v
            .iter()
            .map(|m| std::str::from_utf8(m).ok()?.parse().ok())
            .collect::<Option<_>>()?;
        n.sort_unstable();
        Some(n)
    };
    match (ints(got), ints(want)) {
        // Cut short: the smallest members remain.
        (Some(g), Some(w)) if g.len() < w.len() => !g.is_empty() && w.starts_with(&g),
        // Extended: every member is there, plus integers read from the slack (any values:
        // they follow the largest member in storage, not in sorted order).
        (Some(g), Some(w)) if g.len() > w.len() => w.iter().all(|m| g.binary_search(m).is_ok()),
        _ => false,
    }
}

/// The units (`unit` elements each: a set's member, a hash's field and value, a zset's member
/// and score) of an unordered value that `got` holds and `want` does not, each paired with
/// one of `want`'s that `got` lacks and that it `fits`; with how many of `want`'s stay
/// unpaired. `None` when a unit of `got` finds no partner.
#[allow(clippy::type_complexity)]
pub(super) fn pair_leftovers<'k>(
    got: &'k [Vec<u8>],
    want: &'k [Vec<u8>],
    unit: usize,
    fits: impl Fn(&[Vec<u8>], &[Vec<u8>]) -> bool,
) -> Option<(Vec<(&'k [Vec<u8>], &'k [Vec<u8>])>, usize)> {
    let mut w: Vec<&[Vec<u8>]> = want.chunks(unit).collect();
    let mut extra = Vec::new();
    for u in got.chunks(unit) {
        match w.iter().position(|x| *x == u) {
            Some(i) => {
                w.swap_remove(i);
            }
            None => extra.push(u),
        }
    }
    let mut pairs = Vec::new();
    for g in extra {
        let i = w.iter().position(|m| fits(g, m))?;
        pairs.push((g, w.swap_remove(i)));
    }
    Some((pairs, w.len()))
}

/// `a` and `b` differ at most as damage inside one string's own allocation can make them:
/// same length (payload bytes), or one is the other extended past its NUL terminator (a
/// grown length reads the old terminator, then the allocation's slack, up to a NUL; a
/// shrunk one stops where the longer string held a NUL).
pub(super) fn in_place(a: &[u8], b: &[u8]) -> bool {
    if a.len() == b.len() {
        return true;
    }
    let (long, short) = if a.len() > b.len() { (a, b) } else { (b, a) };
    long.starts_with(short) && long.get(short.len()) == Some(&0)
}

pub(super) fn is_int(b: &[u8]) -> bool {
    std::str::from_utf8(b).is_ok_and(|s| s.parse::<i64>().is_ok())
}

/// Every value and every collection element of the source, to recognise a value that a
/// damaged pointer took from another key.
pub(super) struct SourceIndex {
    pub(super) values: BTreeSet<(String, Vec<Vec<u8>>)>,
    pub(super) elements: BTreeSet<Vec<u8>>,
}

impl SourceIndex {
    pub(super) fn read(conn: &mut Connection, dbs: &BTreeMap<u32, u64>) -> SourceIndex {
        let mut values = BTreeSet::new();
        let mut elements = BTreeSet::new();
        for db in dbs.keys() {
            let keys: Vec<Vec<u8>> = scan_keys(conn, *db).into_iter().collect();
            for st in key_states(conn, *db, &keys) {
                if st.ty != "string" && st.ty != "stream" {
                    elements.extend(st.value.iter().cloned());
                }
                values.insert((st.ty, st.value));
            }
        }
        select(conn, 0);
        SourceIndex { values, elements }
    }

    /// `got` is the value of some source key, or (partial) made of source elements.
    pub(super) fn misattributed(&self, got: &KeyState, partial: bool) -> bool {
        self.values.contains(&(got.ty.clone(), got.value.clone()))
            || (partial && got.value.iter().all(|e| self.elements.contains(e)))
    }
}

/// For a key the source does not have: a source key the dump lacks, of the same length and
/// differing in at most 8 bytes (its name was damaged in place), whose value explains it.
pub(super) fn renamed_from<'k>(
    key: &[u8],
    got: &KeyState,
    missing: &'k [(Vec<u8>, KeyState)],
) -> Option<&'k [u8]> {
    missing
        .iter()
        .find(|(k, w)| {
            k.len() == key.len()
                && k.iter().zip(key).filter(|(a, b)| a != b).count() <= 8
                && (got == w || explained_by_payload(got, w, false))
        })
        .map(|(k, _)| k.as_slice())
}

/// A partial key holds part of the source's value: a subset of a set, hash or zset (same
/// scores and values), a prefix of a list; same type and expire.
/// `ttl_dropped`: the tool wrote the key without a TTL because the expires dict was damaged
/// (`--salvage`), so a missing TTL is expected.
pub(super) fn is_part_of(got: &KeyState, want: &KeyState, ttl_dropped: bool) -> bool {
    let ttl_ok = got.pexpiretime == want.pexpiretime || (ttl_dropped && got.pexpiretime == -1);
    if got.ty != want.ty || !ttl_ok {
        return false;
    }
    if got.value == want.value {
        return true;
    }
    let pairs = |v: &[Vec<u8>]| -> BTreeSet<(Vec<u8>, Vec<u8>)> {
        v.chunks(2)
            .map(|c| (c[0].clone(), c.get(1).cloned().unwrap_or_default()))
            .collect()
    };
    match got.ty.as_str() {
        "list" => want.value.starts_with(&got.value),
        "set" => {
            let w: BTreeSet<&Vec<u8>> = want.value.iter().collect();
            got.value.iter().all(|m| w.contains(m))
        }
        "hash" | "zset" => pairs(&got.value).is_subset(&pairs(&want.value)),
        _ => false,
    }
}
