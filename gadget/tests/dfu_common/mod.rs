//! A DFU test rig: a device with only the DFU class on the virtual bus, enumerated by the
//! virtual host, and a `dfu-util`-like host on top of it.

#![allow(dead_code, reason = "each test binary uses a different subset")]

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use lunbox_gadget::dfu::{
    DESCRIPTOR_FUNCTIONAL, DfuClass, DfuError, DfuState, DfuTarget, FunctionalDescriptor, Progress,
    StatusReport, TRANSFER_SIZE, request,
};
use lunbox_gadget::testing::{Descriptors, HostError, Setup, VirtualBus, VirtualHost};
use lunbox_platform::coroutine;
use lunbox_storage::{BlockDevice, DeviceRef, RamDisk, StorageError, share};
use usb_device::bus::UsbBusAllocator;
use usb_device::device::{StringDescriptors, UsbDeviceBuilder, UsbVidPid};

/// The host side of a DFU interface.
pub(crate) struct DfuHost<'h, 's> {
    pub(crate) host: &'h mut VirtualHost<'s>,
    /// bInterfaceNumber of the DFU interface.
    pub(crate) iface: u16,
    /// What enumeration read.
    pub(crate) descriptors: Descriptors,
}

/// Run `f` against a device whose only function is a DFU interface over `targets`.
pub(crate) fn with_dfu<R>(
    targets: Vec<Box<dyn DfuTarget>>,
    f: impl FnOnce(&mut DfuHost<'_, '_>) -> R,
) -> R {
    let (bus, port) = VirtualBus::new();
    let alloc = UsbBusAllocator::new(bus);
    let mut class = DfuClass::new(&alloc, targets).expect("a valid target list");
    let mut dev = UsbDeviceBuilder::new(&alloc, UsbVidPid(0x1209, 0x4c42))
        .strings(&[StringDescriptors::default()
            .manufacturer("lunbox")
            .product("dfu test")
            .serial_number("0001")])
        .unwrap()
        .max_packet_size_0(64)
        .unwrap()
        .build();
    let iface = u16::from(u8::from(class.interface()));
    let mut step = || {
        dev.poll(&mut [&mut class]);
        class.pump();
        coroutine::yield_now();
    };
    let mut host = VirtualHost::new(port, &mut step);
    let descriptors = host.enumerate().expect("enumeration");
    let mut rig = DfuHost {
        host: &mut host,
        iface,
        descriptors,
    };
    f(&mut rig)
}

/// Whether a transfer ended in a STALL.
pub(crate) fn stalled<T: std::fmt::Debug>(r: Result<T, HostError>) -> bool {
    match r {
        Err(HostError::Stalled { .. }) => true,
        Err(e) => panic!("expected a STALL, got {e:?}"),
        Ok(v) => {
            eprintln!("expected a STALL, got {v:?}");
            false
        }
    }
}

impl DfuHost<'_, '_> {
    /// A class request to the interface, host to device.
    pub(crate) fn out(&mut self, req: u8, value: u16, data: &[u8]) -> Result<(), HostError> {
        self.host.control_out(
            Setup {
                request_type: 0x21,
                request: req,
                value,
                index: self.iface,
                length: data.len() as u16,
            },
            data,
        )
    }

    /// A class request to the interface, device to host.
    pub(crate) fn inp(&mut self, req: u8, value: u16, length: u16) -> Result<Vec<u8>, HostError> {
        self.host.control_in(Setup {
            request_type: 0xA1,
            request: req,
            value,
            index: self.iface,
            length,
        })
    }

    /// DFU_DNLOAD block `block`.
    pub(crate) fn dnload(&mut self, block: u16, data: &[u8]) -> Result<(), HostError> {
        self.out(request::DNLOAD, block, data)
    }

    /// DFU_UPLOAD of up to `len` bytes.
    pub(crate) fn upload(&mut self, block: u16, len: u16) -> Result<Vec<u8>, HostError> {
        self.inp(request::UPLOAD, block, len)
    }

    /// DFU_GETSTATUS, decoded.
    pub(crate) fn status(&mut self) -> StatusReport {
        let raw = self.inp(request::GETSTATUS, 0, 6).expect("GETSTATUS");
        StatusReport::parse(&raw).expect("a 6-byte status")
    }

    /// DFU_GETSTATE, decoded.
    pub(crate) fn state(&mut self) -> DfuState {
        let raw = self.inp(request::GETSTATE, 0, 1).expect("GETSTATE");
        assert_eq!(raw.len(), 1);
        DfuState::from_u8(raw[0]).expect("a known state")
    }

    /// DFU_GETSTATE, raw (may stall).
    pub(crate) fn try_state(&mut self) -> Result<Vec<u8>, HostError> {
        self.inp(request::GETSTATE, 0, 1)
    }

    /// DFU_CLRSTATUS.
    pub(crate) fn clrstatus(&mut self) -> Result<(), HostError> {
        self.out(request::CLRSTATUS, 0, &[])
    }

    /// DFU_ABORT.
    pub(crate) fn abort(&mut self) -> Result<(), HostError> {
        self.out(request::ABORT, 0, &[])
    }

    /// DFU_DETACH.
    pub(crate) fn detach(&mut self) -> Result<(), HostError> {
        self.out(request::DETACH, 1000, &[])
    }

    /// SET_INTERFACE (selects the target).
    pub(crate) fn set_alt(&mut self, alt: u8) -> Result<(), HostError> {
        self.host.control_out(
            Setup {
                request_type: 0x01,
                request: 11,
                value: alt.into(),
                index: self.iface,
                length: 0,
            },
            &[],
        )
    }

    /// GET_INTERFACE.
    pub(crate) fn get_alt(&mut self) -> u8 {
        let r = self
            .host
            .control_in(Setup {
                request_type: 0x81,
                request: 10,
                value: 0,
                index: self.iface,
                length: 1,
            })
            .expect("GET_INTERFACE");
        r[0]
    }

    /// The functional descriptor from the configuration descriptor.
    pub(crate) fn functional(&self) -> FunctionalDescriptor {
        let extra = self
            .descriptors
            .interfaces
            .iter()
            .flat_map(|i| i.extra.iter())
            .find(|(kind, _)| *kind == DESCRIPTOR_FUNCTIONAL)
            .expect("a DFU functional descriptor");
        FunctionalDescriptor::parse(&extra.1).expect("a valid functional descriptor")
    }

    /// Assert the device is in dfuERROR with `status`, then clear it back to dfuIDLE.
    pub(crate) fn expect_error(&mut self, status: DfuError) {
        assert_eq!(self.state(), DfuState::Error);
        let s = self.status();
        assert_eq!((s.status, s.state), (Some(status), DfuState::Error));
        self.clrstatus().expect("CLRSTATUS");
        let s = self.status();
        assert_eq!((s.status, s.state), (None, DfuState::Idle));
    }

    /// GETSTATUS until the device leaves dfuDNBUSY / dfuMANIFEST (as `dfu-util` does).
    pub(crate) fn settle(&mut self) -> StatusReport {
        loop {
            let s = self.status();
            if !matches!(s.state, DfuState::DnBusy | DfuState::Manifest) {
                return s;
            }
            assert!(s.poll_timeout_ms > 0, "busy with a zero poll timeout");
        }
    }

    /// Send `data` as DNLOAD blocks of `xfer` bytes, each followed by GETSTATUS until it
    /// is written. Stops at the first block that does not end in dfuDNLOAD-IDLE.
    pub(crate) fn send_blocks(&mut self, data: &[u8], xfer: usize) -> Result<(), StatusReport> {
        for (i, chunk) in data.chunks(xfer).enumerate() {
            self.dnload(i as u16, chunk).expect("DNLOAD");
            let s = self.settle();
            if s.state != DfuState::DnloadIdle {
                return Err(s);
            }
            assert_eq!(s.status, None);
        }
        Ok(())
    }

    /// The zero-length DNLOAD and GETSTATUS until manifestation ends.
    pub(crate) fn manifest(&mut self) -> StatusReport {
        self.dnload(0, &[]).expect("zero-length DNLOAD");
        self.settle()
    }

    /// A whole download as `dfu-util -D` does it; returns the status that ends it.
    pub(crate) fn download(&mut self, data: &[u8]) -> StatusReport {
        if let Err(s) = self.send_blocks(data, usize::from(TRANSFER_SIZE)) {
            return s;
        }
        self.manifest()
    }

    /// A whole upload in blocks of `len` bytes (until a short one).
    pub(crate) fn upload_all(&mut self, len: u16) -> Vec<u8> {
        let mut out = Vec::new();
        for block in 0.. {
            let b = self.upload(block, len).expect("UPLOAD");
            out.extend_from_slice(&b);
            if b.len() < usize::from(len) {
                break;
            }
            assert_eq!(self.state(), DfuState::UploadIdle);
        }
        assert_eq!(self.state(), DfuState::Idle);
        out
    }
}

/// A RAM disk of `blocks` blocks whose block `i` is filled with `0x80 | i as u8`.
pub(crate) fn ram(blocks: u64) -> DeviceRef {
    share(RamDisk::from_image(pattern(blocks)).unwrap())
}

/// The initial contents of [`ram`].
pub(crate) fn pattern(blocks: u64) -> Vec<u8> {
    let mut image = vec![0u8; blocks as usize * 512];
    for (i, b) in image.chunks_mut(512).enumerate() {
        b.fill(0x80 | i as u8);
    }
    image
}

/// A read-only RAM disk like [`ram`].
pub(crate) fn ram_ro(blocks: u64) -> DeviceRef {
    let mut d = RamDisk::from_image(pattern(blocks)).unwrap();
    d.set_read_only(true);
    share(d)
}

/// Everything on `dev`.
pub(crate) fn contents(dev: &DeviceRef) -> Vec<u8> {
    let mut d = dev.lock();
    let mut buf = vec![0u8; d.num_blocks() as usize * d.block_size() as usize];
    d.read(0, &mut buf).unwrap();
    buf
}

/// `n` bytes of a recognisable, non-repeating test image.
pub(crate) fn image(n: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

/// A RAM disk whose writes to one block fail, with a flush counter.
pub(crate) struct FlakyDisk {
    pub(crate) inner: RamDisk,
    pub(crate) bad_block: Option<u64>,
    pub(crate) flushes: Rc<Cell<u32>>,
}

impl FlakyDisk {
    /// A disk like [`ram`] (`blocks` blocks), failing writes to `bad_block`.
    pub(crate) fn new(blocks: u64, bad_block: Option<u64>) -> Self {
        FlakyDisk {
            inner: RamDisk::from_image(pattern(blocks)).unwrap(),
            bad_block,
            flushes: Rc::default(),
        }
    }
}

impl BlockDevice for FlakyDisk {
    fn block_size(&self) -> u32 {
        self.inner.block_size()
    }
    fn num_blocks(&self) -> u64 {
        self.inner.num_blocks()
    }
    fn read(&mut self, lba: u64, buf: &mut [u8]) -> Result<(), StorageError> {
        self.inner.read(lba, buf)
    }
    fn write(&mut self, lba: u64, buf: &[u8]) -> Result<(), StorageError> {
        let n = (buf.len() / 512) as u64;
        if let Some(bad) = self.bad_block.filter(|b| (lba..lba + n).contains(b)) {
            return Err(StorageError::Io {
                lba: bad,
                op: lunbox_storage::IoOp::Write,
                reason: "test",
            });
        }
        self.inner.write(lba, buf)
    }
    fn flush(&mut self) -> Result<(), StorageError> {
        self.flushes.set(self.flushes.get() + 1);
        self.inner.flush()
    }
    fn is_read_only(&self) -> bool {
        false
    }
}

/// A target under the test's control: writes and manifestation stay pending until `open`,
/// every call is logged, and the image is kept.
pub(crate) struct GatedTarget {
    pub(crate) name: &'static str,
    pub(crate) open: Rc<Cell<bool>>,
    pub(crate) log: Rc<RefCell<Vec<&'static str>>>,
    pub(crate) image: Rc<RefCell<Vec<u8>>>,
    /// What `finish_download` (once open) returns.
    pub(crate) manifest_result: Result<(), DfuError>,
    /// bwPollTimeout while a write is pending.
    pub(crate) write_ms: u32,
    /// bwPollTimeout while manifestation is pending.
    pub(crate) manifest_ms: u32,
    manifesting: bool,
}

impl GatedTarget {
    /// A target that starts open, logs to the returned handles.
    pub(crate) fn new(name: &'static str) -> Self {
        GatedTarget {
            name,
            open: Rc::new(Cell::new(true)),
            log: Rc::default(),
            image: Rc::default(),
            manifest_result: Ok(()),
            write_ms: 7,
            manifest_ms: 500,
            manifesting: false,
        }
    }

    fn progress(&mut self) -> Result<Progress, DfuError> {
        if !self.open.get() {
            let ms = if self.manifesting {
                self.manifest_ms
            } else {
                self.write_ms
            };
            return Ok(Progress::Pending {
                poll_timeout_ms: ms,
            });
        }
        if std::mem::take(&mut self.manifesting) {
            self.log.borrow_mut().push("committed");
            self.manifest_result?;
        }
        Ok(Progress::Done)
    }
}

impl DfuTarget for GatedTarget {
    fn name(&self) -> &str {
        self.name
    }
    fn can_upload(&self) -> bool {
        true
    }
    fn begin_download(&mut self) -> Result<(), DfuError> {
        self.log.borrow_mut().push("begin");
        self.image.borrow_mut().clear();
        Ok(())
    }
    fn write(&mut self, offset: u64, data: &[u8]) -> Result<Progress, DfuError> {
        self.log.borrow_mut().push("write");
        assert_eq!(
            offset,
            self.image.borrow().len() as u64,
            "sequential offsets"
        );
        self.image.borrow_mut().extend_from_slice(data);
        self.progress()
    }
    fn finish_download(&mut self) -> Result<Progress, DfuError> {
        self.log.borrow_mut().push("finish");
        self.manifesting = true;
        self.progress()
    }
    fn resume(&mut self) -> Result<Progress, DfuError> {
        self.progress()
    }
    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<usize, DfuError> {
        let image = self.image.borrow();
        let start = (offset as usize).min(image.len());
        let n = buf.len().min(image.len() - start);
        buf[..n].copy_from_slice(&image[start..start + n]);
        Ok(n)
    }
    fn abort(&mut self) {
        self.log.borrow_mut().push("abort");
        self.manifesting = false;
    }
}
