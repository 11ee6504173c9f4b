//! lunbox storage: block devices, MBR/GPT partitions, RAM/file/SD backends and the named
//! device registry.
//!
//! - [`BlockDevice`]: 512-byte logical blocks (a per-device property) at `u64` addresses,
//!   flush, read-only, media present/changed; errors are [`StorageError`].
//! - Backends: [`RamDisk`], [`FileDisk`] (host files, `std`), SD cards over SPI
//!   ([`open_sd_card`]), any embedded-sdmmc block device ([`SdmmcBackend`]).
//! - [`View`]: a bounded window of a device; what a partition is. [`MediaSlot`]: removable
//!   media that can be ejected, inserted and swapped, reporting the change once.
//! - [`part`]: MBR and GPT tables, checked.
//! - [`Registry`]: names (`ram0`, `img0`, `sd0.1`, `sd0.rootfs`) for the config and console.
//! - [`SdmmcDevice`]: any device or partition as an embedded-sdmmc block device (FAT access).
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

mod crc32;
mod device;
mod error;
#[cfg(feature = "std")]
mod file;
pub mod part;
mod ram;
mod registry;
mod removable;
mod sd_spi;
mod sdmmc;
mod view;

pub use crc32::crc32;
pub use device::{BLOCK_SIZE, BlockDevice, DeviceRef, check_io, check_write, share};
pub use error::{IoOp, StorageError};
#[cfg(feature = "std")]
pub use file::{FileDisk, FileDiskError};
pub use ram::RamDisk;
pub use registry::{Entry, EntryKind, Listing, Registry, RegistryError, check_disk_name};
pub use removable::MediaSlot;
pub use sd_spi::{SpiSdCard, YieldingDelay, open_sd_card};
pub use sdmmc::{FixedTime, SdmmcBackend, SdmmcDevice, SdmmcDeviceError};
pub use view::View;
