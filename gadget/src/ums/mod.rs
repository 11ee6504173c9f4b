//! USB mass storage: Bulk-Only Transport + SCSI, up to 16 LUNs, with the function running as
//! its own coroutine.
//!
//! [`Ums::new`] makes three parts that share a pipe of buffers:
//! - [`UmsClass`], the `usb-device` class the USB controller poller drives (descriptors,
//!   endpoints, GET MAX LUN, Bulk-Only Mass Storage Reset);
//! - [`UmsFunction`], the coroutine body: straight-line BOT/SCSI code that sleeps while the
//!   bus moves its buffers;
//! - [`UmsControl`], the console's handle on the LUNs (insert, eject, read-only, …).

mod bot;
mod class;
mod engine;
mod lun;
mod pipe;
pub mod scsi;

pub use bot::{
    CBW_LEN, CBW_SIGNATURE, CSW_LEN, CSW_SIGNATURE, Cbw, CbwError, Csw, CswStatus, Ending, Plan,
    Xfer, plan,
};
pub use class::UmsClass;
pub use engine::UmsFunction;
pub use lun::{ControlError, LunConfig, LunInfo, UmsControl};

use alloc::rc::Rc;
use alloc::vec::Vec;
use core::cell::RefCell;

use lunbox_platform::coroutine::Completion;
use usb_device::bus::{UsbBus, UsbBusAllocator};

use lun::Lun;
use pipe::Pipe;

/// Most LUNs one function serves (GET MAX LUN answers at most 15).
pub const MAX_LUNS: usize = 16;

/// How the function is built.
#[derive(Clone)]
pub struct UmsConfig {
    /// The LUNs, 1 to [`MAX_LUNS`].
    pub luns: Vec<LunConfig>,
    /// Bulk max packet size: 64 at full speed, 512 at high speed.
    pub max_packet: u16,
    /// Size of each data buffer (a multiple of 512 and of the packet size; 4 KiB–1 MiB).
    pub buffer_size: usize,
    /// Data buffers (at least 2: one on the bus while the next is read or written).
    pub buffers: usize,
    /// The bus moves runs of packets in one call (the sandbox's USB/IP bridge): a Bulk-In
    /// write of a buffer's worth, split into packets by the bus and reported complete once the
    /// host has taken all of them, and a Bulk-Out read of as many whole packets as the buffer
    /// holds. Off: one packet per call, as `usb-device` defines it (a controller with one
    /// packet buffer, such as imxrt-usbd).
    pub packet_runs: bool,
    /// Completed whenever the function posts work for the bus; the USB controller poller
    /// sleeps on it (share one with other sources of work, such as the bus's sockets).
    pub activity: Rc<Completion>,
}

impl UmsConfig {
    /// `luns` at high speed with two 16 KiB buffers.
    pub fn new(luns: Vec<LunConfig>) -> Self {
        UmsConfig {
            luns,
            max_packet: 512,
            buffer_size: 16 * 1024,
            buffers: 2,
            packet_runs: false,
            activity: Rc::new(Completion::new()),
        }
    }
}

/// Why a configuration cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UmsConfigError {
    /// Not 1 to 16 LUNs.
    LunCount(usize),
    /// Not 8, 16, 32, 64 or 512.
    MaxPacket(u16),
    /// Not a multiple of 512 and of the packet size, or outside 4 KiB–1 MiB.
    BufferSize(usize),
    /// Fewer than 2 buffers or more than 16.
    Buffers(usize),
}

impl core::fmt::Display for UmsConfigError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            UmsConfigError::LunCount(n) => write!(f, "{n} LUNs: use 1 to {MAX_LUNS}"),
            UmsConfigError::MaxPacket(n) => {
                write!(
                    f,
                    "bulk packet size {n}: use 64 (full speed) or 512 (high speed)"
                )
            }
            UmsConfigError::BufferSize(n) => write!(
                f,
                "buffer size {n}: use a multiple of 512 between 4096 and 1048576"
            ),
            UmsConfigError::Buffers(n) => write!(f, "{n} buffers: use 2 to 16"),
        }
    }
}

/// The three parts of a mass-storage function.
pub struct Ums<'a, B: UsbBus> {
    /// The class, for `UsbDevice::poll` and [`UmsClass::pump`].
    pub class: UmsClass<'a, B>,
    /// The coroutine body.
    pub function: UmsFunction,
    /// The console's handle.
    pub control: UmsControl,
}

impl<'a, B: UsbBus> Ums<'a, B> {
    /// Allocate the interface and endpoints on `alloc` and set up the LUNs.
    pub fn new(alloc: &'a UsbBusAllocator<B>, config: UmsConfig) -> Result<Self, UmsConfigError> {
        let n = config.luns.len();
        if !(1..=MAX_LUNS).contains(&n) {
            return Err(UmsConfigError::LunCount(n));
        }
        if ![8, 16, 32, 64, 512].contains(&config.max_packet) {
            return Err(UmsConfigError::MaxPacket(config.max_packet));
        }
        let bs = config.buffer_size;
        if !(4096..=1 << 20).contains(&bs)
            || !bs.is_multiple_of(512)
            || !bs.is_multiple_of(usize::from(config.max_packet))
        {
            return Err(UmsConfigError::BufferSize(bs));
        }
        if !(2..=16).contains(&config.buffers) {
            return Err(UmsConfigError::Buffers(config.buffers));
        }
        let pipe = Rc::new(Pipe::new(config.activity));
        let luns = Rc::new(RefCell::new(
            config
                .luns
                .into_iter()
                .enumerate()
                .map(|(i, c)| Lun::new(i, c))
                .collect::<Vec<_>>(),
        ));
        let class = UmsClass::new(
            alloc,
            config.max_packet,
            (n - 1) as u8,
            pipe.clone(),
            config.packet_runs,
        );
        let function = UmsFunction::new(
            pipe,
            luns.clone(),
            bs,
            config.buffers,
            usize::from(config.max_packet),
        );
        Ok(Ums {
            class,
            function,
            control: UmsControl { luns },
        })
    }
}
