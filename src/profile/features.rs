//! The named structural features of a build: which shape of each structure family the
//! walker must read. This module is the one place that names them: `layout derive`
//! builds a typed [`Features`] from DWARF and writes [`Features::to_map`]; the resolver
//! reads the profile back with [`Features::from_map`]. Variation in the walker is chosen
//! by these features, never by a version number or a vendor.

use std::collections::BTreeMap;

/// Declares a feature enum with the JSON name of each choice, once.
macro_rules! feature {
    (
        $(#[$meta:meta])*
        $name:ident, $key:literal {
            $( $(#[$vmeta:meta])* $variant:ident = $text:literal ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vmeta])* $variant ),+
        }

        impl $name {
            /// The key of this feature in a profile's `features` map.
            pub const KEY: &'static str = $key;
            /// Every choice with its name in the profile.
            pub const CHOICES: &'static [(&'static str, $name)] = &[$( ($text, $name::$variant) ),+];

            /// The choice's name in the profile.
            pub fn name(self) -> &'static str {
                match self {
                    $( $name::$variant => $text ),+
                }
            }
        }
    };
}

feature! {
    /// What each database holds its keys in.
    KeyspaceFlavor, "keyspace" {
        /// One table per db for keys and one for expires (Redis 2.8 to 7.2).
        Dict = "dict",
        /// A `kvstore`: an array of tables, one per cluster slot or a single one (7.4+).
        Kvstore = "kvstore",
    }
}

feature! {
    /// How `server.db` holds the databases.
    DbArrayFlavor, "db_array" {
        /// A contiguous array of `dbnum` db structs, `db[i].id == i`.
        Structs = "structs",
        /// An array of `dbnum` pointers to db structs, NULL for a db never used
        /// (Valkey 9).
        Pointers = "pointers",
    }
}

feature! {
    /// The hash table family of the keyspace and of hashtable-encoded collections.
    TableFlavor, "tables" {
        /// Chained `dict` tables.
        Dict = "dict",
        /// Open-addressing `hashtable`s of 7-slot buckets (Valkey 8.1+).
        Hashtable = "hashtable",
    }
}

feature! {
    /// Shape of `dict` (when the build has dicts).
    DictFlavor, "dict" {
        /// `ht_table[2]`, `ht_used[2]`, `ht_size_exp[2]` (Redis 7.0+).
        HtTable = "ht_table",
        /// `dictht ht[2]` with `table`, `size`, `sizemask`, `used` (Redis 2.8 to 6.2).
        Dictht = "dictht",
    }
}

feature! {
    /// How dict bucket and `next` pointers are tagged, and the entry shapes.
    EntryFlavor, "dict_entry" {
        /// Plain `dictEntry {key, v, next}` chains, no tag bits (up to 7.0).
        Plain = "plain",
        /// An odd pointer is a bare key ending the chain, tag `010` a
        /// `dictEntryNoValue {key, next}`, tag `000` a full entry (7.2, 7.4, Valkey 8);
        /// where the build has `dictEntryEmbedded`, tag `100` an entry embedding its key
        /// sds (Valkey 8.0's keyspace).
        Tagged = "tagged",
        /// As `tagged`, but tag `010` is a bare even key (an object pointer) and tag `100`
        /// a `dictEntryNoValue` (found where `dictType` has `force_full_rehash`).
        TaggedEvenKeys = "tagged_even_keys",
        /// `{next, key, v}` entries with `next` first; an untagged entry has a value only
        /// when its dict's type says `no_value == 0`; `010` a bare even key, odd a bare
        /// odd key.
        NextFirst = "next_first",
    }
}

feature! {
    /// sds header family.
    SdsFlavor, "sds" {
        /// Typed headers sdshdr5/8/16/32/64 selected by the flags byte (3.2+).
        Typed = "typed",
        /// One `sdshdr {len, free}` header (2.8, 3.0).
        LenFree = "len_free",
    }
}

feature! {
    /// What a quicklist node holds; absent from the profile when lists have no quicklist.
    QuicklistFlavor, "quicklist" {
        /// Listpack nodes, PLAIN nodes, 8-byte `quicklistLZF` header (7.0+).
        Listpack = "listpack",
        /// Ziplist nodes, 4-byte `quicklistLZF` header (3.2 to 6.2).
        Ziplist = "ziplist",
    }
}

feature! {
    /// What collections hold as their elements.
    ElementFlavor, "robj_keys" {
        /// Bare sds strings (4.0+).
        Sds = "sds",
        /// String objects (`robj *`), any string encoding (up to 3.2).
        Robj = "robj",
    }
}

feature! {
    /// Where a key's name lives.
    KeyObjectFlavor, "key_object" {
        /// The table entry holds the key sds beside the value object.
        Separate = "separate",
        /// The table entry is the value object, which embeds the key after its header
        /// (Valkey 8.1 `hasembkey`, Redis 8.2 `kvobj`).
        Embedded = "embedded",
    }
}

feature! {
    /// Where a key's expire time lives.
    ExpireFlavor, "expire" {
        /// In the expires table: the same key pointer, the value word is the time in ms.
        ExpiresDict = "expires_dict",
        /// Inside the object, an int64 right after its header when a flag bit says so
        /// (Valkey 8.1 `hasexpire`, Redis 8.2 `expirable`); −1 means none.
        InObject = "in_object",
        /// In the 8 bytes before the object, when bit 0 of its `metabits` is set (Redis 8.6);
        /// −1 means none.
        BeforeObject = "before_object",
    }
}

feature! {
    /// Where a key's value lives.
    ValueFlavor, "value" {
        /// `robj.ptr` (an embstr's pointer leads into the object's own allocation).
        Pointer = "pointer",
        /// `robj.ptr`, unless the object's `hasembval` flag says the value (an embstr)
        /// is embedded: then the object has no `ptr` and its data starts 8 bytes in
        /// (Valkey 9.1).
        EmbeddedOrPointer = "embedded_or_pointer",
    }
}

feature! {
    /// How hashtable-encoded hashes keep their fields.
    HashFieldFlavor, "hash_fields" {
        /// Field and value are separate sds strings (or robjs, by `robj_keys`).
        Sds = "sds",
        /// Fields are `mstr` strings with optional `ExpireMeta` metadata (Redis 7.4 to 8.4).
        Mstr = "mstr",
        /// A table element is the field sds; aux bits in its flags byte say which of an
        /// expire block and a value pointer sit before its header; without a pointer the
        /// value is an sdshdr8 string right after the field (Valkey 8.1, Redis 8.6).
        Entry = "entry",
    }
}

feature! {
    /// Where a skiplist node keeps its element.
    ZsetElementFlavor, "zset_element" {
        /// `zskiplistNode.ele` (or `.obj`) points at it.
        Pointer = "pointer",
        /// It is embedded after the node's levels; `level[0].span` holds its offset
        /// (16 bits) and the node's level count (8 bits) (Redis 8.6).
        SpanOffset = "span_offset",
        /// It is embedded right after the node's levels, behind a 1-byte header size;
        /// `level[0].span` holds the node's level count, and the `zskiplist` itself is
        /// the header node (Valkey 9.1).
        AfterLevels = "after_levels",
    }
}

/// The walker features a profile selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Features {
    /// What each db holds.
    pub keyspace: KeyspaceFlavor,
    /// How `server.db` holds the dbs.
    pub db_array: DbArrayFlavor,
    /// Hash table family.
    pub tables: TableFlavor,
    /// dict family.
    pub dict: DictFlavor,
    /// dict entry tagging.
    pub dict_entry: EntryFlavor,
    /// sds headers.
    pub sds: SdsFlavor,
    /// quicklist nodes (`None`: lists are linked lists or ziplists, 2.8 and 3.0).
    pub quicklist: Option<QuicklistFlavor>,
    /// Collection elements.
    pub elements: ElementFlavor,
    /// Where the key name lives.
    pub key_object: KeyObjectFlavor,
    /// Where the expire lives.
    pub expire: ExpireFlavor,
    /// Where the value lives.
    pub value: ValueFlavor,
    /// Hash fields of hashtable-encoded hashes.
    pub hash_fields: HashFieldFlavor,
    /// Skiplist node elements.
    pub zset_element: ZsetElementFlavor,
}

/// Parse one feature, recording what is wrong in `missing`.
fn read<T: Copy>(
    map: &BTreeMap<String, String>,
    key: &str,
    choices: &[(&str, T)],
    missing: &mut Vec<String>,
) -> Option<T> {
    let value = map.get(key);
    let found = value.and_then(|v| choices.iter().find(|(n, _)| n == v).map(|(_, t)| *t));
    if found.is_none() {
        let supported: Vec<&str> = choices.iter().map(|(n, _)| *n).collect();
        missing.push(match value {
            Some(v) => format!(
                "feature {key}={v} (this redis-rescue walks: {})",
                supported.join(", ")
            ),
            None => format!("feature {key}"),
        });
    }
    found
}

macro_rules! read_all {
    ($map:expr, $missing:expr; $($field:ident : $ty:ty),+ $(,)?) => {
        ($( read($map, <$ty>::KEY, <$ty>::CHOICES, $missing) ),+)
    };
}

impl Features {
    /// The features named in a profile's `features` map; every missing or unknown one is
    /// listed in the error.
    pub fn from_map(map: &BTreeMap<String, String>) -> Result<Features, Vec<String>> {
        let (features, missing) = Features::read_map(map);
        if missing.is_empty() {
            Ok(features)
        } else {
            Err(missing)
        }
    }

    /// The features of `map`, with the oldest choice standing in for each missing or
    /// unknown one (listed in the second value), so that a resolver can go on and name
    /// everything else that is missing too.
    pub fn read_map(map: &BTreeMap<String, String>) -> (Features, Vec<String>) {
        let mut missing = Vec::new();
        let quicklist = if map.contains_key(QuicklistFlavor::KEY) {
            read(
                map,
                QuicklistFlavor::KEY,
                QuicklistFlavor::CHOICES,
                &mut missing,
            )
        } else {
            None
        };
        let (
            keyspace,
            db_array,
            tables,
            dict,
            dict_entry,
            sds,
            elements,
            key_object,
            expire,
            value,
            hash_fields,
            zset_element,
        ) = read_all!(map, &mut missing;
            keyspace: KeyspaceFlavor,
            db_array: DbArrayFlavor,
            tables: TableFlavor,
            dict: DictFlavor,
            dict_entry: EntryFlavor,
            sds: SdsFlavor,
            elements: ElementFlavor,
            key_object: KeyObjectFlavor,
            expire: ExpireFlavor,
            value: ValueFlavor,
            hash_fields: HashFieldFlavor,
            zset_element: ZsetElementFlavor,
        );
        let known = [
            KeyspaceFlavor::KEY,
            DbArrayFlavor::KEY,
            TableFlavor::KEY,
            DictFlavor::KEY,
            EntryFlavor::KEY,
            SdsFlavor::KEY,
            QuicklistFlavor::KEY,
            ElementFlavor::KEY,
            KeyObjectFlavor::KEY,
            ExpireFlavor::KEY,
            ValueFlavor::KEY,
            HashFieldFlavor::KEY,
            ZsetElementFlavor::KEY,
        ];
        for k in map.keys() {
            if !known.contains(&k.as_str()) {
                missing.push(format!("unknown feature {k}"));
            }
        }
        let features = Features {
            keyspace: keyspace.unwrap_or(KeyspaceFlavor::Dict),
            db_array: db_array.unwrap_or(DbArrayFlavor::Structs),
            tables: tables.unwrap_or(TableFlavor::Dict),
            dict: dict.unwrap_or(DictFlavor::HtTable),
            dict_entry: dict_entry.unwrap_or(EntryFlavor::Plain),
            sds: sds.unwrap_or(SdsFlavor::Typed),
            quicklist,
            elements: elements.unwrap_or(ElementFlavor::Sds),
            key_object: key_object.unwrap_or(KeyObjectFlavor::Separate),
            expire: expire.unwrap_or(ExpireFlavor::ExpiresDict),
            value: value.unwrap_or(ValueFlavor::Pointer),
            hash_fields: hash_fields.unwrap_or(HashFieldFlavor::Sds),
            zset_element: zset_element.unwrap_or(ZsetElementFlavor::Pointer),
        };
        (features, missing)
    }

    /// The `features` map of a profile (what `layout derive` writes).
    pub fn to_map(&self) -> BTreeMap<String, String> {
        let mut m = BTreeMap::new();
        let mut put = |k: &str, v: &str| {
            m.insert(k.to_owned(), v.to_owned());
        };
        put(KeyspaceFlavor::KEY, self.keyspace.name());
        put(DbArrayFlavor::KEY, self.db_array.name());
        put(TableFlavor::KEY, self.tables.name());
        put(DictFlavor::KEY, self.dict.name());
        put(EntryFlavor::KEY, self.dict_entry.name());
        put(SdsFlavor::KEY, self.sds.name());
        if let Some(q) = self.quicklist {
            put(QuicklistFlavor::KEY, q.name());
        }
        put(ElementFlavor::KEY, self.elements.name());
        put(KeyObjectFlavor::KEY, self.key_object.name());
        put(ExpireFlavor::KEY, self.expire.name());
        put(ValueFlavor::KEY, self.value.name());
        put(HashFieldFlavor::KEY, self.hash_fields.name());
        put(ZsetElementFlavor::KEY, self.zset_element.name());
        m
    }

    /// Keyspace table entries are objects with the key embedded.
    pub fn embedded_keys(&self) -> bool {
        self.key_object == KeyObjectFlavor::Embedded
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Features {
        Features {
            keyspace: KeyspaceFlavor::Kvstore,
            db_array: DbArrayFlavor::Structs,
            tables: TableFlavor::Dict,
            dict: DictFlavor::HtTable,
            dict_entry: EntryFlavor::NextFirst,
            sds: SdsFlavor::Typed,
            quicklist: Some(QuicklistFlavor::Listpack),
            elements: ElementFlavor::Sds,
            key_object: KeyObjectFlavor::Embedded,
            expire: ExpireFlavor::BeforeObject,
            value: ValueFlavor::Pointer,
            hash_fields: HashFieldFlavor::Entry,
            zset_element: ZsetElementFlavor::SpanOffset,
        }
    }

    #[test]
    fn features_round_trip_through_the_profile_map() {
        let f = sample();
        assert_eq!(Features::from_map(&f.to_map()), Ok(f));
        let old = Features {
            quicklist: None,
            ..f
        };
        assert!(!old.to_map().contains_key("quicklist"));
        assert_eq!(Features::from_map(&old.to_map()), Ok(old));
    }

    #[test]
    fn unknown_and_missing_features_are_all_listed() {
        let mut m = sample().to_map();
        m.insert("dict_entry".into(), "swiss".into());
        m.remove("expire");
        m.insert("vendor".into(), "valkey".into());
        let err = Features::from_map(&m).unwrap_err();
        assert!(err
            .iter()
            .any(|e| e.starts_with("feature dict_entry=swiss")));
        assert!(err.iter().any(|e| e == "feature expire"));
        assert!(err.iter().any(|e| e == "unknown feature vendor"));
    }
}
