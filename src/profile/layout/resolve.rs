//! Resolution: a profile file's structs, fields, bit-fields and constants looked up by
//! name once, every missing one collected so that one error lists them all.

// It builds every struct its parent declares: all of them are in scope.
use super::*;
use crate::profile::schema::{FieldSpec, ProfileFile, StructSpec, SCHEMA_VERSION};
use crate::profile::ProfileError;

/// Collects every missing item so one error lists them all.
struct Resolver<'p> {
    file: &'p ProfileFile,
    missing: Vec<String>,
}

impl<'p> Resolver<'p> {
    fn strukt(&mut self, name: &str) -> Option<&'p StructSpec> {
        let s = self.file.structs.get(name);
        if s.is_none() {
            self.missing.push(format!("struct {name}"));
        }
        s
    }

    fn size(&mut self, name: &str) -> u64 {
        self.strukt(name).map(|s| s.size).unwrap_or_default()
    }

    fn field(&mut self, st: &str, name: &str) -> Field {
        match self.strukt(st).map(|s| s.fields.get(name)) {
            Some(Some(FieldSpec::Bytes { offset, size })) if *size <= 16 => Field {
                offset: *offset,
                size: *size as u8,
            },
            Some(Some(_)) => {
                self.missing.push(format!(
                    "{st}.{name} (must be a plain field of at most 16 bytes)"
                ));
                Field::default()
            }
            Some(None) => {
                self.missing.push(format!("{st}.{name}"));
                Field::default()
            }
            None => Field::default(),
        }
    }

    /// A plain field that only some builds have (a bit-field of that name counts as absent:
    /// old builds keep some counters as bit-fields the walker does not need).
    fn optional_field(&mut self, st: &str, name: &str) -> Option<Field> {
        let plain = matches!(
            self.file.structs.get(st).and_then(|s| s.fields.get(name)),
            Some(FieldSpec::Bytes { .. })
        );
        plain.then(|| self.field(st, name))
    }

    /// The offset of a member of any size (a struct such as `streamID`).
    fn offset(&mut self, st: &str, name: &str) -> u64 {
        self.array(st, name).offset
    }

    /// The first of `names` that the profile has (struct names differ between builds).
    fn alias(&mut self, names: &[&str]) -> String {
        match names.iter().find(|n| self.file.structs.contains_key(**n)) {
            Some(n) => (*n).to_owned(),
            None => {
                self.missing.push(format!("struct {}", names.join(" or ")));
                names.first().map_or(String::new(), |n| (*n).to_owned())
            }
        }
    }

    /// A member of any size (an array or flexible array): only its offset is used.
    fn array(&mut self, st: &str, name: &str) -> Field {
        match self.strukt(st).map(|s| s.fields.get(name)) {
            Some(Some(FieldSpec::Bytes { offset, .. })) => Field {
                offset: *offset,
                size: 0,
            },
            Some(_) => {
                self.missing.push(format!("{st}.{name}"));
                Field::default()
            }
            None => Field::default(),
        }
    }

    fn bits(&mut self, st: &str, name: &str) -> Bits {
        match self.strukt(st).map(|s| s.fields.get(name)) {
            Some(Some(FieldSpec::Bits {
                bit_offset,
                bit_size,
            })) if (1..=57).contains(bit_size) => Bits {
                bit_offset: *bit_offset,
                width: *bit_size,
            },
            Some(_) => {
                self.missing.push(format!("{st}.{name} (bit-field)"));
                Bits::default()
            }
            None => Bits::default(),
        }
    }

    /// The first of `names` that `st` has as a bit-field (names differ between builds).
    fn bits_any(&mut self, st: &str, names: &[&str]) -> Bits {
        let found = names.iter().find(|n| {
            matches!(
                self.file.structs.get(st).and_then(|s| s.fields.get(**n)),
                Some(FieldSpec::Bits { .. })
            )
        });
        match found {
            Some(n) => self.bits(st, n),
            None => {
                self.missing
                    .push(format!("{st}.{} (bit-field)", names.join(" or ")));
                Bits::default()
            }
        }
    }

    fn constant(&mut self, group: &str, name: &str) -> u64 {
        match self.file.constants.get(group).and_then(|g| g.get(name)) {
            Some(v) if *v >= 0 => *v as u64,
            _ => {
                self.missing.push(format!("constant {group}.{name}"));
                0
            }
        }
    }

    /// A constant that older builds do not have: absent means "never matches" (u64::MAX).
    fn optional_constant(&mut self, group: &str, name: &str) -> u64 {
        match self.file.constants.get(group).and_then(|g| g.get(name)) {
            Some(v) if *v >= 0 => *v as u64,
            Some(_) => {
                self.missing
                    .push(format!("constant {group}.{name} (negative)"));
                u64::MAX
            }
            None => u64::MAX,
        }
    }
}

impl Layout {
    /// Check `file` and resolve every field the walker uses.
    pub fn resolve(file: &ProfileFile) -> Result<Layout, ProfileError> {
        if file.schema_version != SCHEMA_VERSION {
            return Err(ProfileError::Schema {
                name: file.name.clone(),
                found: file.schema_version,
            });
        }
        if file.identity.pointer_size != 8 {
            return Err(ProfileError::Incomplete {
                name: file.name.clone(),
                missing: vec!["64-bit layout (pointer_size 8)".into()],
            });
        }
        let mut r = Resolver {
            file,
            missing: Vec::new(),
        };
        let (features, missing) = Features::read_map(&file.features);
        r.missing.extend(missing);

        // A layout-only profile (no symbols) needs a binary to locate `server`.
        let server_symbol = file.symbols.get("server").copied();
        let ql_present = features.quicklist.is_some();
        let hashtables = features.tables == TableFlavor::Hashtable;
        let keys_field = match features.keyspace {
            KeyspaceFlavor::Dict => "dict",
            KeyspaceFlavor::Kvstore => "keys",
        };
        // Builds with tagged or next-first entries have a `dictEntryNoValue` too.
        let tagged = features.dict_entry != EntryFlavor::Plain;
        // 7.0 renamed the node's data pointer from `zl` to `entry`.
        let ql_data = match features.quicklist {
            Some(QuicklistFlavor::Ziplist) => "zl",
            _ => "entry",
        };
        let lzf_compressed = if ql_present {
            r.array("quicklistLZF", "compressed").offset
        } else {
            0
        };
        let element_field = match features.elements {
            ElementFlavor::Sds => "ele",
            ElementFlavor::Robj => "obj",
        };
        let zsl_level = r.field("zskiplistNode", "level");
        let level_forward = r.field("zskiplistLevel", "forward");
        let level_size = r.size("zskiplistLevel");
        let level_span = r.field("zskiplistLevel", "span");
        let layout = Layout {
            name: file.name.clone(),
            identity: file.identity.clone(),
            server_symbol,
            features,
            server: ServerLayout {
                size: r.size("redisServer"),
                db: r.field("redisServer", "db"),
                dbnum: r.field("redisServer", "dbnum"),
                maxmemory_policy: r.optional_field("redisServer", "maxmemory_policy"),
                lruclock: r.optional_field("redisServer", "lruclock"),
                unixtime: r.optional_field("redisServer", "unixtime"),
                lfu_decay_time: r.optional_field("redisServer", "lfu_decay_time"),
                lua_scripts: r.optional_field("redisServer", "lua_scripts"),
            },
            db: DbLayout {
                size: r.size("redisDb"),
                dict: r.field("redisDb", keys_field),
                expires: r.field("redisDb", "expires"),
                id: r.field("redisDb", "id"),
            },
            dict: match features.dict {
                DictFlavor::HtTable => DictLayout {
                    size: r.size("dict"),
                    ht_table: r.field("dict", "ht_table"),
                    ht_used: r.field("dict", "ht_used"),
                    rehashidx: r.field("dict", "rehashidx"),
                    ht_size_exp: r.field("dict", "ht_size_exp"),
                    ..DictLayout::default()
                },
                DictFlavor::Dictht => DictLayout {
                    size: r.size("dict"),
                    ht: r.array("dict", "ht"),
                    dictht_size: r.size("dictht"),
                    table: r.field("dictht", "table"),
                    table_size: r.field("dictht", "size"),
                    used: r.field("dictht", "used"),
                    rehashidx: r.field("dict", "rehashidx"),
                    ..DictLayout::default()
                },
            },
            sds: match features.sds {
                SdsFlavor::Typed => SdsLayout::default(),
                SdsFlavor::LenFree => SdsLayout {
                    header_size: r.size("sdshdr"),
                    len: r.field("sdshdr", "len"),
                    free: r.field("sdshdr", "free"),
                },
            },
            linked_list: match features.quicklist {
                None => LinkedListLayout {
                    size: r.size("list"),
                    head: r.field("list", "head"),
                    len: r.field("list", "len"),
                    node_size: r.size("listNode"),
                    next: r.field("listNode", "next"),
                    value: r.field("listNode", "value"),
                },
                _ => LinkedListLayout::default(),
            },
            entry: EntryLayout {
                size: r.size("dictEntry"),
                key: r.field("dictEntry", "key"),
                v: r.field("dictEntry", "v"),
                next: r.field("dictEntry", "next"),
                no_value_size: if tagged {
                    r.size("dictEntryNoValue")
                } else {
                    0
                },
                no_value_key: if tagged {
                    r.field("dictEntryNoValue", "key")
                } else {
                    Field::default()
                },
                no_value_next: if tagged {
                    r.field("dictEntryNoValue", "next")
                } else {
                    Field::default()
                },
                type_no_value: if features.dict_entry == EntryFlavor::NextFirst {
                    r.bits("dictType", "no_value")
                } else {
                    Bits::default()
                },
                // Only `tagged` builds with the struct (Valkey 8.0+) have `100` entries;
                // in 7.2 and 7.4 the tag never occurs.
                embedded: if features.dict_entry == EntryFlavor::Tagged
                    && file.structs.contains_key("dictEntryEmbedded")
                {
                    Some(EmbeddedEntryLayout {
                        v: r.field("dictEntryEmbedded", "v"),
                        next: r.field("dictEntryEmbedded", "next"),
                        key_header_size: r.field("dictEntryEmbedded", "key_header_size"),
                        key_buf: r.offset("dictEntryEmbedded", "key_buf"),
                    })
                } else {
                    None
                },
            },
            robj: RobjLayout {
                size: r.size("robj"),
                type_: r.bits("robj", "type"),
                encoding: r.bits("robj", "encoding"),
                lru: r.bits("robj", "lru"),
                ptr: match r.optional_field("robj", "ptr") {
                    Some(f) => f,
                    None => r.field("robj", "val_ptr"),
                },
                refcount: r.optional_field("robj", "refcount"),
                expire_flag: match features.expire {
                    ExpireFlavor::InObject => r.bits_any("robj", &["hasexpire", "expirable"]),
                    _ => Bits::default(),
                },
                key_flag: match features.key_object {
                    KeyObjectFlavor::Embedded => r.bits_any("robj", &["hasembkey", "iskvobj"]),
                    KeyObjectFlavor::Separate => Bits::default(),
                },
                metabits: match features.expire {
                    ExpireFlavor::BeforeObject => r.bits("robj", "metabits"),
                    _ => Bits::default(),
                },
                value_flag: match features.value {
                    ValueFlavor::EmbeddedOrPointer => r.bits("robj", "hasembval"),
                    ValueFlavor::Pointer => Bits::default(),
                },
            },
            hashtable: if hashtables {
                let bucket = r.alias(&["hashtableBucket", "bucket"]);
                let entries = r.array(&bucket, "entries");
                let entries_size = r
                    .file
                    .structs
                    .get(&bucket)
                    .and_then(|s| s.fields.get("entries"))
                    .map_or(0, |f| match f {
                        FieldSpec::Bytes { size, .. } => *size,
                        FieldSpec::Bits { .. } => 0,
                    });
                HashtableLayout {
                    size: r.size("hashtable"),
                    rehash_idx: r.field("hashtable", "rehash_idx"),
                    tables: r.field("hashtable", "tables"),
                    used: r.field("hashtable", "used"),
                    bucket_exp: r.field("hashtable", "bucket_exp"),
                    bucket_size: r.size(&bucket),
                    chained: r.bits(&bucket, "chained"),
                    presence: r.bits(&bucket, "presence"),
                    entries,
                    slots: entries_size / 8,
                }
            } else {
                HashtableLayout::default()
            },
            stream: if file.structs.contains_key("stream") {
                let stream = StreamLayout {
                    size: r.size("stream"),
                    rax: r.field("stream", "rax"),
                    length: r.field("stream", "length"),
                    last_id: r.offset("stream", "last_id"),
                    first_id: file
                        .structs
                        .get("stream")
                        .and_then(|s| s.fields.get("first_id"))
                        .map(|_| r.offset("stream", "first_id")),
                    max_deleted: file
                        .structs
                        .get("stream")
                        .and_then(|s| s.fields.get("max_deleted_entry_id"))
                        .map(|_| r.offset("stream", "max_deleted_entry_id")),
                    entries_added: r.optional_field("stream", "entries_added"),
                    cgroups: r.field("stream", "cgroups"),
                    rax_size: r.size("rax"),
                    rax_head: r.field("rax", "head"),
                    rax_numele: r.field("rax", "numele"),
                    rax_numnodes: r.field("rax", "numnodes"),
                    node_iskey: r.bits("raxNode", "iskey"),
                    node_isnull: r.bits("raxNode", "isnull"),
                    node_iscompr: r.bits("raxNode", "iscompr"),
                    node_size: r.bits("raxNode", "size"),
                    node_data: r.offset("raxNode", "data"),
                    cg_size: r.size("streamCG"),
                    cg_last_id: r.offset("streamCG", "last_id"),
                    cg_entries_read: r.optional_field("streamCG", "entries_read"),
                    cg_pel: r.field("streamCG", "pel"),
                    cg_consumers: r.field("streamCG", "consumers"),
                    consumer_size: r.size("streamConsumer"),
                    consumer_seen_time: r.field("streamConsumer", "seen_time"),
                    consumer_active_time: r.optional_field("streamConsumer", "active_time"),
                    consumer_pel: r.field("streamConsumer", "pel"),
                    nack_size: r.size("streamNACK"),
                    nack_delivery_time: r.field("streamNACK", "delivery_time"),
                    nack_delivery_count: r.field("streamNACK", "delivery_count"),
                    idmp: if file.structs.contains_key("idmpEntry") {
                        Some(IdmpLayout {
                            duration: r.field("stream", "idmp_duration"),
                            max_entries: r.field("stream", "idmp_max_entries"),
                            producers: r.field("stream", "idmp_producers"),
                            iids_added: r.field("stream", "iids_added"),
                            iids_duplicates: r.field("stream", "iids_duplicates"),
                            producer_size: r.size("idmpProducer"),
                            head: r.field("idmpProducer", "idmp_head"),
                            entry_size: r.size("idmpEntry"),
                            next: r.field("idmpEntry", "next"),
                            id: r.offset("idmpEntry", "id"),
                            iid_len: r.field("idmpEntry", "iid_len"),
                            iid: r.offset("idmpEntry", "iid"),
                        })
                    } else {
                        None
                    },
                };
                Some(stream)
            } else {
                None
            },
            field_ttl: if file.structs.contains_key("listpackEx")
                && file.structs.contains_key("ExpireMeta")
            {
                Some(FieldTtlLayout {
                    lp: r.field("listpackEx", "lp"),
                    meta_size: r.size("ExpireMeta"),
                    lo: r.field("ExpireMeta", "expireTimeLo"),
                    hi: r.field("ExpireMeta", "expireTimeHi"),
                    trash: r.bits("ExpireMeta", "trash"),
                })
            } else {
                None
            },
            hash_entry: match features.hash_fields {
                HashFieldFlavor::Entry => {
                    let bit = |r: &mut Resolver<'_>, name: &str| {
                        let v = r.optional_constant("hash_entry", name);
                        u8::try_from(v).ok().filter(|b| *b < 5)
                    };
                    let value_ptr_bit = bit(&mut r, "value_ptr_bit");
                    if value_ptr_bit.is_none() {
                        r.missing
                            .push("constant hash_entry.value_ptr_bit (0 to 4)".into());
                    }
                    let expire_bit = bit(&mut r, "expire_bit");
                    let expire_size = match expire_bit {
                        Some(_) => r.constant("hash_entry", "expire_size"),
                        None => 0,
                    };
                    let string_ref_bit = bit(&mut r, "string_ref_bit");
                    Some(HashEntryLayout {
                        expire_bit,
                        expire_size,
                        value_ptr_bit: value_ptr_bit.unwrap_or(0),
                        string_ref_bit,
                    })
                }
                _ => None,
            },
            modules: if file.structs.contains_key("moduleValue")
                && file.structs.contains_key("moduleType")
            {
                Some(ModuleLayout {
                    value_type: r.field("moduleValue", "type"),
                    // The id is a member, or (8.6) a member of `entity`.
                    type_id: match r.optional_field("moduleType", "id") {
                        Some(f) => f,
                        None => {
                            let entity = r.offset("moduleType", "entity");
                            let id = r.field("ModuleEntityId", "id");
                            Field {
                                offset: entity + id.offset,
                                size: id.size,
                            }
                        }
                    },
                })
            } else {
                None
            },
            functions: if file.structs.contains_key("functionsLibCtx") {
                Some(FunctionsLayout {
                    ctx_symbol: file.symbols.get("curr_functions_lib_ctx").copied(),
                    libraries: r.field("functionsLibCtx", "libraries"),
                    ctx_size: r.size("functionsLibCtx"),
                    functions: r.optional_field("functionsLibCtx", "functions"),
                    engines_stats: r.optional_field("functionsLibCtx", "engines_stats"),
                    code: r.field("functionLibInfo", "code"),
                })
            } else {
                None
            },
            kvstore: match features.keyspace {
                KeyspaceFlavor::Dict => KvstoreLayout::default(),
                KeyspaceFlavor::Kvstore => {
                    let kv = r.alias(&["kvstore", "_kvstore"]);
                    let (tables, count) = if hashtables {
                        ("hashtables", "num_hashtables")
                    } else {
                        ("dicts", "num_dicts")
                    };
                    KvstoreLayout {
                        size: r.size(&kv),
                        tables: r.field(&kv, tables),
                        count: r.field(&kv, count),
                        // The importing set is a Valkey hashtable: only builds whose
                        // tables are hashtables can have one.
                        importing: hashtables
                            .then(|| r.optional_field(&kv, "importing"))
                            .flatten(),
                        importing_key_count: hashtables
                            .then(|| r.optional_field(&kv, "importing_key_count"))
                            .flatten(),
                    }
                }
            },
            quicklist: if ql_present {
                QuicklistLayout {
                    size: r.size("quicklist"),
                    head: r.field("quicklist", "head"),
                    count: r.field("quicklist", "count"),
                    len: r.field("quicklist", "len"),
                }
            } else {
                QuicklistLayout::default()
            },
            ql_node: if ql_present {
                QuicklistNodeLayout {
                    size: r.size("quicklistNode"),
                    next: r.field("quicklistNode", "next"),
                    entry: r.field("quicklistNode", ql_data),
                    sz: r.field("quicklistNode", "sz"),
                    count: r.bits("quicklistNode", "count"),
                    encoding: r.bits("quicklistNode", "encoding"),
                    container: r.bits("quicklistNode", "container"),
                }
            } else {
                QuicklistNodeLayout::default()
            },
            ql_lzf: QuicklistLzfLayout {
                sz: if ql_present {
                    r.field("quicklistLZF", "sz")
                } else {
                    Field::default()
                },
                compressed: lzf_compressed,
            },
            zset: ZsetLayout {
                size: r.size("zset"),
                dict: r.field("zset", if hashtables { "ht" } else { "dict" }),
                zsl: r.field("zset", "zsl"),
                list_size: r.size("zskiplist"),
                // The list is its own header node when elements follow the levels.
                header: match features.zset_element {
                    ZsetElementFlavor::AfterLevels => None,
                    _ => Some(r.field("zskiplist", "header")),
                },
                // The list's length, or (its own header node) the header's length.
                length: match features.zset_element {
                    ZsetElementFlavor::AfterLevels => {
                        let header = r.offset("zskiplist", "header");
                        let length = r.field("zskiplistNode", "length");
                        Field {
                            offset: header + length.offset,
                            size: length.size,
                        }
                    }
                    _ => r.field("zskiplist", "length"),
                },
                node_size: zsl_level.offset + level_size,
                ele: match features.zset_element {
                    ZsetElementFlavor::Pointer => Some(r.field("zskiplistNode", element_field)),
                    ZsetElementFlavor::SpanOffset | ZsetElementFlavor::AfterLevels => None,
                },
                span0: Field {
                    offset: zsl_level.offset + level_span.offset,
                    size: level_span.size,
                },
                score: r.field("zskiplistNode", "score"),
                forward0: Field {
                    offset: zsl_level.offset + level_forward.offset,
                    size: level_forward.size,
                },
                level_size,
            },
            types: TypeConsts {
                string: r.constant("types", "string"),
                list: r.constant("types", "list"),
                set: r.constant("types", "set"),
                zset: r.constant("types", "zset"),
                hash: r.constant("types", "hash"),
                module: r.optional_constant("types", "module"),
                stream: r.optional_constant("types", "stream"),
            },
            enc: EncodingConsts {
                raw: r.constant("encodings", "raw"),
                int: r.constant("encodings", "int"),
                hashtable: r.constant("encodings", "hashtable"),
                intset: r.constant("encodings", "intset"),
                ziplist: r.optional_constant("encodings", "ziplist"),
                linkedlist: r.optional_constant("encodings", "linkedlist"),
                skiplist: r.constant("encodings", "skiplist"),
                embstr: r.optional_constant("encodings", "embstr"),
                quicklist: r.optional_constant("encodings", "quicklist"),
                listpack: r.optional_constant("encodings", "listpack"),
                listpack_ex: r.optional_constant("encodings", "listpack_ex"),
                stream: r.optional_constant("encodings", "stream"),
            },
            ql: if ql_present {
                QuicklistConsts {
                    encoding_raw: r.constant("quicklist_node", "encoding_raw"),
                    encoding_lzf: r.constant("quicklist_node", "encoding_lzf"),
                    container_plain: r.optional_constant("quicklist_node", "container_plain"),
                    container_packed: r.constant("quicklist_node", "container_packed"),
                }
            } else {
                QuicklistConsts::default()
            },
        };
        if r.missing.is_empty() {
            Ok(layout)
        } else {
            Err(ProfileError::Incomplete {
                name: file.name.clone(),
                missing: r.missing,
            })
        }
    }
}
