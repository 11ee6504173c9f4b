//! An in-process virtual USB host for tests and benchmarks of every lunbox function.
//!
//! [`VirtualBus`] is a `usb-device` [`UsbBus`](usb_device::bus::UsbBus) whose other side is a
//! [`HostPort`]: packets are handed over one at a time per endpoint, like a controller's
//! endpoint buffers (64- or 512-byte max packets). [`VirtualHost`] drives the port the way a
//! host controller driver does: enumeration, control transfers, bulk transfers, halts.
//! [`BotHost`] speaks Bulk-Only Transport on top of it.
//!
//! Nothing runs by itself: every host helper calls a `step` closure, supplied by the test,
//! that polls the device (and lets coroutines run) once.

mod bot_host;
mod bus;
mod host;

pub use bot_host::{BotError, BotHost, BotResult, DataPhase};
pub use bus::{BusStats, HostPort, PortError, VirtualBus};
pub use host::{Descriptors, EndpointInfo, HostError, InterfaceInfo, Setup, VirtualHost};
