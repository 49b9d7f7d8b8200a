//! The buffered, checksumming RDB file writer.

use std::io::Write;

use crate::consts::{
    describe_versions, has_redis_feature, magic, AUX, EOF, FUNCTION2, MIN_VERSION_AUX,
    MIN_VERSION_FUNCTION2, RDB_VERSION_CHECKSUM, RESIZEDB, SELECTDB,
};
use crate::crc::Crc64;
use crate::encode;
use crate::error::RdbError;
use crate::record::RecordBuilder;

/// Size of the internal buffer; also the unit the CRC is computed over
/// (crc-fast is only fast on large updates).
const BUF_CAP: usize = 256 * 1024;

/// Streaming RDB writer: header on creation, opcodes and records in
/// between, EOF and checksum on [`finish`](Self::finish).
///
/// It buffers internally, so wrapping `inner` in a `BufWriter` is pointless.
/// The caller is responsible for the order of the file: AUX fields and
/// functions first, then per database `select_db`, `resize_db` and the
/// records. If any call fails the file is unusable and should be discarded.
#[derive(Debug)]
pub struct RdbWriter<W: Write> {
    inner: W,
    buf: Vec<u8>,
    crc: Crc64,
    version: u32,
    /// Bytes already handed to `inner`.
    flushed: u64,
}

impl<W: Write> RdbWriter<W> {
    /// Starts a file of RDB `rdb_version` (Redis's 1 to 13, Valkey 9's 80) by writing the
    /// magic: `REDIS` and the 4-digit version, or for 80 `VALKEY080`.
    pub fn new(inner: W, rdb_version: u32) -> Result<Self, RdbError> {
        let Some(magic) = magic(rdb_version) else {
            return Err(RdbError::BadVersion(rdb_version));
        };
        let mut w = RdbWriter {
            inner,
            buf: Vec::with_capacity(BUF_CAP),
            crc: Crc64::new(),
            version: rdb_version,
            flushed: 0,
        };
        w.buf.extend_from_slice(&magic);
        Ok(w)
    }

    /// The RDB version being written.
    pub fn version(&self) -> u32 {
        self.version
    }

    /// Total bytes of the file so far, buffered ones included.
    pub fn bytes_written(&self) -> u64 {
        self.flushed + self.buf.len() as u64
    }

    /// Fails unless the file's version has `what`, which Redis introduced in RDB `since`.
    fn require(&self, what: &'static str, since: u32) -> Result<(), RdbError> {
        if !has_redis_feature(self.version, since) {
            return Err(RdbError::NotInVersion {
                what: what.into(),
                version: self.version,
                holders: describe_versions(|v| has_redis_feature(v, since)),
            });
        }
        Ok(())
    }

    /// Hashes and writes out the buffer.
    fn flush_buf(&mut self) -> Result<(), RdbError> {
        if !self.buf.is_empty() {
            self.crc.update(&self.buf);
            self.inner.write_all(&self.buf)?;
            self.flushed += self.buf.len() as u64;
            self.buf.clear();
        }
        Ok(())
    }

    /// Called after appending to the buffer directly.
    fn maybe_flush(&mut self) -> Result<(), RdbError> {
        if self.buf.len() >= BUF_CAP {
            self.flush_buf()?;
        }
        Ok(())
    }

    fn put(&mut self, data: &[u8]) -> Result<(), RdbError> {
        if self.buf.len() + data.len() > BUF_CAP {
            self.flush_buf()?;
        }
        if data.len() >= BUF_CAP {
            // Large enough to hash efficiently on its own; skip the copy.
            self.crc.update(data);
            self.inner.write_all(data)?;
            self.flushed += data.len() as u64;
        } else {
            self.buf.extend_from_slice(data);
        }
        Ok(())
    }

    /// An `AUX` field (RDB >= 7). Values that are canonical integers get
    /// Redis's integer encoding, as Redis does for `ctime` and friends.
    pub fn aux(&mut self, key: &[u8], value: &[u8]) -> Result<(), RdbError> {
        self.require("AUX opcode", MIN_VERSION_AUX)?;
        self.buf.push(AUX);
        encode::put_string(&mut self.buf, key, false);
        encode::put_string(&mut self.buf, value, false);
        self.maybe_flush()
    }

    /// An `AUX` field with an integer value (`ctime`, `used-mem`, …).
    pub fn aux_int(&mut self, key: &[u8], value: i64) -> Result<(), RdbError> {
        self.require("AUX opcode", MIN_VERSION_AUX)?;
        self.buf.push(AUX);
        encode::put_string(&mut self.buf, key, false);
        encode::put_int_string(&mut self.buf, value, false);
        self.maybe_flush()
    }

    /// A `FUNCTION2` opcode with one library's source code (RDB >= 10).
    /// Redis writes these before the first `SELECTDB`.
    pub fn function(&mut self, code: &[u8]) -> Result<(), RdbError> {
        self.require("FUNCTION2 opcode", MIN_VERSION_FUNCTION2)?;
        self.buf.push(FUNCTION2);
        encode::put_string(&mut self.buf, code, true);
        self.maybe_flush()
    }

    /// `SELECTDB`: following records belong to database `db`.
    pub fn select_db(&mut self, db: u64) -> Result<(), RdbError> {
        self.buf.push(SELECTDB);
        encode::put_len(&mut self.buf, db);
        self.maybe_flush()
    }

    /// `RESIZEDB` size hints for the current database (RDB >= 7).
    ///
    /// Loaders pre-size their hash tables from these numbers, so they should
    /// be the real counts (or at least not wildly larger).
    pub fn resize_db(&mut self, db_size: u64, expires_size: u64) -> Result<(), RdbError> {
        self.require("RESIZEDB opcode", MIN_VERSION_AUX)?;
        self.buf.push(RESIZEDB);
        encode::put_len(&mut self.buf, db_size);
        encode::put_len(&mut self.buf, expires_size);
        self.maybe_flush()
    }

    /// Appends a complete key record. Fails without writing anything if the
    /// record uses a type or opcode the file's RDB version lacks.
    pub fn record(&mut self, rec: &RecordBuilder) -> Result<(), RdbError> {
        rec.check_version(self.version)?;
        self.put(rec.as_bytes())
    }

    /// Writes `EOF`, the CRC-64 trailer (RDB >= 5, little-endian, covering
    /// every byte from the magic through `EOF`), flushes and returns the
    /// inner writer.
    pub fn finish(self) -> Result<W, RdbError> {
        self.finish_with_crc().map(|(w, _)| w)
    }

    /// [`finish`](Self::finish), also returning the CRC-64 written as the trailer (`None`
    /// below RDB 5, which has none): what a reader checks the file against, known without
    /// reading the file back (it may have gone to a pipe).
    pub fn finish_with_crc(mut self) -> Result<(W, Option<u64>), RdbError> {
        self.buf.push(EOF);
        self.flush_buf()?;
        let mut crc = None;
        if self.version >= RDB_VERSION_CHECKSUM {
            let sum = self.crc.finish();
            self.inner.write_all(&sum.to_le_bytes())?;
            self.flushed += 8;
            crc = Some(sum);
        }
        self.inner.flush()?;
        Ok((self.inner, crc))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consts::ValueType;
    use crate::crc::crc64;

    #[test]
    fn rejects_bad_versions() {
        for v in [0, 14, 79, 81, 99, 100] {
            assert!(matches!(
                RdbWriter::new(Vec::new(), v),
                Err(RdbError::BadVersion(x)) if x == v
            ));
        }
    }

    #[test]
    fn minimal_files() {
        let out = RdbWriter::new(Vec::new(), 9).unwrap().finish().unwrap();
        assert_eq!(&out[..10], b"REDIS0009\xFF");
        assert_eq!(out.len(), 18);
        assert_eq!(out[10..], crc64(&out[..10]).to_le_bytes());

        let (out, crc) = RdbWriter::new(Vec::new(), 13)
            .unwrap()
            .finish_with_crc()
            .unwrap();
        assert_eq!(&out[..10], b"REDIS0013\xFF");
        assert_eq!(out[10..], crc64(&out[..10]).to_le_bytes());
        assert_eq!(crc, Some(crc64(&out[..10])));

        let out = RdbWriter::new(Vec::new(), 80).unwrap().finish().unwrap();
        assert_eq!(&out[..10], b"VALKEY080\xFF");
        assert_eq!(out.len(), 18);
        assert_eq!(out[10..], crc64(&out[..10]).to_le_bytes());

        // Before version 5 there is no checksum.
        let (out, crc) = RdbWriter::new(Vec::new(), 4)
            .unwrap()
            .finish_with_crc()
            .unwrap();
        assert_eq!((&out[..], crc), (&b"REDIS0004\xFF"[..], None));
    }

    #[test]
    fn exact_small_file() {
        let mut w = RdbWriter::new(Vec::new(), 10).unwrap();
        w.aux(b"redis-bits", b"64").unwrap();
        w.aux_int(b"ctime", 1_700_000_000).unwrap();
        w.select_db(0).unwrap();
        w.resize_db(1, 1).unwrap();
        let mut r = RecordBuilder::new(true);
        r.expire_ms(1);
        r.value_type(ValueType::String);
        r.key(b"k");
        r.string(b"v");
        w.record(&r).unwrap();
        assert_eq!(w.bytes_written(), w.buf.len() as u64);
        let before = w.bytes_written();
        let out = w.finish().unwrap();
        assert_eq!(out.len() as u64, before + 9);
        let mut want = b"REDIS0010".to_vec();
        want.extend_from_slice(b"\xFA\x0Aredis-bits\xC0\x40");
        want.extend_from_slice(b"\xFA\x05ctime\xC2");
        want.extend_from_slice(&1_700_000_000i32.to_le_bytes());
        want.extend_from_slice(b"\xFE\x00\xFB\x01\x01");
        want.extend_from_slice(b"\xFC\x01\0\0\0\0\0\0\0\x00\x01k\x01v\xFF");
        let sum = crc64(&want);
        want.extend_from_slice(&sum.to_le_bytes());
        assert_eq!(out, want);
    }

    #[test]
    fn version_gates() {
        let mut w = RdbWriter::new(Vec::new(), 6).unwrap();
        match w.aux(b"a", b"b") {
            Err(RdbError::NotInVersion {
                version: 6,
                holders,
                ..
            }) => assert_eq!(holders, "7 to 13, 80"),
            other => panic!("{other:?}"),
        }
        assert!(w.resize_db(1, 0).is_err());
        assert!(w.function(b"x").is_err());
        let mut r = RecordBuilder::new(false);
        r.value_type(ValueType::Zset2);
        match w.record(&r) {
            Err(e @ RdbError::NotInVersion { version: 6, .. }) => assert_eq!(
                e.to_string(),
                "object type 5 (Zset2) is not in RDB version 6 (only in RDB 8 to 13, 80)"
            ),
            other => panic!("{other:?}"),
        }
        r.clear();
        r.expire_ms(5);
        r.value_type(ValueType::String);
        r.key(b"a");
        r.string(b"b");
        w.record(&r).unwrap();
        // Failed calls wrote nothing.
        assert_eq!(w.bytes_written(), 9 + r.byte_len() as u64);
    }

    #[test]
    fn rdb_80_has_rdb_11_and_type_22_only() {
        let mut w = RdbWriter::new(Vec::new(), 80).unwrap();
        w.aux(b"valkey-ver", b"9.1.2").unwrap();
        w.function(b"#!lua name=x").unwrap();
        w.select_db(0).unwrap();
        w.resize_db(1, 0).unwrap();
        let mut r = RecordBuilder::new(false);
        for t in [
            ValueType::HashMetadata,
            ValueType::HashListpackEx,
            ValueType::StreamListpacks4,
        ] {
            r.clear();
            r.value_type(t);
            let before = w.bytes_written();
            assert!(
                matches!(
                    w.record(&r),
                    Err(RdbError::NotInVersion { version: 80, .. })
                ),
                "{t:?}"
            );
            assert_eq!(w.bytes_written(), before);
        }
        r.clear();
        r.idle(3);
        r.value_type(ValueType::Hash2);
        r.key(b"h");
        r.len(1);
        r.hash2_field(b"f", b"v", Some(5)).unwrap();
        w.record(&r).unwrap();
        // And type 22 nowhere else.
        for v in [11, 12, 13] {
            let mut old = RdbWriter::new(Vec::new(), v).unwrap();
            assert!(old.record(&r).is_err(), "RDB {v}");
        }
    }

    #[test]
    fn bad_version_names_the_versions() {
        let e = RdbWriter::new(Vec::new(), 14).unwrap_err();
        assert_eq!(
            e.to_string(),
            "RDB version 14 does not exist (the versions are 1 to 13, 80)"
        );
    }

    /// A writer that accepts at most `chunk` bytes per call, to exercise
    /// `write_all` retries and large pass-through records.
    struct Dribble {
        out: Vec<u8>,
        chunk: usize,
        flushed: bool,
    }

    impl Write for Dribble {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            let n = b.len().min(self.chunk);
            self.out.extend_from_slice(&b[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            self.flushed = true;
            Ok(())
        }
    }

    #[test]
    fn large_stream_checksum_and_count() {
        let sink = Dribble {
            out: Vec::new(),
            chunk: 100_003,
            flushed: false,
        };
        let mut w = RdbWriter::new(sink, 10).unwrap();
        w.select_db(0).unwrap();
        let mut r = RecordBuilder::new(false);
        let mut rng = crate::crc::tests::XorShift(3);
        let mut expected_len = 9 + 2;
        for i in 0..300u64 {
            r.clear();
            r.value_type(ValueType::String);
            r.int_string(i as i64);
            // Some records bigger than the buffer, most small.
            let n = if i % 50 == 7 {
                BUF_CAP + rng.below(100_000)
            } else {
                rng.below(5000)
            };
            let mut v = vec![0u8; n];
            rng.fill(&mut v);
            r.string(&v);
            w.record(&r).unwrap();
            expected_len += r.byte_len() as u64;
            assert_eq!(w.bytes_written(), expected_len);
        }
        let sink = w.finish().unwrap();
        assert!(sink.flushed);
        let out = sink.out;
        assert_eq!(out.len() as u64, expected_len + 1 + 8);
        let body = &out[..out.len() - 8];
        assert_eq!(body.last(), Some(&EOF));
        let oracle = crc::Crc::<u64>::new(&crc::CRC_64_REDIS).checksum(body);
        assert_eq!(out[out.len() - 8..], oracle.to_le_bytes());
    }

    #[derive(Debug)]
    struct Broken;
    impl Write for Broken {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::Error::other("disk on fire"))
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn io_errors_surface() {
        let w = RdbWriter::new(Broken, 10).unwrap();
        let err = w.finish().unwrap_err();
        assert!(matches!(err, RdbError::Io(_)));
        assert!(err.to_string().contains("disk on fire"));
    }
}
