//! Bounded views of a device: what a partition is.

use crate::device::{BlockDevice, DeviceRef, check_io, check_write};
use crate::error::StorageError;

/// Blocks `start .. start + len` of a parent device, as a device of its own.
///
/// Every access is checked against the view's bounds before it reaches the parent, so a view
/// never touches a block outside its range; a read-only view refuses writes whatever the
/// parent allows.
pub struct View {
    parent: DeviceRef,
    start: u64,
    len: u64,
    block_size: u32,
    read_only: bool,
}

impl View {
    /// A view of `len` blocks from `start`; `None` if that range does not fit the parent.
    pub fn new(parent: DeviceRef, start: u64, len: u64, read_only: bool) -> Option<View> {
        let end = start.checked_add(len)?;
        let (blocks, block_size) = {
            let p = parent.lock();
            (p.num_blocks(), p.block_size())
        };
        if end > blocks {
            return None;
        }
        Some(View {
            parent,
            start,
            len,
            block_size,
            read_only,
        })
    }

    /// First parent block of the view.
    pub fn start(&self) -> u64 {
        self.start
    }

    /// Make the view read-only (or writable again, if the parent allows).
    pub fn set_read_only(&mut self, read_only: bool) {
        self.read_only = read_only;
    }
}

impl BlockDevice for View {
    fn block_size(&self) -> u32 {
        self.block_size
    }

    fn num_blocks(&self) -> u64 {
        self.len
    }

    fn read(&mut self, lba: u64, buf: &mut [u8]) -> Result<(), StorageError> {
        check_io(lba, buf.len(), self.block_size, self.len)?;
        let mut parent = self.parent.lock();
        // In range of the view, so `start + lba` is in range of the parent (checked in `new`).
        parent
            .read(self.start + lba, buf)
            .map_err(|e| self.relative(e))
    }

    fn write(&mut self, lba: u64, buf: &[u8]) -> Result<(), StorageError> {
        let mut parent = self.parent.lock();
        let read_only = self.read_only || parent.is_read_only();
        check_write(lba, buf.len(), self.block_size, self.len, read_only)?;
        parent
            .write(self.start + lba, buf)
            .map_err(|e| self.relative(e))
    }

    fn flush(&mut self) -> Result<(), StorageError> {
        self.parent.lock().flush().map_err(|e| self.relative(e))
    }

    fn is_read_only(&self) -> bool {
        self.read_only || self.parent.lock().is_read_only()
    }

    fn media_present(&self) -> bool {
        self.parent.lock().media_present()
    }
}

impl View {
    /// Report a parent's failing block relative to the view.
    fn relative(&self, e: StorageError) -> StorageError {
        match e {
            StorageError::Io { lba, op, reason } => StorageError::Io {
                lba: lba.saturating_sub(self.start),
                op,
                reason,
            },
            other => other,
        }
    }
}
