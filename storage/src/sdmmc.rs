//! embedded-sdmmc interop, both ways: its block devices (the SPI `SdCard`) as lunbox backends,
//! and lunbox devices and partitions as its block devices, so its `VolumeManager` can read FAT
//! volumes for the console.

use alloc::vec;
use alloc::vec::Vec;

use embedded_sdmmc::{Block, BlockCount, BlockIdx, TimeSource, Timestamp};

use crate::device::{BLOCK_SIZE, BlockDevice, DeviceRef, check_io, check_write};
use crate::error::{IoOp, StorageError};

/// Blocks moved per call into an embedded-sdmmc device (multi-block transfers on a card).
const CHUNK: usize = 8;

/// Any [`embedded_sdmmc::BlockDevice`] (for example its SPI `SdCard`) as a lunbox device.
pub struct SdmmcBackend<D> {
    dev: D,
    blocks: u64,
    read_only: bool,
    scratch: Vec<Block>,
    /// Called after a failed transfer, before the failing block is looked for (an SD card
    /// re-initialises itself on the next access, so a half-finished transfer cannot wedge it).
    on_error: Option<fn(&D)>,
}

impl<D: embedded_sdmmc::BlockDevice> SdmmcBackend<D> {
    /// Wrap `dev`, asking it for its size (a card initialises here).
    pub fn new(dev: D) -> Result<Self, D::Error> {
        let blocks = u64::from(dev.num_blocks()?.0);
        Ok(SdmmcBackend {
            dev,
            blocks,
            read_only: false,
            scratch: vec![Block::new(); CHUNK],
            on_error: None,
        })
    }

    /// Call `hook` on the device after every failed transfer.
    pub fn on_error(mut self, hook: fn(&D)) -> Self {
        self.on_error = Some(hook);
        self
    }

    /// Refuse (or allow) writes.
    pub fn set_read_only(&mut self, read_only: bool) {
        self.read_only = read_only;
    }

    /// The wrapped device.
    pub fn inner(&self) -> &D {
        &self.dev
    }
}

fn io(lba: u64, op: IoOp) -> StorageError {
    StorageError::Io {
        lba,
        op,
        reason: "block device error",
    }
}

impl<D: embedded_sdmmc::BlockDevice> BlockDevice for SdmmcBackend<D> {
    fn block_size(&self) -> u32 {
        BLOCK_SIZE
    }

    fn num_blocks(&self) -> u64 {
        self.blocks
    }

    fn read(&mut self, lba: u64, buf: &mut [u8]) -> Result<(), StorageError> {
        check_io(lba, buf.len(), BLOCK_SIZE, self.blocks)?;
        let SdmmcBackend {
            dev,
            scratch,
            on_error,
            ..
        } = self;
        read_chunks(scratch, lba, buf, &mut |blocks, at| {
            checked(dev.read(blocks, BlockIdx(at)).is_ok(), dev, *on_error)
        })
    }

    fn write(&mut self, lba: u64, buf: &[u8]) -> Result<(), StorageError> {
        check_write(lba, buf.len(), BLOCK_SIZE, self.blocks, self.read_only)?;
        let SdmmcBackend {
            dev,
            scratch,
            on_error,
            ..
        } = self;
        write_chunks(scratch, lba, buf, &mut |blocks, at| {
            checked(dev.write(blocks, BlockIdx(at)).is_ok(), dev, *on_error)
        })
    }

    fn flush(&mut self) -> Result<(), StorageError> {
        // embedded-sdmmc devices write through: a write returns once the card accepted it.
        Ok(())
    }

    fn is_read_only(&self) -> bool {
        self.read_only
    }
}

/// `ok`, after calling `hook` on `dev` when it is false (see [`SdmmcBackend::on_error`]).
fn checked<D>(ok: bool, dev: &D, hook: Option<fn(&D)>) -> bool {
    if !ok && let Some(hook) = hook {
        hook(dev);
    }
    ok
}

/// `buf` read from block `lba` on, [`CHUNK`] blocks per `dev` call through `scratch`; after a
/// failed call, block by block to find the failing one. `dev` reads blocks at an index and
/// says whether it could. Not generic: one copy serves every device type. The range was
/// checked, and the device's size came from a u32, so every index fits a u32.
fn read_chunks(
    scratch: &mut [Block],
    lba: u64,
    buf: &mut [u8],
    dev: &mut dyn FnMut(&mut [Block], u32) -> bool,
) -> Result<(), StorageError> {
    for (i, chunk) in buf.chunks_mut(CHUNK * Block::LEN).enumerate() {
        let at = lba + (i * CHUNK) as u64;
        let n = chunk.len() / Block::LEN;
        if !dev(&mut scratch[..n], at as u32) {
            // Find the failing block, one at a time, delivering the good ones before it.
            for (j, dst) in chunk.chunks_exact_mut(Block::LEN).enumerate() {
                let block = at + j as u64;
                let one = &mut scratch[..1];
                if !dev(one, block as u32) {
                    return Err(io(block, IoOp::Read));
                }
                dst.copy_from_slice(&one[0].contents);
            }
            continue; // a passing fault: every block read fine on its own
        }
        for (dst, src) in chunk.chunks_exact_mut(Block::LEN).zip(scratch.iter()) {
            dst.copy_from_slice(&src.contents);
        }
    }
    Ok(())
}

/// `buf` written from block `lba` on, as [`read_chunks`] reads: after a failed call, block
/// by block to learn which one fails (writes are idempotent).
fn write_chunks(
    scratch: &mut [Block],
    lba: u64,
    buf: &[u8],
    dev: &mut dyn FnMut(&mut [Block], u32) -> bool,
) -> Result<(), StorageError> {
    for (i, chunk) in buf.chunks(CHUNK * Block::LEN).enumerate() {
        let at = lba + (i * CHUNK) as u64;
        let n = chunk.len() / Block::LEN;
        let blocks = &mut scratch[..n];
        for (dst, src) in blocks.iter_mut().zip(chunk.chunks_exact(Block::LEN)) {
            dst.contents.copy_from_slice(src);
        }
        if !dev(blocks, at as u32) {
            for (j, src) in chunk.chunks_exact(Block::LEN).enumerate() {
                let block = at + j as u64;
                let one = &mut scratch[..1];
                one[0].contents.copy_from_slice(src);
                if !dev(one, block as u32) {
                    return Err(io(block, IoOp::Write));
                }
            }
        }
    }
    Ok(())
}

/// A lunbox device as an [`embedded_sdmmc::BlockDevice`], for its `VolumeManager`.
///
/// embedded-sdmmc only opens volumes listed in an MBR. A whole disk with an MBR is passed
/// through ([`SdmmcDevice::disk`]); a partition or a disk that is a bare filesystem is
/// presented behind a synthetic one-entry MBR at block 0 ([`SdmmcDevice::volume`]), so it is
/// volume 0.
pub struct SdmmcDevice {
    dev: DeviceRef,
    synthetic_mbr: Option<Vec<u8>>,
}

/// Why a device cannot be handed to embedded-sdmmc.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SdmmcDeviceError {
    /// embedded-sdmmc works with 512-byte blocks only.
    BlockSize(u32),
    /// It addresses blocks with 32 bits (2 TiB).
    TooLarge(u64),
}

impl core::fmt::Display for SdmmcDeviceError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            SdmmcDeviceError::BlockSize(bs) => {
                write!(f, "FAT access needs 512-byte blocks, this device has {bs}")
            }
            SdmmcDeviceError::TooLarge(b) => {
                write!(
                    f,
                    "FAT access is limited to 2 TiB, this device has {b} blocks"
                )
            }
        }
    }
}

impl SdmmcDevice {
    /// Pass `dev` through as it is (it has its own MBR).
    pub fn disk(dev: DeviceRef) -> Result<Self, SdmmcDeviceError> {
        Self::check(&dev, 0)?;
        Ok(SdmmcDevice {
            dev,
            synthetic_mbr: None,
        })
    }

    /// Present `dev` (a partition, or a disk formatted without a table) as volume 0 of a
    /// disk with a synthetic MBR.
    pub fn volume(dev: DeviceRef) -> Result<Self, SdmmcDeviceError> {
        let blocks = Self::check(&dev, 1)?;
        let mut mbr = vec![0u8; Block::LEN];
        let entry = &mut mbr[446..462];
        entry[4] = 0x0C; // FAT32 LBA; embedded-sdmmc reads the real FAT type from the BPB
        entry[8..12].copy_from_slice(&1u32.to_le_bytes());
        entry[12..16].copy_from_slice(&(blocks as u32).to_le_bytes());
        mbr[510] = 0x55;
        mbr[511] = 0xAA;
        Ok(SdmmcDevice {
            dev,
            synthetic_mbr: Some(mbr),
        })
    }

    fn check(dev: &DeviceRef, extra: u64) -> Result<u64, SdmmcDeviceError> {
        let d = dev.lock();
        if d.block_size() != Block::LEN as u32 {
            return Err(SdmmcDeviceError::BlockSize(d.block_size()));
        }
        let blocks = d.num_blocks();
        if blocks + extra > u64::from(u32::MAX) {
            return Err(SdmmcDeviceError::TooLarge(blocks));
        }
        Ok(blocks)
    }

    /// Blocks before the device's first block (the synthetic MBR).
    fn shift(&self) -> u32 {
        u32::from(self.synthetic_mbr.is_some())
    }
}

impl embedded_sdmmc::BlockDevice for SdmmcDevice {
    type Error = StorageError;

    fn read(&self, blocks: &mut [Block], start: BlockIdx) -> Result<(), StorageError> {
        let mut dev = self.dev.lock();
        for (i, block) in blocks.iter_mut().enumerate() {
            let idx = u64::from(start.0) + i as u64;
            match (
                &self.synthetic_mbr,
                idx.checked_sub(u64::from(self.shift())),
            ) {
                (Some(mbr), None) => block.contents.copy_from_slice(mbr),
                (_, Some(lba)) => dev.read(lba, &mut block.contents)?,
                (None, None) => unreachable!("no shift without a synthetic MBR"),
            }
        }
        Ok(())
    }

    fn write(&self, blocks: &[Block], start: BlockIdx) -> Result<(), StorageError> {
        let mut dev = self.dev.lock();
        for (i, block) in blocks.iter().enumerate() {
            let idx = u64::from(start.0) + i as u64;
            match idx.checked_sub(u64::from(self.shift())) {
                Some(lba) => dev.write(lba, &block.contents)?,
                None => return Err(StorageError::ReadOnly), // the synthetic MBR
            }
        }
        Ok(())
    }

    fn num_blocks(&self) -> Result<BlockCount, StorageError> {
        let blocks = self.dev.lock().num_blocks() + u64::from(self.shift());
        Ok(BlockCount(u32::try_from(blocks).unwrap_or(u32::MAX)))
    }
}

/// A clock for FAT timestamps on a machine without a real-time clock: always the given time
/// (lunbox's default is 2026-01-01 00:00:00).
#[derive(Debug, Clone, Copy)]
pub struct FixedTime(pub Timestamp);

impl Default for FixedTime {
    fn default() -> Self {
        FixedTime(Timestamp {
            year_since_1970: 56,
            zero_indexed_month: 0,
            zero_indexed_day: 0,
            hours: 0,
            minutes: 0,
            seconds: 0,
        })
    }
}

impl TimeSource for FixedTime {
    fn get_timestamp(&self) -> Timestamp {
        self.0
    }
}
