//! The storage layer's error type.

use core::fmt;

/// What a block device operation can fail with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageError {
    /// Blocks `lba .. lba + count` are not all inside the device's `capacity` blocks.
    OutOfRange {
        /// First block asked for.
        lba: u64,
        /// Number of blocks asked for.
        count: u64,
        /// Blocks the device has.
        capacity: u64,
    },
    /// A buffer whose length is not a whole number of blocks.
    BadLength {
        /// The buffer length in bytes.
        len: usize,
        /// The device's block size.
        block_size: u32,
    },
    /// The device or view is read-only.
    ReadOnly,
    /// No medium is present (ejected or removed).
    NoMedia,
    /// The medium failed at block `lba`.
    Io {
        /// The failing block.
        lba: u64,
        /// What was being done.
        op: IoOp,
        /// What went wrong, as the backend knows it.
        reason: &'static str,
    },
}

/// The operation an [`StorageError::Io`] happened in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IoOp {
    /// Reading blocks.
    Read,
    /// Writing blocks.
    Write,
    /// Flushing caches to the medium.
    Flush,
}

impl fmt::Display for StorageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            StorageError::OutOfRange {
                lba,
                count,
                capacity,
            } => write!(
                f,
                "blocks {lba}..{} are outside the device ({capacity} blocks)",
                lba.saturating_add(count)
            ),
            StorageError::BadLength { len, block_size } => {
                write!(
                    f,
                    "{len} bytes is not a whole number of {block_size}-byte blocks"
                )
            }
            StorageError::ReadOnly => f.write_str("the device is read-only"),
            StorageError::NoMedia => f.write_str("no medium present"),
            StorageError::Io { lba, op, reason } => {
                let op = match op {
                    IoOp::Read => "read",
                    IoOp::Write => "write",
                    IoOp::Flush => "flush",
                };
                write!(f, "{op} error at block {lba}: {reason}")
            }
        }
    }
}

impl core::error::Error for StorageError {}
