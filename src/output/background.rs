//! `BackgroundWriter`: a file's bytes written by a thread of their own.
//!
//! Writing a big dump costs the kernel a copy of every byte into the page cache, time the
//! thread that encodes keys would otherwise spend waiting in `write(2)`. The writer takes
//! buffers of [`CHUNK`] bytes through a bounded queue and writes them in order on its own
//! thread, handing each buffer back to be filled again, so at most [`IN_FLIGHT`] + 2
//! buffers exist at once. A write error stops the thread; the next write or the final
//! [`BackgroundWriter::into_inner`] returns it.

use std::io::{self, Write};
use std::sync::mpsc::{channel, sync_channel, Receiver, SyncSender};
use std::thread::JoinHandle;

/// Bytes gathered before a buffer is handed to the writing thread.
const CHUNK: usize = 1 << 20;
/// Buffers queued for the writing thread at most.
const IN_FLIGHT: usize = 4;

/// A writer whose bytes reach `W` on another thread, in order.
pub struct BackgroundWriter<W: Write + Send + 'static> {
    buf: Vec<u8>,
    /// `None` once the thread has been told to stop.
    to: Option<SyncSender<Vec<u8>>>,
    /// Emptied buffers coming back.
    back: Receiver<Vec<u8>>,
    thread: Option<JoinHandle<io::Result<W>>>,
}

impl<W: Write + Send + 'static> BackgroundWriter<W> {
    /// Starts the thread writing into `inner`; falls back to an error when no thread can
    /// be started.
    pub fn new(mut inner: W) -> io::Result<Self> {
        let (to, from) = sync_channel::<Vec<u8>>(IN_FLIGHT);
        let (give_back, back) = channel::<Vec<u8>>();
        let thread = std::thread::Builder::new()
            .name("write-output".into())
            .spawn(move || {
                for mut buf in from {
                    inner.write_all(&buf)?;
                    buf.clear();
                    // The other side may be gone (finished or failed): the buffer is
                    // then dropped here.
                    let _ = give_back.send(buf);
                }
                inner.flush()?;
                Ok(inner)
            })?;
        Ok(BackgroundWriter {
            buf: Vec::with_capacity(CHUNK),
            to: Some(to),
            back,
            thread: Some(thread),
        })
    }

    /// Hands the gathered bytes to the thread, taking back an emptied buffer if one is
    /// there.
    fn hand_over(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let next = self
            .back
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(CHUNK));
        let full = std::mem::replace(&mut self.buf, next);
        let sent = self.to.as_ref().map(|to| to.send(full).is_ok());
        if sent == Some(true) {
            return Ok(());
        }
        // The thread stopped on an error: say which.
        Err(self
            .stop()
            .err()
            .unwrap_or_else(|| io::Error::other("the output's writing thread stopped early")))
    }

    /// Tells the thread to finish and waits for it: the inner writer, or the first error.
    fn stop(&mut self) -> io::Result<W> {
        self.to = None;
        match self.thread.take() {
            Some(t) => t
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("the output's writing thread panicked"))),
            None => Err(io::Error::other(
                "the output's writing thread already stopped",
            )),
        }
    }

    /// Writes out everything and returns the inner writer (flushed), or the first error.
    pub fn into_inner(mut self) -> io::Result<W> {
        self.hand_over()?;
        self.stop()
    }
}

impl<W: Write + Send + 'static> Write for BackgroundWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.hand_over()?;
        }
        Ok(data.len())
    }

    /// Hands over what is gathered; the bytes reach the inner writer soon after, and
    /// [`BackgroundWriter::into_inner`] waits for them.
    fn flush(&mut self) -> io::Result<()> {
        self.hand_over()
    }
}

impl<W: Write + Send + 'static> Drop for BackgroundWriter<W> {
    fn drop(&mut self) {
        if self.thread.is_some() {
            let _ = self.stop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_arrive_in_order_across_many_chunks() {
        let mut w = BackgroundWriter::new(Vec::new()).expect("thread");
        let mut want = Vec::new();
        for i in 0..3 * CHUNK / 1000 + 7 {
            let piece: Vec<u8> = (0..1000).map(|j| ((i * 7 + j) % 251) as u8).collect();
            w.write_all(&piece).expect("write");
            want.extend_from_slice(&piece);
        }
        w.flush().expect("flush");
        w.write_all(b"tail").expect("write");
        want.extend_from_slice(b"tail");
        assert_eq!(w.into_inner().expect("finish"), want);
    }

    /// Fails every write after `ok` bytes.
    struct FailAfter {
        ok: usize,
    }

    impl Write for FailAfter {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            if self.ok < b.len() {
                return Err(io::Error::other("disk full"));
            }
            self.ok -= b.len();
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_write_error_reaches_the_caller() {
        let mut w = BackgroundWriter::new(FailAfter { ok: CHUNK }).expect("thread");
        let chunk = vec![1u8; CHUNK];
        let mut failed = None;
        for _ in 0..IN_FLIGHT + 4 {
            if let Err(e) = w.write_all(&chunk) {
                failed = Some(e);
                break;
            }
        }
        let err = match failed {
            Some(e) => e,
            None => w.into_inner().err().expect("an error at the end at least"),
        };
        assert!(err.to_string().contains("disk full"), "{err}");
    }
}
