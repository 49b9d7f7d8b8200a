//! One db's keys, one at a time: how its tables are walked ([`TableKind`]), where each
//! key's expire comes from ([`ExpireSource`]), the decoding of an entry into a name and a
//! value ([`KeyDecoder`], on either thread) and what becomes of it ([`KeyVisitor`], on the
//! calling thread, in the walk's order).

use super::dict::{self, DictHeader, KeyForm};
use super::events::WalkEvents;
use super::fault::{Fault, FaultKind};
use super::object::ObjectDecoder;
use super::seen::SeenEntries;
use super::{bucket, handout, hashtable, sds, WalkContext, PROGRESS_BATCH};
use crate::core::address_space::prefetch_line;
use crate::profile::layout::TableFlavor;
use crate::sink::SinkError;
use crate::value::{Bytes, Kind, QuicklistNode, RecoveredKey, StrValue, Value};

/// Where a key's expire comes from.
pub(super) enum ExpireSource<'v> {
    /// Looked up by key pointer in the walked expires dict; `complete` says whether that
    /// dict was read whole (if not, a key without a found TTL cannot be trusted).
    Dict {
        sorted: &'v [(u64, i64)],
        complete: bool,
    },
    /// Looked up per key in the one expires dict, in the bucket the key's name hashes to
    /// (the bucket check's hash), by key pointer (the expires dict shares the keys dict's
    /// key strings): nothing is kept per key. `complete` as for `Dict`.
    Lookup {
        header: &'v DictHeader,
        check: bucket::BucketCheck,
        complete: bool,
    },
    /// Kept with the object, which embeds its key (`key_object` = `embedded`).
    Embedded,
}

/// Keys tables with fewer entries than this are walked on one thread: a second one costs
/// about a tenth of a millisecond to start. A few hundred keys that are big collections
/// already pay for it (4,000 sorted sets of 1,000 members: 0.45 s on two threads against
/// 0.85 s on one), since the hand-over's batches shrink to what the taker gets through.
pub(super) const PIPELINE_MIN: u64 = 256;

/// What a db's keys tables hold, and so how they are walked.
#[derive(Debug, Clone, Copy)]
pub(super) enum TableKind {
    /// Hashtables of objects that embed their keys (Valkey 8.1+).
    Hashtable,
    /// Value-less dicts whose keys are the objects themselves (Valkey 8.0, Redis 8).
    ObjectDict,
    /// Dicts of key sds to value objects.
    Dict,
}

impl TableKind {
    pub(super) fn of(tables: TableFlavor, embedded: bool) -> Self {
        match (tables, embedded) {
            (TableFlavor::Hashtable, _) => TableKind::Hashtable,
            (TableFlavor::Dict, true) => TableKind::ObjectDict,
            (TableFlavor::Dict, false) => TableKind::Dict,
        }
    }

    pub(super) fn hashtables<'c, 'a>(
        ctx: &'c WalkContext<'c, 'a>,
    ) -> hashtable::HashtableWalker<'c, 'a> {
        ctx.hashtables()
            .with_bucket_check(ctx.options.bucket_check, hashtable::EntryKey::Embedded)
            .with_name_check()
    }

    pub(super) fn dicts<'c, 'a>(ctx: &'c WalkContext<'c, 'a>) -> dict::DictWalker<'c, 'a> {
        ctx.dicts()
            .with_bucket_check(ctx.options.bucket_check)
            .with_name_check()
    }

    /// Whether its walker hands out each name once (see `KeyVisitor::names_checked`).
    pub(super) fn names_checked(self, ctx: &WalkContext<'_, '_>) -> bool {
        match self {
            TableKind::Hashtable => Self::hashtables(ctx).names_checked(),
            TableKind::ObjectDict => Self::dicts(ctx)
                .with_keys(KeyForm::KeyObject)
                .names_checked(),
            TableKind::Dict => Self::dicts(ctx).names_checked(),
        }
    }

    /// Walks one table, handing its entries to `out`; `sole` says that `seen` serves this
    /// table alone (see [`dict::DictWalker::with_sole_table`]).
    pub(super) fn walk<'a>(
        self,
        ctx: &WalkContext<'_, 'a>,
        header: &DictHeader,
        sole: bool,
        seen: &mut SeenEntries,
        out: &mut handout::Handout<'_, Decoded<'a>>,
        decode: &mut dyn FnMut(u64, u64) -> Decoded<'a>,
    ) -> dict::WalkFaults {
        match self {
            TableKind::Hashtable => {
                Self::hashtables(ctx)
                    .with_sole_table(sole)
                    .for_each_unique(header, seen, |obj| out.entry(obj, 0, decode))
            }
            TableKind::ObjectDict => Self::dicts(ctx)
                .with_keys(KeyForm::KeyObject)
                .with_sole_table(sole)
                .for_each_unique(header, seen, |obj, _| out.entry(obj, 0, decode)),
            TableKind::Dict => {
                Self::dicts(ctx)
                    .with_sole_table(sole)
                    .for_each_unique(header, seen, |key, obj| out.entry(key, obj, decode))
            }
        }
    }
}

/// Decodes one key at a time and tells the walk's consumer what became of it.
pub(super) struct KeyVisitor<'v> {
    pub(super) events: &'v mut dyn WalkEvents,
    pub(super) fatal: Option<SinkError>,
    /// Hashes of the key names written in the current db: two entries naming the same key
    /// (one key pointer damaged into another key's string) must not both be written,
    /// since Redis's loader stops on a duplicate key. 64-bit SipHash: a false match needs
    /// a collision, about n²/2⁶⁵ for n keys.
    pub(super) key_names: std::collections::HashSet<u64>,
    /// The table walker already hands out each name once (see
    /// [`dict::DictWalker::with_name_check`]): `key_names` stays empty, memory flat.
    pub(super) names_checked: bool,
    /// The cluster slot of the table being walked, when its kvstore keeps one per slot.
    pub(super) slot: Option<u32>,
    pub(super) matched_expires: u64,
    pub(super) pending: u64,
}

impl KeyVisitor<'_> {
    /// The end of one keys table: what its walker refused, said once.
    pub(super) fn table_end(&mut self, db: u32, faults: &dict::WalkFaults) {
        for name in &faults.duplicate_names {
            self.duplicate_name(db, name);
        }
        let unnamed = faults.duplicates - faults.duplicate_names.len() as u64;
        if unnamed > 0 {
            self.events.warning(format!(
                "db {db}: {unnamed} more entries name a key an earlier entry has (damaged key pointers); only the first ones found count"
            ));
        }
        self.events.chain_faults(db, faults);
    }

    pub(super) fn tick(&mut self, progress: &mut impl FnMut(u64)) {
        // Progress is reported in batches: a tick per key costs a clock read.
        self.pending += 1;
        if self.pending == PROGRESS_BATCH {
            progress(std::mem::take(&mut self.pending));
        }
    }

    /// An entry handed out by the keys table's walk, decoded (on either thread): its
    /// name claimed, then what became of it told.
    pub(super) fn take(&mut self, db: u32, decoded: Decoded<'_>, progress: &mut impl FnMut(u64)) {
        self.tick(progress);
        if self.fatal.is_some() {
            return;
        }
        let (key, result) = match decoded {
            Decoded::Unnamed(f) => return self.events.lost(db, None, None, &f),
            Decoded::Named { key, result } => (key, result),
        };
        if !self.claim_name(db, &key) {
            return;
        }
        match result {
            Ok(r) => {
                if r.expire_ms.is_some() {
                    self.matched_expires += 1;
                }
                let rk = RecoveredKey {
                    db,
                    key,
                    expire_ms: r.expire_ms,
                    kind: r.kind,
                    lru: r.lru,
                    value: r.value,
                };
                if let Err(e) = self.events.key(&rk, r.partial.map(|p| *p)) {
                    self.fatal = Some(e);
                }
            }
            Err(lost) => {
                let (kind, f) = *lost;
                self.events.lost(db, Some(&key), kind, &f)
            }
        }
    }

    /// True for the first entry of the db naming `key`: it decides the key's fate, written
    /// or lost. Later ones are dropped with a warning (which one is genuine cannot be told)
    /// and count among the unnamed losses, their real name being unknown.
    pub(super) fn claim_name(&mut self, db: u32, key: &[u8]) -> bool {
        if let Some(slot) = self.slot {
            let home = u32::from(crate::slot::key_slot(key));
            if home != slot {
                let f = Fault::of(FaultKind::MisplacedEntry, format!(
                    "found in the table of cluster slot {slot}, but its name belongs to slot {home}: a damaged key pointer or name"
                ));
                self.events.lost(db, Some(key), None, &f);
                return false;
            }
        }
        if self.names_checked {
            return true;
        }
        let name_hash = {
            use std::hash::{Hash, Hasher};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            key.hash(&mut h);
            h.finish()
        };
        if self.key_names.insert(name_hash) {
            return true;
        }
        self.duplicate_name(db, key);
        false
    }

    /// Tells of an entry left out because an earlier one names the same key.
    pub(super) fn duplicate_name(&mut self, db: u32, key: &[u8]) {
        self.events.warning(format!(
            "db {db}: a second entry names key {} (a damaged key pointer); only the first one found counts",
            crate::value::printable(key)
        ));
    }
}

/// What decoding one keys-table entry gave, before the db-wide name check decides whether
/// it counts (a later entry naming a key already written is dropped, decoded or not).
#[derive(Debug)]
pub(crate) enum Decoded<'a> {
    /// The key's name cannot be read: lost, unnamed.
    Unnamed(Fault),
    /// A named key: recovered, or lost (with its type when that was read).
    Named {
        key: Bytes<'a>,
        /// Lost: boxed, as the fault is big and rare, so that a decoded key (moved into
        /// a batch, out of it and on) stays small.
        result: Result<DecodedValue<'a>, Box<(Option<Kind>, Fault)>>,
    },
}

/// A key's value, decoded and validated, and what of it is knowingly left out.
#[derive(Debug)]
pub(crate) struct DecodedValue<'a> {
    expire_ms: Option<i64>,
    kind: Kind,
    lru: u32,
    value: Value<'a>,
    /// Boxed: rare, and big.
    partial: Option<Box<Fault>>,
}

impl handout::Parts for Decoded<'_> {
    fn parts(&self) -> usize {
        match self {
            Decoded::Named { result: Ok(r), .. } => r.value.parts(),
            _ => 1,
        }
    }

    fn prefetch(&self) {
        if let Decoded::Named { key, result } = self {
            prefetch_line(key);
            if let Ok(r) = result {
                prefetch_value(&r.value);
            }
        }
    }
}

/// Starts loading the first line of what encoding `value` reads first: its blob, or the
/// first few of its parts (a few only: the rest follows while those are written).
fn prefetch_value(value: &Value<'_>) {
    const FIRST: usize = 4;
    match value {
        Value::String(StrValue::Bytes(b))
        | Value::ListZiplist(b)
        | Value::SetIntset(b)
        | Value::SetListpack(b)
        | Value::ZsetListpack(b)
        | Value::ZsetZiplist(b)
        | Value::HashListpack(b)
        | Value::HashZiplist(b)
        | Value::HashListpackEx { lp: b, .. } => prefetch_line(b),
        Value::ListQuicklist(nodes) | Value::ListQuicklistZiplist(nodes) => {
            for node in nodes.iter().take(FIRST) {
                match node {
                    QuicklistNode::Packed(b) | QuicklistNode::Plain(b) => prefetch_line(b),
                    QuicklistNode::PackedLzf { compressed, .. }
                    | QuicklistNode::PlainLzf { compressed, .. } => prefetch_line(compressed),
                }
            }
        }
        Value::ListElements(v) | Value::SetMembers(v) => {
            v.iter().take(FIRST).for_each(|b| prefetch_line(b))
        }
        Value::ZsetPairs(v) => v.iter().take(FIRST).for_each(|(b, _)| prefetch_line(b)),
        Value::HashPairs(v) => v.iter().take(FIRST / 2).for_each(|(f, x)| {
            prefetch_line(f);
            prefetch_line(x);
        }),
        Value::HashPairsTtl(v) => v.iter().take(FIRST / 2).for_each(|(f, x, _)| {
            prefetch_line(f);
            prefetch_line(x);
        }),
        Value::Stream(s) => s
            .listpacks
            .iter()
            .take(FIRST)
            .for_each(|(_, lp)| prefetch_line(lp)),
        Value::String(StrValue::Int(_)) => {}
    }
}

/// Decodes keys-table entries into [`Decoded`]: the key's name, its expire, its object.
/// Knows nothing of the walk's consumer, so either thread of a walk can use one.
pub(super) struct KeyDecoder<'s, 'a> {
    ctx: &'s WalkContext<'s, 'a>,
    objects: ObjectDecoder<'s, 'a>,
    /// `--salvage`: a key whose TTL cannot be confirmed is written without one, as partial.
    salvage: bool,
    kind: TableKind,
}

impl<'s, 'a> KeyDecoder<'s, 'a> {
    pub(super) fn new(ctx: &'s WalkContext<'s, 'a>, kind: TableKind) -> Self {
        KeyDecoder {
            ctx,
            objects: ObjectDecoder::new(ctx),
            salvage: ctx.options.salvage,
            kind,
        }
    }

    /// Decodes the entry `(key, value)` of a table of this decoder's kind.
    pub(super) fn decode(
        &mut self,
        key: u64,
        value: u64,
        source: &ExpireSource<'_>,
    ) -> Decoded<'a> {
        match self.kind {
            TableKind::Dict => self.dict_entry(key, value, source),
            TableKind::Hashtable | TableKind::ObjectDict => self.embedded(key),
        }
    }

    /// A dict entry: key sds, value robj, expire from the expires dict.
    pub(super) fn dict_entry(
        &mut self,
        key_ptr: u64,
        obj_ptr: u64,
        source: &ExpireSource<'_>,
    ) -> Decoded<'a> {
        let key = match sds::read_sds(self.ctx.space, self.ctx.sds, key_ptr) {
            Ok(k) => k,
            Err(f) => return Decoded::Unnamed(f),
        };
        // The expire found, and whether not finding one means the key has none.
        let (found, complete) = match source {
            ExpireSource::Dict { sorted, complete } => (
                sorted
                    .binary_search_by_key(&key_ptr, |e| e.0)
                    .ok()
                    .and_then(|i| sorted.get(i))
                    .map(|e| e.1),
                *complete,
            ),
            ExpireSource::Lookup {
                header,
                check,
                complete,
            } => (
                self.ctx
                    .dicts()
                    .value_of(header, check.hash_bytes(&key), key_ptr)
                    .map(|v| v as i64),
                *complete,
            ),
            ExpireSource::Embedded => (None, true),
        };
        if found.is_none() && !complete {
            if !self.salvage {
                let f = Fault::of(
                    FaultKind::ExpiresDamaged,
                    "its TTL cannot be known: the expires dict is damaged (see warnings)",
                );
                return Decoded::Named {
                    key,
                    result: Err(Box::new((None, f))),
                };
            }
            let f = Fault::of(FaultKind::ExpiresDamaged,
                "written without a TTL: the expires dict is damaged, so any TTL it had is unknown (--salvage)",
            );
            return self.value(key, None, obj_ptr, Some(f));
        }
        self.value(key, found, obj_ptr, None)
    }

    /// An object that embeds its key (and keeps its expire, by `expire`).
    pub(super) fn embedded(&mut self, obj_ptr: u64) -> Decoded<'a> {
        match self.objects.embedded_key(obj_ptr) {
            Ok(k) => {
                // Module key metadata (8.6 `metabits` classes 1-7) is the module's own
                // format: the key is written without it.
                let meta = (k.module_meta != 0).then(|| {
                    Fault::Unsupported(format!(
                        "written without its module key metadata (classes {:#04x}): it needs the module that wrote it",
                        k.module_meta
                    ))
                });
                self.value(k.key, k.expire_ms, obj_ptr, meta)
            }
            Err(f) => Decoded::Unnamed(f),
        }
    }

    /// Decodes the value at `obj_ptr` of the key `key`; `partial_reason` marks it partial
    /// (its TTL could not be confirmed, or module metadata is left out).
    pub(super) fn value(
        &mut self,
        key: Bytes<'a>,
        expire_ms: Option<i64>,
        obj_ptr: u64,
        partial_reason: Option<Fault>,
    ) -> Decoded<'a> {
        let header = match self.objects.header(obj_ptr) {
            Ok(h) => h,
            Err(f) => {
                return Decoded::Named {
                    key,
                    result: Err(Box::new((None, f))),
                }
            }
        };
        let decoded = {
            let _budget = self.ctx.budget.key();
            self.objects
                .check_holders(&header)
                .and_then(|()| self.objects.value(&header))
        };
        let result = match decoded {
            Ok(value) => Ok(DecodedValue {
                expire_ms,
                kind: header.kind,
                lru: header.lru,
                value,
                partial: self.objects.take_partial().or(partial_reason).map(Box::new),
            }),
            Err(f) => Err(Box::new((Some(header.kind), f))),
        };
        Decoded::Named { key, result }
    }
}
