//! A test rig: a UMS function on the virtual bus, enumerated by the virtual host.

#![allow(dead_code, reason = "each test binary uses a different subset")]

use lunbox_gadget::testing::{BotHost, BotResult, DataPhase, VirtualBus, VirtualHost};
use lunbox_gadget::ums::{LunConfig, Ums, UmsConfig, UmsControl};
use lunbox_platform::coroutine;
use lunbox_storage::{DeviceRef, RamDisk, share};
use usb_device::bus::UsbBusAllocator;
use usb_device::device::{StringDescriptors, UsbDeviceBuilder, UsbVidPid};

/// What a test gets to work with.
pub(crate) struct Rig<'h, 's> {
    pub(crate) host: &'h mut VirtualHost<'s>,
    pub(crate) bot: BotHost,
    pub(crate) control: UmsControl,
}

/// A RAM disk of `blocks` blocks whose block `i` is filled with `i as u8` bytes.
pub(crate) fn ram(blocks: u64) -> DeviceRef {
    let mut image = vec![0u8; blocks as usize * 512];
    for (i, b) in image.chunks_mut(512).enumerate() {
        b.fill(i as u8);
    }
    share(RamDisk::from_image(image).unwrap())
}

/// Run `f` against a UMS function with `config`, enumerated at packet size `config.max_packet`.
pub(crate) fn with_ums<R>(config: UmsConfig, f: impl FnOnce(&mut Rig<'_, '_>) -> R) -> R {
    let (bus, port) = VirtualBus::new();
    let alloc = UsbBusAllocator::new(bus);
    let Ums {
        mut class,
        function,
        control,
    } = Ums::new(&alloc, config).unwrap();
    let mut dev = UsbDeviceBuilder::new(&alloc, UsbVidPid(0x1209, 0x4c42))
        .strings(&[StringDescriptors::default()
            .manufacturer("lunbox")
            .product("test")
            .serial_number("0001")])
        .unwrap()
        .max_packet_size_0(64)
        .unwrap()
        .build();
    let task = coroutine::spawn("ums", move || function.run());
    let result = {
        let mut step = || {
            dev.poll(&mut [&mut class]);
            class.pump();
            coroutine::yield_now();
        };
        let mut host = VirtualHost::new(port, &mut step);
        let d = host.enumerate().expect("enumeration");
        let bot = BotHost::find(&d.interfaces).expect("a mass-storage interface");
        let mut rig = Rig {
            host: &mut host,
            bot,
            control,
        };
        f(&mut rig)
    };
    task.stop().expect("the UMS coroutine ends cleanly");
    result
}

/// One RAM LUN of `blocks` blocks at `mps`.
pub(crate) fn one_lun(blocks: u64, mps: u16) -> UmsConfig {
    let mut c = UmsConfig::new(vec![LunConfig::new(Some(ram(blocks)), "ram0")]);
    c.max_packet = mps;
    c
}

impl Rig<'_, '_> {
    /// Run a command and return its result (transport errors panic).
    pub(crate) fn cmd(&mut self, lun: u8, cdb: &[u8], phase: DataPhase<'_>) -> BotResult {
        self.bot
            .command(self.host, lun, cdb, phase)
            .expect("transport")
    }

    /// Clear the power-on unit attention of `lun` (TEST UNIT READY until it passes).
    pub(crate) fn settle(&mut self, lun: u8) {
        for _ in 0..3 {
            let r = self.cmd(lun, &[0, 0, 0, 0, 0, 0], DataPhase::None);
            if r.csw.status == lunbox_gadget::ums::CswStatus::Passed {
                return;
            }
        }
    }

    /// REQUEST SENSE (fixed): (key, asc, ascq, information if valid).
    pub(crate) fn sense(&mut self, lun: u8) -> (u8, u8, u8, Option<u32>) {
        let r = self.cmd(lun, &[0x03, 0, 0, 0, 18, 0], DataPhase::In(18));
        let d = r.data;
        let info = (d[0] & 0x80 != 0).then(|| u32::from_be_bytes([d[3], d[4], d[5], d[6]]));
        (d[2] & 0x0F, d[12], d[13], info)
    }
}

/// A READ(10) / WRITE(10) command block.
pub(crate) fn rw10(op: u8, lba: u32, blocks: u16) -> [u8; 10] {
    let l = lba.to_be_bytes();
    let n = blocks.to_be_bytes();
    [op, 0, l[0], l[1], l[2], l[3], 0, n[0], n[1], 0]
}
