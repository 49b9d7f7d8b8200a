//! Buffered input that checksums what it hands out and knows its file offset.

use std::io::{ErrorKind, Read};

use super::ReadError;
use crate::crc::Crc64;

/// Size of the read buffer, also the unit the CRC is fed in (crc-fast is only fast on
/// large updates).
const BUF_CAP: usize = 256 * 1024;

/// Largest piece a variable-length read allocates ahead of the data actually arriving, so a
/// corrupt length costs at most this much before the read fails.
const GROW_STEP: usize = 1 << 20;

/// A reader over `R` with its own buffer, a running CRC-64 of every byte consumed, and the
/// offset of the next byte.
#[derive(Debug)]
pub(crate) struct Input<R> {
    inner: R,
    buf: Box<[u8]>,
    /// Next byte to hand out.
    pos: usize,
    /// End of valid data in `buf`.
    end: usize,
    /// Start of the consumed bytes not yet fed to `crc`.
    hashed: usize,
    crc: Crc64,
    /// File offset of `buf[0]`.
    base: u64,
}

impl<R: Read> Input<R> {
    pub(crate) fn new(inner: R) -> Self {
        Self::with_capacity(inner, BUF_CAP)
    }

    /// An input with a buffer of `cap` bytes (at least 1, at most the usual size): a small
    /// input, such as one DUMP payload, need not pay for a file-sized buffer.
    pub(crate) fn with_capacity(inner: R, cap: usize) -> Self {
        Input {
            inner,
            buf: vec![0u8; cap.clamp(1, BUF_CAP)].into_boxed_slice(),
            pos: 0,
            end: 0,
            hashed: 0,
            crc: Crc64::new(),
            base: 0,
        }
    }

    /// File offset of the next byte.
    pub(crate) fn offset(&self) -> u64 {
        self.base + self.pos as u64
    }

    fn hash_consumed(&mut self) {
        if let Some(done) = self.buf.get(self.hashed..self.pos) {
            self.crc.update(done);
        }
        self.hashed = self.pos;
    }

    /// Refills an exhausted buffer; false at end of input.
    fn fill(&mut self) -> Result<bool, ReadError> {
        if self.pos < self.end {
            return Ok(true);
        }
        self.hash_consumed();
        self.base += self.end as u64;
        self.pos = 0;
        self.end = 0;
        self.hashed = 0;
        loop {
            match self.inner.read(&mut self.buf) {
                Ok(n) => {
                    self.end = n.min(self.buf.len());
                    return Ok(n > 0);
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(ReadError::Io {
                        offset: self.offset(),
                        source: e,
                    })
                }
            }
        }
    }

    fn truncated(&self, what: &'static str) -> ReadError {
        ReadError::Truncated {
            offset: self.offset(),
            what,
        }
    }

    /// The bytes available in the buffer, refilling it when empty.
    fn available(&mut self, what: &'static str) -> Result<&[u8], ReadError> {
        if !self.fill()? {
            return Err(self.truncated(what));
        }
        Ok(self.buf.get(self.pos..self.end).unwrap_or_default())
    }

    pub(crate) fn u8(&mut self, what: &'static str) -> Result<u8, ReadError> {
        let b = self.available(what)?.first().copied();
        let b = b.ok_or_else(|| self.truncated(what))?;
        self.pos += 1;
        Ok(b)
    }

    /// Fills `out` completely.
    pub(crate) fn exact(&mut self, out: &mut [u8], what: &'static str) -> Result<(), ReadError> {
        let mut done = 0;
        while done < out.len() {
            let avail = self.available(what)?;
            let n = avail.len().min(out.len() - done);
            if let (Some(dst), Some(src)) = (out.get_mut(done..done + n), avail.get(..n)) {
                dst.copy_from_slice(src);
            }
            self.pos += n;
            done += n;
        }
        Ok(())
    }

    pub(crate) fn array<const N: usize>(
        &mut self,
        what: &'static str,
    ) -> Result<[u8; N], ReadError> {
        let mut a = [0u8; N];
        self.exact(&mut a, what)?;
        Ok(a)
    }

    /// Appends exactly `len` bytes to `out`, growing it only as data arrives.
    pub(crate) fn take_into(
        &mut self,
        len: u64,
        out: &mut Vec<u8>,
        what: &'static str,
    ) -> Result<(), ReadError> {
        let mut left = len;
        while left > 0 {
            let avail = self.available(what)?;
            let n = avail.len().min(usize::try_from(left).unwrap_or(usize::MAX));
            if out.capacity() - out.len() < n {
                let want = usize::try_from(left).unwrap_or(usize::MAX).min(GROW_STEP);
                out.reserve(want.max(n));
            }
            out.extend_from_slice(avail.get(..n).unwrap_or_default());
            self.pos += n;
            left -= n as u64;
        }
        Ok(())
    }

    /// Skips `len` bytes.
    pub(crate) fn skip(&mut self, len: u64, what: &'static str) -> Result<(), ReadError> {
        let mut left = len;
        while left > 0 {
            let avail = self.available(what)?.len();
            let n = avail.min(usize::try_from(left).unwrap_or(usize::MAX));
            self.pos += n;
            left -= n as u64;
        }
        Ok(())
    }

    /// The CRC-64 of every byte consumed so far.
    pub(crate) fn crc(&mut self) -> u64 {
        self.hash_consumed();
        self.crc.finish()
    }

    /// True when no byte is left.
    pub(crate) fn at_end(&mut self) -> Result<bool, ReadError> {
        Ok(!self.fill()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crc::crc64;

    /// A reader handing out at most `chunk` bytes per call.
    struct Dribble<'a> {
        data: &'a [u8],
        chunk: usize,
    }
    impl Read for Dribble<'_> {
        fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
            let n = self.data.len().min(self.chunk).min(out.len());
            out[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    #[test]
    fn crc_offsets_and_reads_across_refills() {
        let data: Vec<u8> = (0..700_000u32).map(|i| (i * 7 + i / 300) as u8).collect();
        for chunk in [1, 7, 4096, BUF_CAP, 1 << 20] {
            let mut inp = Input::new(Dribble { data: &data, chunk });
            assert_eq!(inp.u8("a").unwrap(), data[0]);
            let mut v = Vec::new();
            inp.take_into(300_000, &mut v, "b").unwrap();
            assert_eq!(v, data[1..300_001]);
            inp.skip(100_000, "c").unwrap();
            let a: [u8; 3] = inp.array("d").unwrap();
            assert_eq!(a, data[400_001..400_004]);
            assert_eq!(inp.offset(), 400_004);
            assert_eq!(inp.crc(), crc64(&data[..400_004]));
            inp.skip(299_990, "e").unwrap();
            assert_eq!(inp.crc(), crc64(&data[..699_994]));
            assert!(!inp.at_end().unwrap());
            let err = inp.take_into(10, &mut v, "tail").unwrap_err();
            assert!(
                matches!(
                    err,
                    ReadError::Truncated {
                        offset: 700_000,
                        what: "tail"
                    }
                ),
                "{err:?}"
            );
            assert!(inp.at_end().unwrap());
        }
    }

    #[test]
    fn huge_lengths_do_not_allocate_ahead() {
        let data = [1u8; 10];
        let mut inp = Input::new(&data[..]);
        let mut v = Vec::new();
        assert!(inp.take_into(u64::MAX, &mut v, "x").is_err());
        assert!(v.capacity() <= GROW_STEP.max(BUF_CAP));
        assert!(inp.skip(u64::MAX, "x").is_err());
    }
}
