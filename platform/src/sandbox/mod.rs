//! The sandbox board: lunbox as a Linux program that behaves like the firmware. One OS thread
//! runs every coroutine; host files are disks; stdin/stdout is the UART; the USB controller is
//! a USB/IP server a real kernel attaches with `usbip attach`.

mod machine;
pub mod os;
pub mod usbip;

pub use machine::{SandboxMachine, Source};
