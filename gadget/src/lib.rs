//! lunbox USB functions on usb-device: mass storage (Bulk-Only + SCSI), DFU 1.1 and CDC-ACM,
//! composed into one device. (Filled in by the UMS and composite issues.)
#![no_std]
#![forbid(unsafe_code)]
