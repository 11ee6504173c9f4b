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

/// A device for failure paths: fails reads/writes of one block, counts flushes, and can be
/// any size (unwritten blocks read as zeros; written ones are kept sparsely).
pub(crate) struct TestDevice {
    pub(crate) blocks: u64,
    pub(crate) bad_block: Option<u64>,
    pub(crate) read_only: bool,
    pub(crate) written: std::collections::HashMap<u64, Vec<u8>>,
    pub(crate) flushes: std::rc::Rc<std::cell::Cell<u32>>,
}

impl TestDevice {
    pub(crate) fn new(blocks: u64) -> Self {
        TestDevice {
            blocks,
            bad_block: None,
            read_only: false,
            written: Default::default(),
            flushes: Default::default(),
        }
    }
}

impl lunbox_storage::BlockDevice for TestDevice {
    fn block_size(&self) -> u32 {
        512
    }
    fn num_blocks(&self) -> u64 {
        self.blocks
    }
    fn read(&mut self, lba: u64, buf: &mut [u8]) -> Result<(), lunbox_storage::StorageError> {
        let n = lunbox_storage::check_io(lba, buf.len(), 512, self.blocks)?;
        for i in 0..n {
            let b = lba + i;
            if Some(b) == self.bad_block {
                return Err(lunbox_storage::StorageError::Io {
                    lba: b,
                    op: lunbox_storage::IoOp::Read,
                    reason: "test",
                });
            }
            let dst = &mut buf[i as usize * 512..][..512];
            match self.written.get(&b) {
                Some(d) => dst.copy_from_slice(d),
                None => dst.fill(0),
            }
        }
        Ok(())
    }
    fn write(&mut self, lba: u64, buf: &[u8]) -> Result<(), lunbox_storage::StorageError> {
        let n = lunbox_storage::check_write(lba, buf.len(), 512, self.blocks, self.read_only)?;
        for i in 0..n {
            let b = lba + i;
            if Some(b) == self.bad_block {
                return Err(lunbox_storage::StorageError::Io {
                    lba: b,
                    op: lunbox_storage::IoOp::Write,
                    reason: "test",
                });
            }
            self.written
                .insert(b, buf[i as usize * 512..][..512].to_vec());
        }
        Ok(())
    }
    fn flush(&mut self) -> Result<(), lunbox_storage::StorageError> {
        self.flushes.set(self.flushes.get() + 1);
        Ok(())
    }
    fn is_read_only(&self) -> bool {
        self.read_only
    }
}

/// Sense as (key, asc, ascq).
pub(crate) fn ksa(s: (u8, u8, u8, Option<u32>)) -> (u8, u8, u8) {
    (s.0, s.1, s.2)
}

/// A READ(16) / WRITE(16) command block.
pub(crate) fn rw16(op: u8, lba: u64, blocks: u32) -> [u8; 16] {
    let mut c = [0u8; 16];
    c[0] = op;
    c[2..10].copy_from_slice(&lba.to_be_bytes());
    c[10..14].copy_from_slice(&blocks.to_be_bytes());
    c
}

/// A READ(12) / WRITE(12) command block.
pub(crate) fn rw12(op: u8, lba: u32, blocks: u32) -> [u8; 12] {
    let mut c = [0u8; 12];
    c[0] = op;
    c[2..6].copy_from_slice(&lba.to_be_bytes());
    c[6..10].copy_from_slice(&blocks.to_be_bytes());
    c
}
