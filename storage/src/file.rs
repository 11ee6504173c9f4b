//! Host files and raw images as disks (std: the sandbox).

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::string::String;

use crate::device::{BLOCK_SIZE, BlockDevice, check_io, check_write};
use crate::error::{IoOp, StorageError};

/// A host file used as a disk: a raw image, 512-byte blocks, flush = fsync.
#[derive(Debug)]
pub struct FileDisk {
    file: File,
    path: PathBuf,
    blocks: u64,
    read_only: bool,
}

/// Why a file cannot be a disk.
#[derive(Debug)]
pub enum FileDiskError {
    /// The file cannot be opened or inspected.
    Open {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        error: io::Error,
    },
    /// Its size is not a whole number of blocks.
    Size {
        /// The file.
        path: PathBuf,
        /// Its size in bytes.
        bytes: u64,
    },
}

impl std::fmt::Display for FileDiskError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FileDiskError::Open { path, error } => {
                write!(f, "cannot open {}: {error}", path.display())
            }
            FileDiskError::Size { path, bytes } => write!(
                f,
                "{} is {bytes} bytes, not a whole number of {BLOCK_SIZE}-byte blocks \
                 (pad or truncate it to a multiple of {BLOCK_SIZE})",
                path.display()
            ),
        }
    }
}

impl std::error::Error for FileDiskError {}

impl FileDisk {
    /// Open `path` as a disk, read-write unless `read_only` (then the file is opened
    /// read-only and cannot be changed through lunbox at all).
    pub fn open(path: impl AsRef<Path>, read_only: bool) -> Result<Self, FileDiskError> {
        let path = path.as_ref().to_path_buf();
        let open_err = |error| FileDiskError::Open {
            path: path.clone(),
            error,
        };
        let file = OpenOptions::new()
            .read(true)
            .write(!read_only)
            .open(&path)
            .map_err(open_err)?;
        let bytes = file.metadata().map_err(open_err)?.len();
        if bytes % BLOCK_SIZE as u64 != 0 {
            return Err(FileDiskError::Size { path, bytes });
        }
        Ok(FileDisk {
            file,
            path,
            blocks: bytes / BLOCK_SIZE as u64,
            read_only,
        })
    }

    /// Create (or truncate) `path` as a zero-filled disk of `blocks` blocks.
    pub fn create(path: impl AsRef<Path>, blocks: u64) -> Result<Self, FileDiskError> {
        let path = path.as_ref().to_path_buf();
        let open_err = |error| FileDiskError::Open {
            path: path.clone(),
            error,
        };
        let bytes = blocks.checked_mul(BLOCK_SIZE as u64).ok_or_else(|| {
            open_err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "size too large",
            ))
        })?;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .map_err(open_err)?;
        file.set_len(bytes).map_err(open_err)?;
        Ok(FileDisk {
            file,
            path,
            blocks,
            read_only: false,
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The path as text, for listings.
    pub fn path_lossy(&self) -> String {
        self.path.to_string_lossy().into_owned()
    }
}

/// The OS error as a static reason (the failing block is reported beside it).
fn reason(e: &io::Error) -> &'static str {
    match e.kind() {
        io::ErrorKind::UnexpectedEof => "file shrank under lunbox",
        io::ErrorKind::PermissionDenied => "permission denied",
        io::ErrorKind::StorageFull => "host disk full",
        io::ErrorKind::Interrupted => "interrupted",
        _ => "host I/O error",
    }
}

impl BlockDevice for FileDisk {
    fn block_size(&self) -> u32 {
        BLOCK_SIZE
    }

    fn num_blocks(&self) -> u64 {
        self.blocks
    }

    fn read(&mut self, lba: u64, buf: &mut [u8]) -> Result<(), StorageError> {
        check_io(lba, buf.len(), BLOCK_SIZE, self.blocks)?;
        self.file
            .read_exact_at(buf, lba * BLOCK_SIZE as u64)
            .map_err(|e| StorageError::Io {
                lba,
                op: IoOp::Read,
                reason: reason(&e),
            })
    }

    fn write(&mut self, lba: u64, buf: &[u8]) -> Result<(), StorageError> {
        check_write(lba, buf.len(), BLOCK_SIZE, self.blocks, self.read_only)?;
        self.file
            .write_all_at(buf, lba * BLOCK_SIZE as u64)
            .map_err(|e| StorageError::Io {
                lba,
                op: IoOp::Write,
                reason: reason(&e),
            })
    }

    fn flush(&mut self) -> Result<(), StorageError> {
        if self.read_only {
            return Ok(());
        }
        self.file.sync_data().map_err(|e| StorageError::Io {
            lba: 0,
            op: IoOp::Flush,
            reason: reason(&e),
        })
    }

    fn is_read_only(&self) -> bool {
        self.read_only
    }
}
