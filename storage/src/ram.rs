//! A RAM disk.

use alloc::vec;
use alloc::vec::Vec;

use crate::device::{BLOCK_SIZE, BlockDevice, check_io, check_write};
use crate::error::StorageError;

/// A disk held in memory (lost at reset): its own `Vec` ([`RamDisk::new`]), or a region it is
/// given ([`RamDisk::over`], e.g. the board's OCRAM).
#[derive(Debug, Clone)]
pub struct RamDisk<M = Vec<u8>> {
    data: M,
    read_only: bool,
}

impl<'a> RamDisk<&'a mut [u8]> {
    /// A disk over `memory`, as it is (its whole blocks; a partial block at the end is left
    /// out).
    pub fn over(memory: &'a mut [u8]) -> Self {
        let whole = memory.len() / BLOCK_SIZE as usize * BLOCK_SIZE as usize;
        RamDisk {
            data: &mut memory[..whole],
            read_only: false,
        }
    }
}

impl RamDisk {
    /// A zero-filled disk of `blocks` 512-byte blocks, or `None` if that many bytes cannot be
    /// addressed on this machine.
    pub fn new(blocks: u64) -> Option<Self> {
        let bytes = usize::try_from(blocks)
            .ok()?
            .checked_mul(BLOCK_SIZE as usize)?;
        Some(RamDisk {
            data: vec![0; bytes],
            read_only: false,
        })
    }

    /// A disk holding `image` (its length must be a whole number of blocks).
    pub fn from_image(image: Vec<u8>) -> Result<Self, StorageError> {
        check_io(0, image.len(), BLOCK_SIZE, u64::MAX)?;
        Ok(RamDisk {
            data: image,
            read_only: false,
        })
    }
}

impl<M: AsRef<[u8]> + AsMut<[u8]>> RamDisk<M> {
    /// Refuse (or allow) writes.
    pub fn set_read_only(&mut self, read_only: bool) {
        self.read_only = read_only;
    }

    /// The disk's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        self.data.as_ref()
    }
}

impl<M: AsRef<[u8]> + AsMut<[u8]>> BlockDevice for RamDisk<M> {
    fn block_size(&self) -> u32 {
        BLOCK_SIZE
    }

    fn num_blocks(&self) -> u64 {
        (self.data.as_ref().len() / BLOCK_SIZE as usize) as u64
    }

    fn read(&mut self, lba: u64, buf: &mut [u8]) -> Result<(), StorageError> {
        check_io(lba, buf.len(), BLOCK_SIZE, self.num_blocks())?;
        let start = lba as usize * BLOCK_SIZE as usize;
        buf.copy_from_slice(&self.data.as_ref()[start..start + buf.len()]);
        Ok(())
    }

    fn write(&mut self, lba: u64, buf: &[u8]) -> Result<(), StorageError> {
        check_write(
            lba,
            buf.len(),
            BLOCK_SIZE,
            self.num_blocks(),
            self.read_only,
        )?;
        let start = lba as usize * BLOCK_SIZE as usize;
        self.data.as_mut()[start..start + buf.len()].copy_from_slice(buf);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), StorageError> {
        Ok(())
    }

    fn is_read_only(&self) -> bool {
        self.read_only
    }
}
