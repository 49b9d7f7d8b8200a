//! One key's serialized record, built before it is committed to the file.

use crate::consts::{
    describe_versions, has_redis_feature, ValueType, EXPIRETIME_MS, FREQ, IDLE,
    MIN_VERSION_EXPIRETIME_MS, MIN_VERSION_IDLE_FREQ, STREAM_IDMP_DURATION_DEFAULT,
    STREAM_IDMP_DURATION_MAX, STREAM_IDMP_DURATION_MIN, STREAM_IDMP_MAX_ENTRIES_DEFAULT,
    STREAM_IDMP_MAX_ENTRIES_MAX, STREAM_IDMP_MAX_ENTRIES_MIN,
};
use crate::encode;
use crate::error::RdbError;
use crate::reader::StreamId;

/// A stream's IDMP settings (Redis 8.6 `XCFGSET IDMP-DURATION … IDMP-MAXSIZE …`), checked on
/// construction against the ranges Redis 8.6's loader accepts: it refuses the whole file when
/// one stream is outside them, so a record can only be given valid ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct StreamIdmpConfig {
    duration: u64,
    max_entries: u64,
}

impl Default for StreamIdmpConfig {
    /// [`StreamIdmpConfig::DEFAULT`].
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl StreamIdmpConfig {
    /// What every stream gets from Redis 8.6's default configuration (100 s, 100 IIDs):
    /// the settings for a stream whose server had no IDMP yet.
    pub const DEFAULT: StreamIdmpConfig = StreamIdmpConfig {
        duration: STREAM_IDMP_DURATION_DEFAULT,
        max_entries: STREAM_IDMP_MAX_ENTRIES_DEFAULT,
    };

    /// Settings of `duration` seconds and `max_entries` IIDs per producer; an error unless
    /// `duration` is in 1..=86400 and `max_entries` in 1..=10000.
    pub fn new(duration: u64, max_entries: u64) -> Result<Self, RdbError> {
        let check = |what, value, min, max| {
            if (min..=max).contains(&value) {
                Ok(())
            } else {
                Err(RdbError::OutOfRange {
                    what,
                    value,
                    min,
                    max,
                })
            }
        };
        check(
            "stream IDMP duration",
            duration,
            STREAM_IDMP_DURATION_MIN,
            STREAM_IDMP_DURATION_MAX,
        )?;
        check(
            "stream IDMP max entries",
            max_entries,
            STREAM_IDMP_MAX_ENTRIES_MIN,
            STREAM_IDMP_MAX_ENTRIES_MAX,
        )?;
        Ok(StreamIdmpConfig {
            duration,
            max_entries,
        })
    }

    /// Seconds an IID is remembered.
    pub fn duration(self) -> u64 {
        self.duration
    }

    /// IIDs remembered per producer.
    pub fn max_entries(self) -> u64 {
        self.max_entries
    }
}

/// A key's record (`[expire] [idle|freq] type key value…`) in a reusable
/// scratch buffer.
///
/// Recovery code may discover half-way through a value that the key is
/// unreadable; building into this buffer and handing it to
/// [`RdbWriter::record`](crate::RdbWriter::record) only when complete keeps
/// such keys out of the file. The caller is responsible for the order of
/// calls. [`clear`](Self::clear) keeps the allocation for the next key.
///
/// Note: [`len`](Self::len) *encodes a length*; the size of the record so far
/// is [`byte_len`](Self::byte_len).
#[derive(Clone, Debug)]
pub struct RecordBuilder {
    buf: Vec<u8>,
    compress: bool,
    /// The Redis version that introduced the newest key opcode written (1 when none).
    opcodes_since: u32,
    /// Bit `code` set for every object type written.
    types: u32,
    /// Whether a stream's IDMP state (only in [`ValueType::StreamListpacks4`]) was written.
    idmp: bool,
    value_type: Option<ValueType>,
    /// Offset of the object type byte, once written: a DUMP payload starts there.
    type_at: Option<usize>,
    /// Offset just past the key, once written after the type: the value starts there.
    value_at: Option<usize>,
}

impl Default for RecordBuilder {
    /// An empty builder without compression.
    fn default() -> Self {
        Self::new(false)
    }
}

impl RecordBuilder {
    /// An empty builder; `compress` enables LZF for strings longer than 20 bytes.
    pub fn new(compress: bool) -> Self {
        RecordBuilder {
            buf: Vec::with_capacity(4096),
            compress,
            opcodes_since: 1,
            types: 0,
            idmp: false,
            value_type: None,
            type_at: None,
            value_at: None,
        }
    }

    /// Forgets the current record, keeping the buffer's capacity.
    pub fn clear(&mut self) {
        self.buf.clear();
        self.opcodes_since = 1;
        self.types = 0;
        self.idmp = false;
        self.value_type = None;
        self.type_at = None;
        self.value_at = None;
    }

    /// The encoded bytes so far.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf
    }

    /// Number of encoded bytes so far.
    pub fn byte_len(&self) -> usize {
        self.buf.len()
    }

    /// True when nothing has been encoded since creation or the last `clear`.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Whether strings are LZF-compressed when worthwhile.
    pub fn compress(&self) -> bool {
        self.compress
    }

    /// Whether a loader of RDB `version` understands everything written so far (checked by
    /// [`RdbWriter::record`](crate::RdbWriter::record)).
    pub fn fits(&self, version: u32) -> bool {
        self.check_version(version).is_ok()
    }

    /// `Ok` when a loader of RDB `version` understands everything written so far, else
    /// [`RdbError::NotInVersion`] naming the first part it lacks and the versions that
    /// have it.
    pub fn check_version(&self, version: u32) -> Result<(), RdbError> {
        let unfit = |what: String, holders: String| RdbError::NotInVersion {
            what,
            version,
            holders,
        };
        if !has_redis_feature(version, self.opcodes_since) {
            let since = self.opcodes_since;
            return Err(unfit(
                "a key opcode (EXPIRETIME_MS, IDLE or FREQ)".into(),
                describe_versions(|v| has_redis_feature(v, since)),
            ));
        }
        // The types written, lowest code first (as `ValueType::ALL` lists them); a record
        // usually holds one, so this looks at one type instead of every one there is.
        let mut written = self.types;
        while written != 0 {
            let code = written.trailing_zeros();
            written &= written - 1;
            let Some(t) = u8::try_from(code).ok().and_then(ValueType::from_code) else {
                continue;
            };
            if !t.fits(version) {
                return Err(unfit(
                    format!("object type {} ({t:?})", t.code()),
                    t.versions(),
                ));
            }
        }
        if self.idmp && !ValueType::StreamListpacks4.fits(version) {
            return Err(unfit(
                "a stream's IDMP state".into(),
                ValueType::StreamListpacks4.versions(),
            ));
        }
        Ok(())
    }

    /// The object type written by [`value_type`](Self::value_type), if any.
    pub fn written_value_type(&self) -> Option<ValueType> {
        self.value_type
    }

    /// Notes a key opcode Redis introduced in RDB `since`.
    fn need(&mut self, since: u32) {
        self.opcodes_since = self.opcodes_since.max(since);
    }

    /// `EXPIRETIME_MS` opcode with an absolute Unix time in milliseconds.
    pub fn expire_ms(&mut self, ms: i64) {
        self.need(MIN_VERSION_EXPIRETIME_MS);
        self.buf.push(EXPIRETIME_MS);
        encode::put_millis(&mut self.buf, ms);
    }

    /// `IDLE` opcode: LRU idle time in seconds.
    pub fn idle(&mut self, secs: u64) {
        self.need(MIN_VERSION_IDLE_FREQ);
        self.buf.push(IDLE);
        encode::put_len(&mut self.buf, secs);
    }

    /// `FREQ` opcode: LFU counter.
    pub fn freq(&mut self, counter: u8) {
        self.need(MIN_VERSION_IDLE_FREQ);
        self.buf.push(FREQ);
        self.buf.push(counter);
    }

    /// The object type byte.
    pub fn value_type(&mut self, t: ValueType) {
        self.types |= 1 << t.code();
        self.value_type = Some(t);
        self.type_at = Some(self.buf.len());
        self.buf.push(t.code());
    }

    /// The key (a string, encoded like any other).
    pub fn key(&mut self, key: &[u8]) {
        self.string(key);
        if self.type_at.is_some() && self.value_at.is_none() {
            self.value_at = Some(self.buf.len());
        }
    }

    /// The object type byte and the value encoded after the key, without the key opcodes
    /// (expire, IDLE, FREQ) and the key itself: what a DUMP payload holds. `None` until
    /// [`value_type`](Self::value_type) and then [`key`](Self::key) have been written.
    pub fn type_and_value(&self) -> Option<(u8, &[u8])> {
        let ty = *self.buf.get(self.type_at?)?;
        Some((ty, self.buf.get(self.value_at?..)?))
    }

    /// A length (element counts, node counts, …).
    pub fn len(&mut self, n: u64) {
        encode::put_len(&mut self.buf, n);
    }

    /// A string, int-encoded or compressed as Redis would.
    pub fn string(&mut self, s: &[u8]) {
        encode::put_string(&mut self.buf, s, self.compress);
    }

    /// An integer as a string (int encoding when it fits in 32 bits).
    pub fn int_string(&mut self, v: i64) {
        encode::put_int_string(&mut self.buf, v, self.compress);
    }

    /// A string whose LZF-compressed form is already at hand.
    pub fn lzf_blob(&mut self, compressed: &[u8], raw_len: u64) {
        encode::put_lzf_blob(&mut self.buf, compressed, raw_len);
    }

    /// A double as 8 bytes little-endian (ZSET_2 scores).
    pub fn binary_double(&mut self, v: f64) {
        encode::put_binary_double(&mut self.buf, v);
    }

    /// A double as text (ZSET type 3 scores).
    pub fn string_double(&mut self, v: f64) {
        encode::put_string_double(&mut self.buf, v);
    }

    /// An int64 little-endian (millisecond times inside values, e.g. the
    /// minimum field expiry of `HashMetadata`/`HashListpackEx`).
    pub fn millis(&mut self, ms: i64) {
        encode::put_millis(&mut self.buf, ms);
    }

    /// One field of a [`ValueType::Hash2`] hash (after its [`len`](Self::len)): the field,
    /// the value and the field's expire time in Unix ms as an int64 little-endian, -1 for
    /// `None`. A time above `i64::MAX` is refused (nothing is written): the format has no
    /// room for it.
    pub fn hash2_field(
        &mut self,
        field: &[u8],
        value: &[u8],
        expire_ms: Option<u64>,
    ) -> Result<(), RdbError> {
        let ms = match expire_ms {
            None => -1,
            Some(t) => i64::try_from(t).map_err(|_| RdbError::OutOfRange {
                what: "hash field expire time (ms)",
                value: t,
                min: 0,
                max: i64::MAX.unsigned_abs(),
            })?,
        };
        self.string(field);
        self.string(value);
        encode::put_millis(&mut self.buf, ms);
        Ok(())
    }

    /// Bytes appended verbatim, for encodings this builder has no helper for.
    pub fn raw(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// What a [`ValueType::StreamListpacks4`] stream has after the type-21 payload: the IDMP
    /// settings, the producers (each a producer ID and its IIDs with the entry ID each one
    /// added, oldest first) and the all-time counts of IIDs added and of duplicates caught.
    ///
    /// The producer and IID counts are those of the iterators, so they always match what
    /// follows them; the settings are valid by construction of [`StreamIdmpConfig`].
    pub fn stream_idmp<P, K, I, V>(
        &mut self,
        config: StreamIdmpConfig,
        producers: P,
        iids_added: u64,
        iids_duplicates: u64,
    ) where
        P: IntoIterator<Item = (K, I)>,
        K: AsRef<[u8]>,
        I: IntoIterator<Item = (V, StreamId)>,
        V: AsRef<[u8]>,
    {
        self.idmp = true;
        encode::put_len(&mut self.buf, config.duration);
        encode::put_len(&mut self.buf, config.max_entries);
        // The counts come before their items, and iterators need not know their length:
        // assemble the items aside, then write count and items.
        let mut body = Vec::new();
        let mut entries = Vec::new();
        let mut n_producers = 0u64;
        for (pid, iids) in producers {
            n_producers += 1;
            encode::put_string(&mut body, pid.as_ref(), self.compress);
            entries.clear();
            let mut n_iids = 0u64;
            for (iid, id) in iids {
                n_iids += 1;
                encode::put_string(&mut entries, iid.as_ref(), self.compress);
                encode::put_len(&mut entries, id.ms);
                encode::put_len(&mut entries, id.seq);
            }
            encode::put_len(&mut body, n_iids);
            body.extend_from_slice(&entries);
        }
        encode::put_len(&mut self.buf, n_producers);
        self.buf.extend_from_slice(&body);
        encode::put_len(&mut self.buf, iids_added);
        encode::put_len(&mut self.buf, iids_duplicates);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_and_clears() {
        let mut r = RecordBuilder::new(false);
        assert!(r.is_empty());
        r.expire_ms(0x0102_0304_0506_0708);
        r.freq(5);
        r.value_type(ValueType::Set);
        r.key(b"k");
        r.len(2);
        r.string(b"a");
        r.int_string(300);
        assert_eq!(
            r.as_bytes(),
            [
                0xFC, 8, 7, 6, 5, 4, 3, 2, 1, // expire
                0xF9, 5, // freq
                2, // SET
                1, b'k', // key
                2,    // len
                1, b'a', // member
                0xC1, 0x2C, 0x01, // 300
            ]
        );
        assert_eq!(r.byte_len(), 20);
        assert!(!r.fits(8) && r.fits(9) && r.fits(13) && r.fits(80));
        match r.check_version(8) {
            Err(RdbError::NotInVersion {
                what,
                version: 8,
                holders,
            }) => {
                assert!(what.contains("FREQ"), "{what}");
                assert_eq!(holders, "9 to 13, 80");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(r.written_value_type(), Some(ValueType::Set));
        r.clear();
        assert!(r.is_empty());
        assert!(r.fits(1) && r.fits(80));
        assert_eq!(r.written_value_type(), None);
        r.idle(70);
        r.value_type(ValueType::Zset);
        r.key(b"z");
        r.len(1);
        r.string(b"m");
        r.string_double(2.5);
        r.lzf_blob(&[1, 2], 9);
        r.binary_double(0.0);
        r.millis(1);
        r.raw(&[0xAA]);
        assert_eq!(
            r.as_bytes(),
            [
                0xF8, 0x40, 70, 3, 1, b'z', 1, 1, b'm', 3, b'2', b'.', b'5', 0xC3, 2, 9, 1, 2, 0,
                0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0xAA
            ]
        );
    }

    #[test]
    fn idmp_config_ranges() {
        let ok = |d, m| StreamIdmpConfig::new(d, m).map(|c| (c.duration(), c.max_entries()));
        assert_eq!(ok(1, 1).unwrap(), (1, 1));
        assert_eq!(ok(86_400, 10_000).unwrap(), (86_400, 10_000));
        assert_eq!(
            StreamIdmpConfig::default(),
            StreamIdmpConfig::new(100, 100).unwrap()
        );
        for (d, m, what, value) in [
            (0, 100, "stream IDMP duration", 0),
            (86_401, 100, "stream IDMP duration", 86_401),
            (100, 0, "stream IDMP max entries", 0),
            (100, 10_001, "stream IDMP max entries", 10_001),
            (u64::MAX, 100, "stream IDMP duration", u64::MAX),
        ] {
            match StreamIdmpConfig::new(d, m) {
                Err(RdbError::OutOfRange {
                    what: w, value: v, ..
                }) => assert_eq!((w, v), (what, value)),
                other => panic!("({d}, {m}) gave {other:?}"),
            }
        }
    }

    #[test]
    fn idmp_tail_bytes() {
        let mut r = RecordBuilder::new(false);
        let id = |ms, seq| StreamId { ms, seq };
        let p1: [(&[u8], StreamId); 2] = [(b"a", id(5, 0)), (b"42", id(300, 1))];
        let p2: [(&[u8], StreamId); 0] = [];
        r.stream_idmp(
            StreamIdmpConfig::new(300, 50).unwrap(),
            [(&b"p1"[..], &p1[..]), (b"p2", &p2[..])].map(|(p, e)| (p, e.iter().copied())),
            7,
            2,
        );
        assert_eq!(
            r.as_bytes(),
            [
                0x41, 0x2C, // duration 300
                50,   // max entries
                2,    // producers
                2, b'p', b'1', 2, // pid, 2 IIDs
                1, b'a', 5, 0, // IID "a" at 5-0
                0xC0, 42, 0x41, 0x2C, 1, // IID "42" (int-encoded) at 300-1
                2, b'p', b'2', 0, // pid, no IIDs
                7, 2, // counters
            ]
        );
        assert!(r.fits(13));
        for v in [12, 80] {
            match r.check_version(v) {
                Err(RdbError::NotInVersion { what, holders, .. }) => {
                    assert_eq!(
                        (what.as_str(), holders.as_str()),
                        ("a stream's IDMP state", "13")
                    )
                }
                other => panic!("RDB {v}: {other:?}"),
            }
        }
    }

    #[test]
    fn types_fit_by_version() {
        let mut r = RecordBuilder::new(false);
        r.value_type(ValueType::HashMetadata);
        assert!(r.fits(12) && r.fits(13) && !r.fits(11) && !r.fits(80));
        match r.check_version(80) {
            Err(RdbError::NotInVersion {
                what,
                version: 80,
                holders,
            }) => assert_eq!(
                (what.as_str(), holders.as_str()),
                ("object type 24 (HashMetadata)", "12, 13")
            ),
            other => panic!("{other:?}"),
        }
        r.clear();
        r.value_type(ValueType::Hash2);
        assert!(r.fits(80));
        assert!((1..=13).all(|v| !r.fits(v)));
        r.clear();
        r.value_type(ValueType::SetListpack);
        assert!(r.fits(11) && r.fits(80) && !r.fits(10));
        // Versions that do not exist hold nothing, not even an empty record.
        r.clear();
        assert!(!r.fits(14) && !r.fits(0) && !r.fits(81));
    }

    #[test]
    fn hash2_fields() {
        let mut r = RecordBuilder::new(false);
        r.value_type(ValueType::Hash2);
        r.key(b"h");
        r.len(2);
        r.hash2_field(b"a", b"x", Some(0x0102_0304_0506_0708))
            .unwrap();
        r.hash2_field(b"b", b"y", None).unwrap();
        let before = r.byte_len();
        match r.hash2_field(b"c", b"3", Some(1 << 63)) {
            Err(RdbError::OutOfRange { value, max, .. }) => {
                assert_eq!((value, max), (1 << 63, i64::MAX as u64))
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(r.byte_len(), before, "a refused field writes nothing");
        assert_eq!(
            r.as_bytes(),
            [
                22, 1, b'h', 2, // type, key, len
                1, b'a', 1, b'x', 8, 7, 6, 5, 4, 3, 2, 1, // a = x, expire
                1, b'b', 1, b'y', 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, // b = y, -1
            ]
        );
    }

    #[test]
    fn compression_follows_flag() {
        let long = [b'x'; 100];
        let mut on = RecordBuilder::new(true);
        on.string(&long);
        assert_eq!(on.as_bytes()[0], 0xC3);
        assert!(on.compress());
        let mut off = RecordBuilder::new(false);
        off.key(&long);
        assert_eq!(off.as_bytes()[0], 0x40);
        assert_eq!(off.byte_len(), 102);
    }
}
