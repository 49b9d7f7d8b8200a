//! One key's serialized record, built before it is committed to the file.

use crate::consts::{
    ValueType, EXPIRETIME_MS, FREQ, IDLE, MIN_VERSION_EXPIRETIME_MS, MIN_VERSION_IDLE_FREQ,
};
use crate::encode;

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
    min_version: u32,
    value_type: Option<ValueType>,
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
            min_version: 1,
            value_type: None,
        }
    }

    /// Forgets the current record, keeping the buffer's capacity.
    pub fn clear(&mut self) {
        self.buf.clear();
        self.min_version = 1;
        self.value_type = None;
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

    /// The lowest RDB version whose loader understands everything written so
    /// far (checked by [`RdbWriter::record`](crate::RdbWriter::record)).
    pub fn min_rdb_version(&self) -> u32 {
        self.min_version
    }

    /// The object type written by [`value_type`](Self::value_type), if any.
    pub fn written_value_type(&self) -> Option<ValueType> {
        self.value_type
    }

    fn need(&mut self, version: u32) {
        self.min_version = self.min_version.max(version);
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
        self.need(t.min_rdb_version());
        self.value_type = Some(t);
        self.buf.push(t.code());
    }

    /// The key (a string, encoded like any other).
    pub fn key(&mut self, key: &[u8]) {
        self.string(key);
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

    /// Bytes appended verbatim, for encodings this builder has no helper for.
    pub fn raw(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
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
        assert_eq!(r.min_rdb_version(), 9);
        assert_eq!(r.written_value_type(), Some(ValueType::Set));
        r.clear();
        assert!(r.is_empty());
        assert_eq!(r.min_rdb_version(), 1);
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
