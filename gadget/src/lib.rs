//! lunbox USB functions on usb-device 0.3: mass storage (Bulk-Only + SCSI), DFU 1.1 and
//! CDC-ACM, composed into one device.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod acm;
pub mod dfu;
mod qualifier;
pub mod ums;

pub use qualifier::DeviceQualifier;

#[cfg(feature = "std")]
extern crate std;

#[cfg(feature = "virtual-host")]
pub mod testing;
