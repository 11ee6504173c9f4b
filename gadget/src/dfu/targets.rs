//! DFU targets (the policy side): block devices written as data arrives or staged and
//! written at manifestation, and a generic sink the app provides (the firmware file).
//!
//! Flags, as in barebox's DFU target lists: `r` allows UPLOAD (read back), `s` (safe)
//! stages the whole download and writes the device only at manifestation.

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;

use lunbox_platform::coroutine::{self, Instant};
use lunbox_storage::{BlockDevice, DeviceRef, StorageError};

use super::protocol::MAX_POLL_TIMEOUT_MS;
use super::{DfuError, DfuTarget, Progress};

/// The staging limit of a safe [`BlockTarget`] unless set with
/// [`BlockTarget::with_stage_limit`]: 256 KiB, which the Teensy 4.1's RAM can spare (the
/// sandbox can afford far more).
pub const DEFAULT_STAGE_LIMIT: usize = 256 * 1024;

/// Bytes a safe target writes per pump step at manifestation (whole blocks).
const MANIFEST_CHUNK: usize = 16 * 1024;

/// A target's flags.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TargetFlags {
    /// `r`: UPLOAD may read the target.
    pub read: bool,
    /// `s`: stage the download and write it at manifestation (safe).
    pub safe: bool,
}

impl TargetFlags {
    /// Flags from their letters (`""`, `"r"`, `"s"`, `"rs"`, …); the first unknown letter is
    /// the error.
    pub fn parse(letters: &str) -> Result<Self, char> {
        let mut f = TargetFlags::default();
        for c in letters.chars() {
            match c {
                'r' => f.read = true,
                's' => f.safe = true,
                other => return Err(other),
            }
        }
        Ok(f)
    }
}

/// A storage error while writing (or read-modify-writing) as a DFU status.
fn write_error(e: StorageError) -> DfuError {
    match e {
        StorageError::OutOfRange { .. } => DfuError::Address,
        _ => DfuError::Write,
    }
}

/// A storage error while reading for UPLOAD as a DFU status.
fn read_error(e: StorageError) -> DfuError {
    match e {
        StorageError::OutOfRange { .. } => DfuError::Address,
        _ => DfuError::Unknown,
    }
}

/// Check that the device still has the geometry the download started with and holds
/// `end` bytes.
fn check_geometry(dev: &dyn BlockDevice, block_size: usize, end: u64) -> Result<(), DfuError> {
    if dev.block_size() as usize != block_size {
        return Err(DfuError::Target);
    }
    if dev.num_blocks().saturating_mul(block_size as u64) < end {
        return Err(DfuError::Address);
    }
    Ok(())
}

/// Manifestation progress of a safe target.
#[derive(Debug, Clone, Copy)]
struct Manifest {
    /// Staged bytes written to the device so far.
    written: usize,
    started: Instant,
}

/// A block device (a disk, a partition view) as a DFU target.
///
/// - **Direct** (no `s` flag): each block is written as the download reaches its end;
///   the partial block at the end of the download is read, patched and written at
///   manifestation, which then flushes the device. The device holds whatever arrived before
///   an ABORT or error.
/// - **Safe** (`s`): the whole image is staged in RAM, up to the stage limit
///   ([`DEFAULT_STAGE_LIMIT`] unless [`BlockTarget::with_stage_limit`]), and written at
///   manifestation, 16 KiB per pump step, then flushed. A download aborted or failed
///   before manifestation leaves the device untouched (a write error during manifestation
///   leaves it partly written). A download larger than the limit (or than the memory the
///   allocator can give) fails with errADDRESS.
///
/// Either way a download larger than the device fails with errADDRESS (nothing of the
/// DNLOAD block that crosses the end is written), and one to a read-only device (or without a medium)
/// with errWRITE. Bytes of the last block beyond the image keep their old contents.
///
/// Upload (`r`) reads the device, from block 0 to its end: the last UPLOAD is short (empty if
/// the size is a multiple of the transfer size). In safe mode the staged image is not
/// visible until manifestation.
pub struct BlockTarget {
    name: String,
    dev: DeviceRef,
    flags: TargetFlags,
    stage_limit: usize,
    /// Block size and capacity in bytes when the download began.
    block_size: usize,
    capacity: u64,
    /// The next download offset.
    next: u64,
    /// Direct: the block being filled (it starts at `next - held.len()`).
    held: Vec<u8>,
    /// Safe: the image so far.
    staged: Vec<u8>,
    /// Safe: manifestation in progress.
    manifest: Option<Manifest>,
    /// Whole blocks for reads and read-modify-writes.
    scratch: Vec<u8>,
}

impl BlockTarget {
    /// A target called `name` over `dev`.
    pub fn new(name: impl Into<String>, dev: DeviceRef, flags: TargetFlags) -> Self {
        BlockTarget {
            name: name.into(),
            dev,
            flags,
            stage_limit: DEFAULT_STAGE_LIMIT,
            block_size: 0,
            capacity: 0,
            next: 0,
            held: Vec::new(),
            staged: Vec::new(),
            manifest: None,
            scratch: Vec::new(),
        }
    }

    /// Set the largest image a safe target stages (bytes).
    pub fn with_stage_limit(mut self, bytes: usize) -> Self {
        self.stage_limit = bytes;
        self
    }

    /// The flags.
    pub fn flags(&self) -> TargetFlags {
        self.flags
    }

    /// Forget the download in progress.
    fn clear(&mut self) {
        self.next = 0;
        self.held.clear();
        self.staged = Vec::new();
        self.manifest = None;
    }

    fn write_direct(&mut self, data: &[u8]) -> Result<(), DfuError> {
        let bs = self.block_size;
        let end = self.next + data.len() as u64;
        let mut dev = self.dev.lock();
        check_geometry(&*dev, bs, end)?;
        let mut data = data;
        while !data.is_empty() {
            let take = (bs - self.held.len()).min(data.len());
            self.held.extend_from_slice(&data[..take]);
            data = &data[take..];
            self.next += take as u64;
            if self.held.len() == bs {
                let lba = (self.next - bs as u64) / bs as u64;
                dev.write(lba, &self.held).map_err(write_error)?;
                self.held.clear();
            }
        }
        Ok(())
    }

    /// Direct manifestation: the partial last block, then a flush.
    fn finish_direct(&mut self) -> Result<Progress, DfuError> {
        let bs = self.block_size;
        let mut dev = self.dev.lock();
        if !self.held.is_empty() {
            let start = self.next - self.held.len() as u64;
            check_geometry(&*dev, bs, start + bs as u64)?;
            let lba = start / bs as u64;
            self.scratch.resize(bs, 0);
            dev.read(lba, &mut self.scratch).map_err(write_error)?;
            self.scratch[..self.held.len()].copy_from_slice(&self.held);
            dev.write(lba, &self.scratch).map_err(write_error)?;
            self.held.clear();
        }
        dev.flush().map_err(write_error)?;
        Ok(Progress::Done)
    }

    /// Safe manifestation: one chunk of the staged image (or its partial last block), and
    /// the flush after the last.
    fn manifest_step(&mut self) -> Result<Progress, DfuError> {
        let Some(mut m) = self.manifest else {
            return Ok(Progress::Done);
        };
        let bs = self.block_size;
        let total = self.staged.len();
        let mut dev = self.dev.lock();
        check_geometry(&*dev, bs, (total as u64).next_multiple_of(bs as u64))?;
        let left = total - m.written;
        let chunk = (MANIFEST_CHUNK / bs).max(1) * bs;
        let whole = (left - left % bs).min(chunk);
        let lba = (m.written / bs) as u64;
        if whole > 0 {
            dev.write(lba, &self.staged[m.written..m.written + whole])
                .map_err(write_error)?;
            m.written += whole;
        } else if left > 0 {
            self.scratch.resize(bs, 0);
            dev.read(lba, &mut self.scratch).map_err(write_error)?;
            self.scratch[..left].copy_from_slice(&self.staged[m.written..]);
            dev.write(lba, &self.scratch).map_err(write_error)?;
            m.written = total;
        }
        if m.written < total {
            self.manifest = Some(m);
            let elapsed = coroutine::now() - m.started;
            return Ok(Progress::Pending {
                poll_timeout_ms: estimate_ms(elapsed.as_nanos(), m.written, total - m.written),
            });
        }
        dev.flush().map_err(write_error)?;
        drop(dev);
        self.clear();
        Ok(Progress::Done)
    }
}

/// Milliseconds to write `left` more bytes at the pace of `done` bytes in `elapsed_ns`,
/// plus one for the flush; at least 1, at most what bwPollTimeout holds.
fn estimate_ms(elapsed_ns: u128, done: usize, left: usize) -> u32 {
    let ns = elapsed_ns * left as u128 / (done.max(1) as u128);
    let ms = ns.div_ceil(1_000_000) + 1;
    u32::try_from(ms)
        .unwrap_or(MAX_POLL_TIMEOUT_MS)
        .min(MAX_POLL_TIMEOUT_MS)
}

impl DfuTarget for BlockTarget {
    fn name(&self) -> &str {
        &self.name
    }

    fn can_upload(&self) -> bool {
        self.flags.read
    }

    fn begin_download(&mut self) -> Result<(), DfuError> {
        self.clear();
        let dev = self.dev.lock();
        if dev.is_read_only() || !dev.media_present() {
            return Err(DfuError::Write);
        }
        let bs = dev.block_size() as usize;
        if bs == 0 {
            return Err(DfuError::Target);
        }
        self.block_size = bs;
        self.capacity = dev.num_blocks().saturating_mul(bs as u64);
        Ok(())
    }

    fn write(&mut self, offset: u64, data: &[u8]) -> Result<Progress, DfuError> {
        if offset != self.next {
            return Err(DfuError::Address);
        }
        let end = offset
            .checked_add(data.len() as u64)
            .ok_or(DfuError::Address)?;
        if end > self.capacity {
            return Err(DfuError::Address);
        }
        if self.flags.safe {
            if end > self.stage_limit as u64 {
                return Err(DfuError::Address);
            }
            self.staged
                .try_reserve(data.len())
                .map_err(|_| DfuError::Address)?;
            self.staged.extend_from_slice(data);
            self.next = end;
        } else {
            self.write_direct(data)?;
        }
        Ok(Progress::Done)
    }

    fn finish_download(&mut self) -> Result<Progress, DfuError> {
        if self.flags.safe {
            self.manifest = Some(Manifest {
                written: 0,
                started: coroutine::now(),
            });
            self.manifest_step()
        } else {
            self.finish_direct()
        }
    }

    fn resume(&mut self) -> Result<Progress, DfuError> {
        self.manifest_step()
    }

    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<usize, DfuError> {
        let mut dev = self.dev.lock();
        let bs = dev.block_size() as usize;
        let capacity = dev.num_blocks().saturating_mul(bs as u64);
        if bs == 0 || offset >= capacity || buf.is_empty() {
            return Ok(0);
        }
        let n = (buf.len() as u64).min(capacity - offset) as usize;
        let skip = (offset % bs as u64) as usize;
        self.scratch.resize((skip + n).div_ceil(bs) * bs, 0);
        dev.read(offset / bs as u64, &mut self.scratch)
            .map_err(read_error)?;
        buf[..n].copy_from_slice(&self.scratch[skip..skip + n]);
        Ok(n)
    }

    fn abort(&mut self) {
        self.clear();
    }
}

/// Where a [`SinkTarget`] streams an image: the app's side of a target that is not a block
/// device (the firmware image, a file in the sandbox's state directory). The same rules as
/// for [`DfuTarget`] apply: no waiting for anything that needs the USB poller.
pub trait ImageSink {
    /// A download starts (create or truncate a temporary file, …).
    fn begin(&mut self) -> Result<(), DfuError>;

    /// The next bytes of the image, in order.
    fn write(&mut self, data: &[u8]) -> Result<Progress, DfuError>;

    /// The image is complete: check it and make it take effect (errFILE, errVERIFY,
    /// errNOTDONE, … if it cannot).
    fn commit(&mut self) -> Result<Progress, DfuError>;

    /// Continue the work the last `write` or `commit` left pending.
    fn resume(&mut self) -> Result<Progress, DfuError> {
        Ok(Progress::Done)
    }

    /// The download ended without commit: throw away what was written. May be called when
    /// nothing was begun.
    fn discard(&mut self);

    /// The largest image accepted, in bytes (larger ones fail with errADDRESS).
    fn max_size(&self) -> Option<u64> {
        None
    }

    /// Whether the committed image can be read back (UPLOAD).
    fn can_read(&self) -> bool {
        false
    }

    /// Read the committed image at `offset`; fewer bytes than `buf.len()` only at its end.
    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<usize, DfuError> {
        let _ = (offset, buf);
        Err(DfuError::Target)
    }
}

/// A target that streams the image to an app-provided [`ImageSink`]: checks that the
/// download is sequential and within [`ImageSink::max_size`].
pub struct SinkTarget {
    name: String,
    sink: Box<dyn ImageSink>,
    next: u64,
}

impl SinkTarget {
    /// A target called `name` writing to `sink`.
    pub fn new(name: impl Into<String>, sink: Box<dyn ImageSink>) -> Self {
        SinkTarget {
            name: name.into(),
            sink,
            next: 0,
        }
    }
}

impl DfuTarget for SinkTarget {
    fn name(&self) -> &str {
        &self.name
    }

    fn can_upload(&self) -> bool {
        self.sink.can_read()
    }

    fn begin_download(&mut self) -> Result<(), DfuError> {
        self.next = 0;
        self.sink.begin()
    }

    fn write(&mut self, offset: u64, data: &[u8]) -> Result<Progress, DfuError> {
        if offset != self.next {
            return Err(DfuError::Address);
        }
        let end = offset
            .checked_add(data.len() as u64)
            .ok_or(DfuError::Address)?;
        if self.sink.max_size().is_some_and(|max| end > max) {
            return Err(DfuError::Address);
        }
        let p = self.sink.write(data)?;
        self.next = end;
        Ok(p)
    }

    fn finish_download(&mut self) -> Result<Progress, DfuError> {
        self.sink.commit()
    }

    fn resume(&mut self) -> Result<Progress, DfuError> {
        self.sink.resume()
    }

    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<usize, DfuError> {
        if !self.sink.can_read() {
            return Err(DfuError::Target);
        }
        self.sink.read(offset, buf)
    }

    fn abort(&mut self) {
        self.next = 0;
        self.sink.discard();
    }
}
