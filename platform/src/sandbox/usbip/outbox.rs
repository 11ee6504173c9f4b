//! The bytes waiting to go to a client, as a queue of buffers. A large IN payload is queued
//! as the buffer the device's packets were collected in and goes out with the others in one
//! `writev`: it is not copied into a single byte stream first (on a read of 120 KiB that
//! copy, twice, was most of the server's own work).

use std::collections::VecDeque;
use std::io::{self, IoSlice, Write};
use std::vec::Vec;

/// Small messages share a buffer until it holds this many bytes.
const SHARE_UP_TO: usize = 4096;

/// Most buffers handed to one `writev`.
const MAX_SLICES: usize = 32;

/// A FIFO of bytes to send, kept as the buffers they were made in.
#[derive(Debug, Default)]
pub(crate) struct Outbox {
    bufs: VecDeque<Vec<u8>>,
    /// Bytes of the front buffer already sent.
    sent: usize,
    /// Buffers done with (sent in full, or copied into a shared one), for
    /// [`Self::drain_spent`].
    spent: Vec<Vec<u8>>,
}

impl Outbox {
    /// Whether nothing waits.
    pub(crate) fn is_empty(&self) -> bool {
        self.bufs.is_empty()
    }

    /// Append a small message written by `encode` (it appends to the vector it is given).
    pub(crate) fn encode(&mut self, encode: impl FnOnce(&mut Vec<u8>)) {
        match self.bufs.back_mut() {
            Some(last) if last.len() < SHARE_UP_TO => encode(last),
            _ => {
                let mut buf = Vec::with_capacity(256);
                encode(&mut buf);
                if !buf.is_empty() {
                    self.bufs.push_back(buf);
                }
            }
        }
    }

    /// Append `buf`: queued as it is when large, else copied into a shared buffer.
    pub(crate) fn push(&mut self, buf: Vec<u8>) {
        if buf.len() >= SHARE_UP_TO {
            self.bufs.push_back(buf);
            return;
        }
        if !buf.is_empty() {
            self.encode(|b| b.extend_from_slice(&buf));
        }
        self.spent.push(buf);
    }

    /// Move everything queued in `other` (which must have sent nothing) behind this.
    pub(crate) fn append(&mut self, other: &mut Outbox) {
        debug_assert_eq!(other.sent, 0, "only an unsent outbox is appended");
        if self.bufs.is_empty() {
            self.sent = 0;
        }
        self.bufs.append(&mut other.bufs);
        self.spent.append(&mut other.spent);
        other.sent = 0;
    }

    /// Forget everything.
    pub(crate) fn clear(&mut self) {
        self.bufs.clear();
        self.sent = 0;
    }

    /// The buffers done with since the last call (for reuse: the pool keeps the large ones).
    pub(crate) fn drain_spent(&mut self) -> impl Iterator<Item = Vec<u8>> + '_ {
        self.spent.drain(..)
    }

    /// Write what `w` takes in one `write_vectored` call; returns how many bytes it took.
    pub(crate) fn write_to(&mut self, w: &mut impl Write) -> io::Result<usize> {
        let mut slices = [IoSlice::new(&[]); MAX_SLICES];
        let mut count = 0;
        for (i, buf) in self.bufs.iter().take(MAX_SLICES).enumerate() {
            let from = if i == 0 { self.sent } else { 0 };
            slices[i] = IoSlice::new(&buf[from..]);
            count = i + 1;
        }
        let n = w.write_vectored(&slices[..count])?;
        self.consume(n);
        Ok(n)
    }

    /// Drop the first `n` bytes.
    fn consume(&mut self, mut n: usize) {
        while n > 0 {
            let Some(front) = self.bufs.front() else {
                return;
            };
            let left = front.len() - self.sent;
            if n < left {
                self.sent += n;
                return;
            }
            n -= left;
            if let Some(buf) = self.bufs.pop_front() {
                self.spent.push(buf);
            }
            self.sent = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer taking at most `limit` bytes per call, recording them.
    struct Trickle {
        limit: usize,
        got: Vec<u8>,
    }

    impl Write for Trickle {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let n = buf.len().min(self.limit);
            self.got.extend_from_slice(&buf[..n]);
            Ok(n)
        }

        fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
            let mut n = 0;
            for b in bufs {
                let take = b.len().min(self.limit - n);
                self.got.extend_from_slice(&b[..take]);
                n += take;
                if n == self.limit {
                    break;
                }
            }
            Ok(n)
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn bytes_leave_in_order_whatever_each_write_takes() {
        for limit in [1, 7, 48, 4096, 10_000, 1 << 20] {
            let mut out = Outbox::default();
            let mut want = Vec::new();
            let big: Vec<u8> = (0..9000u32).map(|i| i as u8).collect();
            out.encode(|b| b.extend_from_slice(b"header-1"));
            want.extend_from_slice(b"header-1");
            out.push(big.clone());
            want.extend_from_slice(&big);
            out.push(b"small".to_vec());
            want.extend_from_slice(b"small");
            let mut later = Outbox::default();
            later.encode(|b| b.extend_from_slice(b"later"));
            later.push(vec![7; 5000]);
            out.append(&mut later);
            want.extend_from_slice(b"later");
            want.extend_from_slice(&[7; 5000]);
            assert!(later.is_empty());

            let mut w = Trickle {
                limit,
                got: Vec::new(),
            };
            while !out.is_empty() {
                assert!(out.write_to(&mut w).unwrap() > 0);
            }
            assert_eq!(w.got, want, "limit {limit}");
        }
    }

    #[test]
    fn buffers_come_back_once_done_with() {
        let mut out = Outbox::default();
        out.encode(|b| b.extend_from_slice(&[1; 10]));
        out.push(vec![2; 8000]);
        // A short reply: copied into a shared buffer, so its own is free at once.
        let mut short = Vec::with_capacity(SHARE_UP_TO * 2);
        short.extend_from_slice(&[3; 5]);
        out.push(short);
        let lens = |out: &mut Outbox| out.drain_spent().map(|b| b.len()).collect::<Vec<_>>();
        assert_eq!(lens(&mut out), vec![5], "the short reply's buffer");
        let mut sink = Trickle {
            limit: 5000,
            got: Vec::new(),
        };
        out.write_to(&mut sink).unwrap();
        assert_eq!(
            lens(&mut out),
            vec![10],
            "the first shared buffer, not the large one half sent"
        );
        while !out.is_empty() {
            out.write_to(&mut sink).unwrap();
        }
        assert_eq!(lens(&mut out), vec![8000, 5], "the rest, in order");
        assert_eq!(sink.got.len(), 10 + 8000 + 5);
    }

    #[test]
    fn small_messages_share_a_buffer_and_large_ones_keep_theirs() {
        let mut out = Outbox::default();
        out.encode(|b| b.extend_from_slice(&[1; 48]));
        out.encode(|b| b.extend_from_slice(&[2; 48]));
        assert_eq!(out.bufs.len(), 1);
        let big = vec![3; SHARE_UP_TO];
        let at = big.as_ptr();
        out.push(big);
        assert_eq!(out.bufs.len(), 2);
        assert_eq!(out.bufs[1].as_ptr(), at, "queued, not copied");
        out.encode(|b| b.extend_from_slice(&[4; 48]));
        assert_eq!(out.bufs.len(), 3, "not appended to the large buffer");
        out.clear();
        assert!(out.is_empty());
    }
}
