//! A slot for removable media: the device behind it can be ejected, inserted or swapped
//! while users hold the slot, and the change is reported once through
//! [`BlockDevice::take_media_changed`] (a UMS LUN turns it into UNIT ATTENTION).

use alloc::boxed::Box;

use crate::device::{BLOCK_SIZE, BlockDevice};
use crate::error::StorageError;

/// Removable media: empty, or holding a device.
pub struct MediaSlot {
    medium: Option<Box<dyn BlockDevice>>,
    changed: bool,
    block_size: u32,
}

impl MediaSlot {
    /// An empty slot.
    pub fn empty() -> Self {
        MediaSlot {
            medium: None,
            changed: false,
            block_size: BLOCK_SIZE,
        }
    }

    /// A slot holding `medium`.
    pub fn with(medium: Box<dyn BlockDevice>) -> Self {
        let mut slot = Self::empty();
        slot.insert(medium);
        slot.changed = false;
        slot
    }

    /// Put `medium` in (replacing what was there); returns the old one.
    pub fn insert(&mut self, medium: Box<dyn BlockDevice>) -> Option<Box<dyn BlockDevice>> {
        self.block_size = medium.block_size();
        self.changed = true;
        self.medium.replace(medium)
    }

    /// Take the medium out, flushing it first; returns it (or `None` if the slot was empty).
    /// A failed flush is reported and the medium stays in.
    pub fn eject(&mut self) -> Result<Option<Box<dyn BlockDevice>>, StorageError> {
        if let Some(m) = self.medium.as_mut() {
            m.flush()?;
        }
        let old = self.medium.take();
        self.changed |= old.is_some();
        Ok(old)
    }

    /// Drop the medium without flushing it: it is already gone (a card pulled out). Returns
    /// whether there was one.
    pub fn remove(&mut self) -> bool {
        let had = self.medium.take().is_some();
        self.changed |= had;
        had
    }

    fn medium(&mut self) -> Result<&mut dyn BlockDevice, StorageError> {
        match self.medium.as_deref_mut() {
            Some(m) => Ok(m),
            None => Err(StorageError::NoMedia),
        }
    }
}

impl BlockDevice for MediaSlot {
    fn block_size(&self) -> u32 {
        self.block_size
    }

    fn num_blocks(&self) -> u64 {
        self.medium.as_ref().map_or(0, |m| m.num_blocks())
    }

    fn read(&mut self, lba: u64, buf: &mut [u8]) -> Result<(), StorageError> {
        self.medium()?.read(lba, buf)
    }

    fn write(&mut self, lba: u64, buf: &[u8]) -> Result<(), StorageError> {
        self.medium()?.write(lba, buf)
    }

    fn flush(&mut self) -> Result<(), StorageError> {
        self.medium()?.flush()
    }

    fn is_read_only(&self) -> bool {
        self.medium.as_ref().is_some_and(|m| m.is_read_only())
    }

    fn media_present(&self) -> bool {
        self.medium.as_ref().is_some_and(|m| m.media_present())
    }

    fn take_media_changed(&mut self) -> bool {
        let inner = self.medium.as_mut().is_some_and(|m| m.take_media_changed());
        core::mem::take(&mut self.changed) | inner
    }
}
