//! Named structural features, read from the shapes of the chosen structs (which structs
//! and members exist, in which order), never from the version.

use super::{needs_text, Picked, WANTED};
use crate::profile::features::{
    DbArrayFlavor, DictFlavor, ElementFlavor, EntryFlavor, ExpireFlavor, Features, HashFieldFlavor,
    KeyObjectFlavor, KeyspaceFlavor, QuicklistFlavor, SdsFlavor, TableFlavor, ValueFlavor,
    ZsetElementFlavor,
};
use crate::profile::schema::FieldSpec;

/// The typed features read from the shapes of the chosen structs, and the structs the
/// walker needs for that family that are missing. Every choice is made from structure
/// (which structs and members exist, in which order), never from the version.
pub(super) fn features(p: &Picked) -> (Option<Features>, Vec<String>) {
    let index = &p.index;
    let mut missing: Vec<&'static str> = Vec::new();
    let need = |name: &'static str, missing: &mut Vec<&'static str>| {
        if !p.has(name) {
            missing.push(name);
        }
    };
    for s in [
        "redisServer",
        "redisDb",
        "robj",
        "zset",
        "zskiplist",
        "zskiplistNode",
        "zskiplistLevel",
    ] {
        need(s, &mut missing);
    }
    let offset_of = |st: &'static str, member: &str| -> Option<u64> {
        let r = p.chosen.get(st)?;
        let spec = index.struct_spec(*r, st, &mut Vec::new())?;
        match spec.fields.get(member)? {
            FieldSpec::Bytes { offset, .. } => Some(*offset),
            FieldSpec::Bits { bit_offset, .. } => Some(bit_offset / 8),
        }
    };

    // keyspace and tables
    let db = p.members("redisDb");
    let mut keyspace = None;
    let mut tables = TableFlavor::Dict;
    if db.contains("dict") {
        keyspace = Some(KeyspaceFlavor::Dict);
    } else if db.contains("keys") {
        let kv_type = p
            .chosen
            .get("redisDb")
            .and_then(|r| index.member_type(*r, "keys"))
            .and_then(|t| index.pointee(t))
            .and_then(|t| index.struct_name(t).map(str::to_owned));
        let kv = p.members("kvstore");
        if !matches!(kv_type.as_deref(), Some("_kvstore" | "kvstore")) || !p.has("kvstore") {
            need("kvstore", &mut missing);
        } else {
            keyspace = Some(KeyspaceFlavor::Kvstore);
            if kv.contains("hashtables") {
                tables = TableFlavor::Hashtable;
                need("hashtable", &mut missing);
                need("hashtableBucket", &mut missing);
            }
        }
    }

    // dict
    let dict_members = p.members("dict");
    let dict = if dict_members.contains("ht") {
        need("dictht", &mut missing);
        need("dictEntry", &mut missing);
        Some(DictFlavor::Dictht)
    } else if dict_members.contains("ht_table") {
        need("dictEntry", &mut missing);
        Some(DictFlavor::HtTable)
    } else {
        if tables == TableFlavor::Dict {
            need("dict", &mut missing);
        }
        // Builds without dicts in the keyspace still read their functions dicts with
        // these; an absent dict is reported by the resolver if the walker needs it.
        None
    };
    let dict_type = p.members("dictType");
    let dict_entry = if !p.has("dictEntryNoValue") {
        EntryFlavor::Plain
    } else if offset_of("dictEntry", "next") == Some(0) {
        // `next` first: an entry without a value is the same shape minus `v`, told
        // apart by the dict's type.
        need("dictType", &mut missing);
        EntryFlavor::NextFirst
    } else if dict_type.contains("force_full_rehash") {
        // The dictType that gained `force_full_rehash` came with the dict that tags
        // value-less entries `100` and bare even keys `010`.
        EntryFlavor::TaggedEvenKeys
    } else {
        EntryFlavor::Tagged
    };

    // sds
    let sds = if p.members("sdshdr").contains("free") {
        Some(SdsFlavor::LenFree)
    } else if p.has("sdshdr8") {
        for s in ["sdshdr16", "sdshdr32", "sdshdr64"] {
            need(s, &mut missing);
        }
        Some(SdsFlavor::Typed)
    } else {
        missing.push("sdshdr or sdshdr8");
        None
    };

    // quicklist
    let node = p.members("quicklistNode");
    let quicklist = if p.has("quicklist") {
        need("quicklistNode", &mut missing);
        need("quicklistLZF", &mut missing);
        if node.contains("zl") {
            Some(QuicklistFlavor::Ziplist)
        } else {
            Some(QuicklistFlavor::Listpack)
        }
    } else {
        need("list", &mut missing);
        need("listNode", &mut missing);
        None
    };

    // collection elements
    let zn = p.members("zskiplistNode");
    let (elements, zset_element) = if zn.contains("obj") {
        (ElementFlavor::Robj, ZsetElementFlavor::Pointer)
    } else if zn.contains("ele") {
        (ElementFlavor::Sds, ZsetElementFlavor::Pointer)
    } else if offset_of("zskiplist", "length").is_some() {
        // No element member, a list with a header pointer and a length: the element is
        // embedded after the node's levels, at the offset kept in level[0].span.
        (ElementFlavor::Sds, ZsetElementFlavor::SpanOffset)
    } else {
        // No element member and a zskiplist that is only its embedded header node.
        (ElementFlavor::Sds, ZsetElementFlavor::AfterLevels)
    };

    // objects: where the key, the expire and the value live
    let robj = p.members("robj");
    let embeds_key = robj.contains("hasembkey") || robj.contains("iskvobj");
    let key_object = if embeds_key {
        KeyObjectFlavor::Embedded
    } else {
        KeyObjectFlavor::Separate
    };
    let expire = if robj.contains("metabits") {
        ExpireFlavor::BeforeObject
    } else if robj.contains("hasexpire") || robj.contains("expirable") {
        ExpireFlavor::InObject
    } else {
        ExpireFlavor::ExpiresDict
    };
    // Hash elements that are field sds strings come with the opaque `struct _entry`
    // (Redis 8.6's `Entry`); Valkey's hashtables hold such elements too.
    let hash_fields = if tables == TableFlavor::Hashtable || index.has_struct_tag("_entry") {
        HashFieldFlavor::Entry
    } else if p.has("mstrhdr8") {
        HashFieldFlavor::Mstr
    } else {
        HashFieldFlavor::Sds
    };

    let wanted_by_name = |n: &str| WANTED.iter().find(|w| w.out == n);
    let missing: Vec<String> = missing
        .into_iter()
        .map(|n| match wanted_by_name(n) {
            Some(w) => needs_text(w),
            None => format!("struct {n}"),
        })
        .collect();
    // `server.db` is `redisDb *` (an array of structs) or `serverDb **` (of pointers).
    let db_is_pointer_array = p
        .chosen
        .get("redisServer")
        .and_then(|r| index.member_type(*r, "db"))
        .and_then(|t| index.pointee(t))
        .and_then(|t| index.pointee(t))
        .is_some();
    let db_array = if db_is_pointer_array {
        DbArrayFlavor::Pointers
    } else {
        DbArrayFlavor::Structs
    };
    let value = if robj.contains("hasembval") {
        ValueFlavor::EmbeddedOrPointer
    } else {
        ValueFlavor::Pointer
    };
    let features = match (keyspace, sds) {
        (Some(keyspace), Some(sds)) => Some(Features {
            keyspace,
            db_array,
            tables,
            // A build with hashtables only still names a dict shape for its few dicts.
            dict: dict.unwrap_or(DictFlavor::HtTable),
            dict_entry,
            sds,
            quicklist,
            elements,
            key_object,
            expire,
            value,
            hash_fields,
            zset_element,
        }),
        _ => None,
    };
    (features, missing)
}
