//! USB/IP (protocol 0x0111): the sandbox's USB controller. A Linux host attaches lunbox with
//! `usbip attach -r 127.0.0.1 -b 1-1` (vhci-hcd) and sees the gadget as a USB device.
//!
//! - [`proto`]: the wire format (OP_REQ_DEVLIST, OP_REQ_IMPORT, CMD/RET_SUBMIT, CMD/RET_UNLINK);
//! - [`UsbipServer`]: the TCP side, non-blocking, serviced by the USB controller poller;
//! - [`UsbipBus`]: the `usb-device` bus, turning URBs into packets and back.

mod bridge;
mod bus;
mod outbox;
mod pool;
pub mod proto;
mod server;

pub use bus::UsbipBus;
pub use server::{BUS_ID, UsbipServer};
