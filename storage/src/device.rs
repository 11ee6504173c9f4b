//! The block device model every backend, view and consumer shares.

use alloc::rc::Rc;

use lunbox_platform::coroutine::Mutex;

use crate::error::StorageError;

/// The logical block size lunbox uses today; devices report theirs so 4096 can come later.
pub const BLOCK_SIZE: u32 = 512;

/// A device of fixed-size logical blocks addressed by a `u64` block index (LBA).
///
/// Methods that move data take whole blocks: a buffer's length must be a multiple of
/// [`BlockDevice::block_size`]. Implementations check ranges with [`check_io`] and never
/// access a block outside `0..num_blocks()`.
pub trait BlockDevice {
    /// Bytes per logical block (512 today).
    fn block_size(&self) -> u32;

    /// Number of blocks; 0 when no medium is present.
    fn num_blocks(&self) -> u64;

    /// Read `buf.len() / block_size` blocks starting at `lba` into `buf`.
    fn read(&mut self, lba: u64, buf: &mut [u8]) -> Result<(), StorageError>;

    /// Write `buf.len() / block_size` blocks starting at `lba` from `buf`.
    fn write(&mut self, lba: u64, buf: &[u8]) -> Result<(), StorageError>;

    /// Make every completed write durable (fsync on host files, cache flush on cards).
    fn flush(&mut self) -> Result<(), StorageError>;

    /// Whether writes are refused.
    fn is_read_only(&self) -> bool;

    /// Whether a medium is present (removable media can be absent).
    fn media_present(&self) -> bool {
        true
    }

    /// Whether the medium changed since the last call (and forget it): a card swapped, an
    /// image replaced. Consumers (the UMS LUN) turn this into UNIT ATTENTION.
    fn take_media_changed(&mut self) -> bool {
        false
    }
}

/// A device shared between its users (UMS, DFU, the console, partition views): a coroutine
/// mutex serialises them, and an operation may block (an SD card yields while it waits).
pub type DeviceRef = Rc<Mutex<dyn BlockDevice>>;

/// Wrap a device for sharing.
pub fn share<D: BlockDevice + 'static>(device: D) -> DeviceRef {
    Rc::new(Mutex::new(device))
}

/// Check a transfer of `len` bytes at `lba` against a device of `capacity` blocks of
/// `block_size` bytes. Returns the number of blocks.
pub fn check_io(lba: u64, len: usize, block_size: u32, capacity: u64) -> Result<u64, StorageError> {
    let bs = block_size as usize;
    if bs == 0 || !len.is_multiple_of(bs) {
        return Err(StorageError::BadLength { len, block_size });
    }
    let count = (len / bs) as u64;
    match lba.checked_add(count) {
        Some(end) if end <= capacity => Ok(count),
        _ => Err(StorageError::OutOfRange {
            lba,
            count,
            capacity,
        }),
    }
}

/// Check a write like [`check_io`], refusing it on a read-only device first.
pub fn check_write(
    lba: u64,
    len: usize,
    block_size: u32,
    capacity: u64,
    read_only: bool,
) -> Result<u64, StorageError> {
    if read_only {
        return Err(StorageError::ReadOnly);
    }
    check_io(lba, len, block_size, capacity)
}
