//! The entry-by-entry check of one stream listpack node, as Redis keeps it in memory and as
//! an RDB carries it.
//!
//! A node is a listpack: the master entry (live count, deleted count, master field count,
//! the master fields, 0), then per entry its flags, ID deltas from the node's master ID,
//! its fields (or only values, with the master's fields) and its element count.

use super::listpack::{Listpack, ListpackIter};
use super::{DecodeError, Element};

/// Entry flag: the entry is deleted.
const FLAG_DELETED: i64 = 1;
/// Entry flag: the entry has the master entry's fields.
const FLAG_SAMEFIELDS: i64 = 2;

/// A live entry of a stream listpack node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeEntry {
    /// Milliseconds part of the ID, as a delta from the node's master ID.
    pub ms_diff: i64,
    /// Sequence part of the ID, as a delta from the node's master ID.
    pub seq_diff: i64,
    /// Field/value pairs in order.
    pub fields: Vec<(Vec<u8>, Vec<u8>)>,
}

/// Checks one stream listpack node (`listpack` must be exactly the listpack) entry by
/// entry: the listpack itself, the master entry, every entry's flags, ID deltas, fields and
/// trailing element count, and the live and deleted counts. Returns the number of live
/// entries. A node that passes cannot make Redis read past an entry (XREVRANGE walks
/// entries backwards by their element counts).
pub fn check_stream_node(listpack: &[u8]) -> Result<u64, DecodeError> {
    let live = node_entries(listpack)?.len();
    u64::try_from(live).map_err(|_| DecodeError::TooLarge {
        what: "stream node",
        size: u64::MAX,
    })
}

/// The live entries of a stream listpack node, after the checks of [`check_stream_node`].
pub fn node_entries(listpack: &[u8]) -> Result<Vec<NodeEntry>, DecodeError> {
    let lp = Listpack::parse_exact(listpack)?;
    if lp.is_empty() {
        return Err(bad("empty listpack inside a stream"));
    }
    let total = lp.len();
    let mut rest = lp.iter();
    let count = next_int(&mut rest, "stream node without its entry count")?;
    let deleted = next_int(&mut rest, "stream node without its deleted count")?;
    let nfields = next_int(&mut rest, "stream node without its master field count")?;
    let nfields = usize::try_from(nfields).map_err(|_| bad("negative master field count"))?;
    if nfields > total {
        return Err(bad("stream master field count exceeds the node"));
    }
    let master_fields: Vec<Element<'_>> = rest.by_ref().take(nfields).collect();
    if master_fields.len() != nfields {
        return Err(bad("stream master entry is cut short"));
    }
    if next_int(&mut rest, "") != Ok(0) {
        return Err(bad("stream master entry does not end with 0"));
    }
    let mut out = Vec::new();
    let (mut live, mut dead) = (0i64, 0i64);
    while let Some(flags) = rest.next() {
        let flags = flags.as_int().ok_or(bad("stream entry flags"))?;
        let ms_diff = next_int(&mut rest, "stream entry ID")?;
        let seq_diff = next_int(&mut rest, "stream entry ID")?;
        let mut fields = Vec::new();
        let mut elements = 3i64;
        if flags & FLAG_SAMEFIELDS != 0 {
            for f in &master_fields {
                let v = rest.next().ok_or(bad("stream entry is cut short"))?;
                fields.push((f.to_vec(), v.to_vec()));
            }
            elements += nfields as i64;
        } else {
            let n = next_int(&mut rest, "stream entry field count")?;
            let n = usize::try_from(n).map_err(|_| bad("negative stream field count"))?;
            if n > total {
                return Err(bad("stream entry field count exceeds the node"));
            }
            for _ in 0..n {
                let f = rest.next().ok_or(bad("stream entry is cut short"))?;
                let v = rest.next().ok_or(bad("stream entry is cut short"))?;
                fields.push((f.to_vec(), v.to_vec()));
            }
            elements += 1 + 2 * n as i64;
        }
        let lp_count = next_int(&mut rest, "stream entry without its element count")?;
        if lp_count != elements {
            return Err(bad("stream entry element count is wrong"));
        }
        if flags & FLAG_DELETED != 0 {
            dead += 1;
        } else {
            live += 1;
            out.push(NodeEntry {
                ms_diff,
                seq_diff,
                fields,
            });
        }
    }
    if live != count || dead != deleted {
        return Err(bad(
            "stream node's entry counts differ from its master entry",
        ));
    }
    Ok(out)
}

/// The next element as an integer; `what` names what is missing or not an integer.
fn next_int(rest: &mut ListpackIter<'_>, what: &'static str) -> Result<i64, DecodeError> {
    rest.next()
        .as_ref()
        .and_then(Element::as_int)
        .ok_or(bad(what))
}

fn bad(what: &'static str) -> DecodeError {
    DecodeError::BadStreamNode(what)
}

#[cfg(test)]
mod tests {
    use super::super::listpack::ListpackBuilder;
    use super::*;
    use Element::{Bytes, Int};

    fn build(items: &[Element<'_>]) -> Vec<u8> {
        let mut b = ListpackBuilder::new();
        b.extend(items.iter().copied()).unwrap();
        b.finish()
    }

    /// A node with master fields (a, b), one live entry with the master's fields and one
    /// deleted entry with its own field; `lp_count` is the first entry's element count.
    fn node(lp_count: i64) -> Vec<u8> {
        build(&[
            Int(1), // live
            Int(1), // deleted
            Int(2), // master fields
            Bytes(b"a"),
            Bytes(b"b"),
            Int(0), // end of the master entry
            // flags SAMEFIELDS, ms diff, seq diff, two values, element count 3 + 2
            Int(2),
            Int(0),
            Int(0),
            Bytes(b"1"),
            Bytes(b"2"),
            Int(lp_count),
            // flags DELETED, ms diff, seq diff, one field, field and value, count 3 + 3
            Int(1),
            Int(5),
            Int(0),
            Int(1),
            Bytes(b"c"),
            Bytes(b"3"),
            Int(6),
        ])
    }

    #[test]
    fn a_sound_node_passes_and_counts_live_entries() {
        assert_eq!(check_stream_node(&node(5)), Ok(1));
        assert_eq!(
            node_entries(&node(5)).unwrap(),
            vec![NodeEntry {
                ms_diff: 0,
                seq_diff: 0,
                fields: vec![
                    (b"a".to_vec(), b"1".to_vec()),
                    (b"b".to_vec(), b"2".to_vec())
                ],
            }]
        );
    }

    #[test]
    fn a_damaged_element_count_is_refused() {
        assert!(check_stream_node(&node(4)).is_err());
        assert!(check_stream_node(&node(6)).is_err());
    }

    #[test]
    fn a_node_cut_short_is_refused() {
        let mut lp = node(5);
        let items_end = lp.len() - 1;
        lp.truncate(items_end - 2);
        assert!(check_stream_node(&lp).is_err());
        assert!(check_stream_node(&[]).is_err());
    }

    #[test]
    fn bytes_after_the_node_are_refused() {
        let mut lp = node(5);
        lp.push(0);
        assert!(matches!(
            check_stream_node(&lp),
            Err(DecodeError::TrailingBytes { .. })
        ));
    }

    #[test]
    fn counts_must_be_canonical_integers() {
        // "+0" parses as a Rust integer (the node would pass) but not with string2ll.
        let mut items = vec![Bytes(b"+0")];
        items.extend([Int(0), Int(0), Int(0)]);
        assert!(check_stream_node(&build(&items)).is_err());
    }
}
