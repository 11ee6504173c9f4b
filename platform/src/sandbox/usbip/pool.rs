//! Payload buffers kept for reuse. Every bulk URB carries up to 120 KiB (Linux usb-storage's
//! largest transfer at high speed): allocated fresh for each one, glibc gave the memory back to
//! the kernel between URBs (its heap trims above 128 KiB free) and took it again for the next,
//! so each URB paid page faults and the kernel's zeroing of 30 pages. With the buffers kept
//! here, a Linux guest under QEMU wrote 54 MB/s through lunbox instead of 46.

use std::vec::Vec;

/// Buffers smaller than this are left to the allocator (small blocks it reuses cheaply).
const MIN_KEPT: usize = 4096;
/// Buffers larger than this are not kept (one odd huge URB must not pin its memory).
const MAX_KEPT: usize = 1 << 20;
/// Buffers kept at most: enough for the URBs a client keeps in flight on a busy bus.
const KEEP: usize = 8;

/// A small stack of empty buffers with their capacity.
#[derive(Debug, Default)]
pub(crate) struct BufferPool {
    free: Vec<Vec<u8>>,
}

impl BufferPool {
    /// An empty buffer with room for at least `capacity` bytes: a kept one if the request is
    /// not small and one is large enough, else a new one.
    pub(crate) fn take(&mut self, capacity: usize) -> Vec<u8> {
        if capacity < MIN_KEPT {
            return Vec::with_capacity(capacity);
        }
        match self.free.iter().rposition(|b| b.capacity() >= capacity) {
            Some(i) => self.free.swap_remove(i),
            None => Vec::with_capacity(capacity),
        }
    }

    /// Keep `buf` for a later [`Self::take`] (emptied), unless it is small, huge or the pool
    /// is full.
    pub(crate) fn give(&mut self, mut buf: Vec<u8>) {
        if (MIN_KEPT..=MAX_KEPT).contains(&buf.capacity()) && self.free.len() < KEEP {
            buf.clear();
            self.free.push(buf);
        }
    }

    /// How many buffers are kept.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.free.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_given_buffer_comes_back_empty_for_a_request_it_fits() {
        let mut pool = BufferPool::default();
        let mut buf = pool.take(120 * 1024);
        assert!(buf.capacity() >= 120 * 1024);
        buf.extend_from_slice(&[7; 1000]);
        let at = buf.as_ptr();
        pool.give(buf);
        assert_eq!(pool.len(), 1);
        // Too large a request gets a new buffer and leaves the kept one.
        let big = pool.take(200 * 1024);
        assert!(big.capacity() >= 200 * 1024);
        assert_eq!(pool.len(), 1);
        let again = pool.take(64 * 1024);
        assert_eq!(again.as_ptr(), at, "the kept buffer is reused");
        assert!(again.is_empty(), "a reused buffer holds no old bytes");
        assert_eq!(pool.len(), 0);
    }

    #[test]
    fn small_huge_and_surplus_buffers_are_not_kept() {
        let mut pool = BufferPool::default();
        pool.give(Vec::with_capacity(100));
        pool.give(Vec::with_capacity(MAX_KEPT + 1));
        assert_eq!(pool.len(), 0);
        for _ in 0..KEEP + 3 {
            pool.give(Vec::with_capacity(MIN_KEPT));
        }
        assert_eq!(pool.len(), KEEP);
        // A small request does not use up a kept buffer.
        assert!(pool.take(13).capacity() < MIN_KEPT);
        assert_eq!(pool.len(), KEEP);
    }
}
