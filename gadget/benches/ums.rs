//! Mass-storage throughput: lunbox's UMS function against usbd-storage 2.0, both driven by the
//! same in-process virtual USB host (`lunbox_gadget::testing`) at 512-byte bulk packets.
//!
//! Every row is a device on its own [`VirtualBus`], enumerated by a [`VirtualHost`] and
//! exercised with sequential 1 MiB READ(10) and WRITE(10) commands (2048 blocks, Bulk-Only
//! Transport through [`BotHost`]) over a 64 MiB RAM disk, wrapping at its end:
//!
//! - **harness floor**: a bare vendor class that only moves packets (an endless source on
//!   Bulk-In, a sink on Bulk-Out) and the host's bulk transfers without CBW or CSW: what the
//!   virtual bus and host cost by themselves;
//! - **usbd-storage 2.0** (`Scsi<BulkOnly>`, the peer): a 512-byte buffer and its `Scsi::poll`
//!   called on every step whether or not `UsbDevice::poll` reported an event (see the peer
//!   notes: bigger buffers slow its reads down, and polling only on events can deadlock), with
//!   a READ/WRITE handler in the style of its examples over a `Vec<u8>` RAM disk;
//! - **lunbox** (`Ums`): the default configuration (two 16 KiB buffers) and two 64 KiB
//!   buffers, on a `lunbox_storage::RamDisk`, its function running as a coroutine.
//!
//! Before timing, each device gets the whole disk written and read back and compared; every
//! timed READ is compared with what was written (outside the timed part), every command's CSW
//! must pass with no residue, and the whole disk is read back once more at the end. The rows
//! are measured interleaved (repetition by repetition, in a rotating order) so drift of the
//! machine spreads over all of them. Each row and direction is warmed up and calibrated to
//! about [`TARGET_REP`] per repetition, then repeated [`REPS`] times; it prints the best and
//! the median MB/s (10^6 bytes per second; only the time inside `BotHost::command` counts)
//! and the device polls (host steps) per MiB. Nothing is asserted about time: this is a
//! benchmark, not a test. Run it with
//!
//! ```text
//! cargo bench -p lunbox-gadget --bench ums
//! cargo bench -p lunbox-gadget --bench ums -- "16 KiB"   # only rows whose name has this (perf)
//! ```
//!
//! Targets (from the issue): lunbox ≥ 1.0× usbd-storage and ≥ 500 MB/s, judged on the
//! medians.

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use lunbox_gadget::testing::{BotHost, BotResult, DataPhase, VirtualBus, VirtualHost};
use lunbox_gadget::ums::{CswStatus, LunConfig, Ums, UmsConfig};
use lunbox_platform::coroutine;
use lunbox_storage::{RamDisk, share};
use usb_device::bus::UsbBusAllocator;
use usb_device::class_prelude::{
    DescriptorWriter, EndpointIn, EndpointOut, InterfaceNumber, UsbClass,
};
use usb_device::device::{
    StringDescriptors, UsbDevice, UsbDeviceBuilder, UsbDeviceState, UsbVidPid,
};
use usbd_storage::subclass::Command;
use usbd_storage::subclass::scsi::{Scsi, ScsiCommand};
use usbd_storage::transport::TransportError;
use usbd_storage::transport::bbb::{BulkOnly, BulkOnlyError};

/// Bytes per logical block.
const BLOCK: usize = 512;
/// RAM disk size.
const DISK_BYTES: usize = 64 << 20;
/// RAM disk size in blocks.
const DISK_BLOCKS: usize = DISK_BYTES / BLOCK;
/// Bytes per READ(10)/WRITE(10) command.
const CMD_BYTES: usize = 1 << 20;
/// Blocks per command.
const CMD_BLOCKS: usize = CMD_BYTES / BLOCK;
/// Bulk max packet size (high speed).
const PACKET: u16 = 512;
/// The peer's I/O buffer (one packet: its reads slow down with bigger buffers).
const PEER_BUFFER: usize = 512;
/// Timed repetitions per row and direction.
const REPS: usize = 15;
/// Timed (in-command) time one repetition should take after calibration.
const TARGET_REP: Duration = Duration::from_millis(50);
/// Warm-up (and calibration) time per row and direction.
const WARMUP: Duration = Duration::from_millis(150);
/// Fewest and most commands in one repetition.
const REP_CMDS: (usize, usize) = (2, 400);
/// Target: lunbox MB/s / usbd-storage MB/s.
const TARGET_RATIO: f64 = 1.0;
/// Target: lunbox MB/s.
const TARGET_MBS: f64 = 500.0;

/// READ(10) operation code.
const READ_10: u8 = 0x28;
/// WRITE(10) operation code.
const WRITE_10: u8 = 0x2A;

/// Row names.
const FLOOR: &str = "harness floor (packets only)";
const PEER: &str = "usbd-storage 2.0 (512-B buffer)";
const LUNBOX_16K: &str = "lunbox (2 x 16 KiB buffers)";
const LUNBOX_64K: &str = "lunbox (2 x 64 KiB buffers)";

// ---------------------------------------------------------------------------------------------
// Devices
// ---------------------------------------------------------------------------------------------

/// The same device identity for every row.
fn device<'a>(
    alloc: &'a UsbBusAllocator<VirtualBus>,
    product: &'static str,
) -> UsbDevice<'a, VirtualBus> {
    UsbDeviceBuilder::new(alloc, UsbVidPid(0x1209, 0x4c42))
        .strings(&[StringDescriptors::default()
            .manufacturer("lunbox")
            .product(product)
            .serial_number("0001")])
        .expect("string descriptors")
        .max_packet_size_0(64)
        .expect("EP0 packet size")
        .build()
}

/// A 64 MiB pseudo-random image (xorshift64), so misplaced blocks cannot compare equal.
fn image(seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut v = vec![0u8; DISK_BYTES];
    for w in v.chunks_exact_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        w.copy_from_slice(&x.to_le_bytes());
    }
    v
}

/// A READ(10)/WRITE(10) command block for one command at `lba`.
fn rw10(op: u8, lba: usize) -> [u8; 10] {
    let l = u32::try_from(lba).expect("LBA fits READ(10)").to_be_bytes();
    let n = u16::try_from(CMD_BLOCKS)
        .expect("length fits READ(10)")
        .to_be_bytes();
    [op, 0, l[0], l[1], l[2], l[3], 0, n[0], n[1], 0]
}

/// What the benchmark drives: one 1 MiB transfer at a time.
trait Drive {
    /// READ 1 MiB at `lba`; returns the time inside the transfer. The data is checked against
    /// `expected` after the clock stopped.
    fn read(&mut self, lba: usize, expected: &[u8]) -> Duration;
    /// WRITE `data` (1 MiB) at `lba`; returns the time inside the transfer.
    fn write(&mut self, lba: usize, data: &[u8]) -> Duration;
    /// Device polls (host steps) so far.
    fn polls(&self) -> u64;
}

/// A Bulk-Only device (lunbox or the peer) behind the virtual host.
struct BotDrive<'h, 's> {
    name: &'static str,
    host: &'h mut VirtualHost<'s>,
    bot: BotHost,
}

impl BotDrive<'_, '_> {
    fn cmd(&mut self, cdb: &[u8], phase: DataPhase<'_>) -> BotResult {
        match self.bot.command(self.host, 0, cdb, phase) {
            Ok(r) => r,
            Err(e) => panic!("{}: command {:02x?}: {e}", self.name, cdb),
        }
    }

    /// The CSW must pass with nothing left over.
    fn check(&self, what: &str, r: &BotResult) {
        assert_eq!(
            (r.csw.status, r.csw.residue, r.data_stalled),
            (CswStatus::Passed, 0, false),
            "{}: {what} did not complete",
            self.name
        );
    }

    /// TEST UNIT READY until it passes (lunbox reports the power-on unit attention once),
    /// then READ CAPACITY(10) must describe the 64 MiB disk.
    fn settle(&mut self) {
        let mut ready = false;
        for _ in 0..3 {
            let r = self.cmd(&[0, 0, 0, 0, 0, 0], DataPhase::None);
            if r.csw.status == CswStatus::Passed {
                ready = true;
                break;
            }
        }
        assert!(ready, "{}: TEST UNIT READY never passed", self.name);
        let r = self.cmd(&[0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0], DataPhase::In(8));
        self.check("READ CAPACITY(10)", &r);
        let last = u32::try_from(DISK_BLOCKS - 1).expect("small disk");
        let mut want = last.to_be_bytes().to_vec();
        want.extend_from_slice(&(BLOCK as u32).to_be_bytes());
        assert_eq!(r.data, want, "{}: READ CAPACITY(10)", self.name);
    }
}

impl Drive for BotDrive<'_, '_> {
    fn read(&mut self, lba: usize, expected: &[u8]) -> Duration {
        let start = Instant::now();
        let r = self.cmd(&rw10(READ_10, lba), DataPhase::In(CMD_BYTES as u32));
        let took = start.elapsed();
        self.check("READ(10)", &r);
        if r.data != expected {
            let at = r.data.iter().zip(expected).position(|(a, b)| a != b);
            panic!(
                "{}: READ(10) at {lba} returned other data than was written ({} bytes, first \
                 difference at byte {at:?})",
                self.name,
                r.data.len()
            );
        }
        took
    }

    fn write(&mut self, lba: usize, data: &[u8]) -> Duration {
        let start = Instant::now();
        let r = self.cmd(&rw10(WRITE_10, lba), DataPhase::Out(data));
        let took = start.elapsed();
        self.check("WRITE(10)", &r);
        assert_eq!(
            r.sent, CMD_BYTES,
            "{}: WRITE(10) moved too little",
            self.name
        );
        took
    }

    fn polls(&self) -> u64 {
        self.host.port().stats().polls
    }
}

/// Run `f` against lunbox's UMS function with `buffer_size` buffers on a RAM LUN holding
/// `disk`.
fn with_lunbox<R>(
    buffer_size: usize,
    disk: Vec<u8>,
    f: impl FnOnce(&mut BotDrive<'_, '_>) -> R,
) -> R {
    let (bus, port) = VirtualBus::new();
    let alloc = UsbBusAllocator::new(bus);
    let dev = share(RamDisk::from_image(disk).expect("whole blocks"));
    let mut config = UmsConfig::new(vec![LunConfig::new(Some(dev), "ram0")]);
    config.max_packet = PACKET;
    config.buffer_size = buffer_size;
    let Ums {
        mut class,
        function,
        control: _control,
    } = Ums::new(&alloc, config).expect("UMS configuration");
    let mut dev = device(&alloc, "lunbox");
    let task = coroutine::spawn("ums", move || function.run());
    let result = {
        let mut step = || {
            dev.poll(&mut [&mut class]);
            class.pump();
            coroutine::yield_now();
        };
        let mut host = VirtualHost::new(port, &mut step);
        let d = host.enumerate().expect("lunbox enumerates");
        let bot = BotHost::find(&d.interfaces).expect("lunbox has a mass-storage interface");
        let mut drive = BotDrive {
            name: "lunbox",
            host: &mut host,
            bot,
        };
        drive.settle();
        f(&mut drive)
    };
    task.stop().expect("the UMS coroutine ends cleanly");
    result
}

/// The peer's view of its RAM disk, with the state its examples keep for READ/WRITE.
struct PeerDisk {
    data: Vec<u8>,
    /// Bytes of the current READ/WRITE moved so far (the examples' `storage_offset`).
    offset: usize,
    /// Sense key, ASC, ASCQ for REQUEST SENSE.
    sense: [u8; 3],
    /// Transport errors the handler saw (none expected).
    errors: u64,
}

/// usbd-storage's class over the virtual bus with a heap buffer.
type PeerClass<'a> = Scsi<BulkOnly<'a, VirtualBus, Vec<u8>>>;

impl PeerDisk {
    fn handle(&mut self, cmd: Command<'_, ScsiCommand, PeerClass<'_>>) {
        if self.serve(cmd).is_err() {
            self.errors += 1;
        }
    }

    /// One call of the SCSI callback (several per READ/WRITE: it is called again while the
    /// transport wants more data).
    fn serve(
        &mut self,
        mut cmd: Command<'_, ScsiCommand, PeerClass<'_>>,
    ) -> Result<(), TransportError<BulkOnlyError>> {
        let blocks = self.data.len() / BLOCK;
        match cmd.kind {
            ScsiCommand::TestUnitReady => cmd.pass(),
            ScsiCommand::Inquiry { .. } => {
                let mut d = [0u8; 36];
                d[1] = 0x80; // removable
                d[2] = 0x04; // SPC-2
                d[3] = 0x02; // response data format
                d[4] = 31; // additional length
                d[8..16].copy_from_slice(b"usbd-sto");
                d[16..32].copy_from_slice(b"RAM disk        ");
                d[32..36].copy_from_slice(b"2.0 ");
                cmd.try_write_data_all(&d)?;
                cmd.pass();
            }
            ScsiCommand::RequestSense { .. } => {
                let mut d = [0u8; 18];
                d[0] = 0x70;
                d[2] = self.sense[0];
                d[7] = 10;
                d[12] = self.sense[1];
                d[13] = self.sense[2];
                self.sense = [0; 3];
                cmd.try_write_data_all(&d)?;
                cmd.pass();
            }
            ScsiCommand::ReadCapacity10 => {
                let mut d = [0u8; 8];
                d[..4].copy_from_slice(&(blocks as u32 - 1).to_be_bytes());
                d[4..].copy_from_slice(&(BLOCK as u32).to_be_bytes());
                cmd.try_write_data_all(&d)?;
                cmd.pass();
            }
            ScsiCommand::ModeSense6 { .. } => {
                cmd.try_write_data_all(&[3, 0, 0, 0])?;
                cmd.pass();
            }
            ScsiCommand::ModeSense10 { .. } => {
                cmd.try_write_data_all(&[0, 6, 0, 0, 0, 0, 0, 0])?;
                cmd.pass();
            }
            ScsiCommand::Read { lba, len } => {
                let (lba, len) = (lba as usize, usize::from(len));
                if lba + len > blocks {
                    self.sense = [0x05, 0x21, 0x00];
                    self.offset = 0;
                    cmd.fail();
                } else if self.offset < len * BLOCK {
                    let start = lba * BLOCK;
                    let n = cmd.write_data(&self.data[start + self.offset..start + len * BLOCK])?;
                    self.offset += n;
                } else {
                    self.offset = 0;
                    cmd.pass();
                }
            }
            ScsiCommand::Write { lba, len } => {
                let (lba, len) = (lba as usize, usize::from(len));
                if lba + len > blocks {
                    self.sense = [0x05, 0x21, 0x00];
                    self.offset = 0;
                    cmd.fail();
                } else if self.offset < len * BLOCK {
                    let start = lba * BLOCK;
                    let n =
                        cmd.read_data(&mut self.data[start + self.offset..start + len * BLOCK])?;
                    self.offset += n;
                    if self.offset == len * BLOCK {
                        self.offset = 0;
                        cmd.pass();
                    }
                } else {
                    self.offset = 0;
                    cmd.pass();
                }
            }
            _ => {
                self.sense = [0x05, 0x20, 0x00]; // invalid command operation code
                cmd.fail();
            }
        }
        Ok(())
    }
}

/// Run `f` against usbd-storage 2.0 on a RAM disk holding `disk`.
fn with_peer<R>(disk: Vec<u8>, f: impl FnOnce(&mut BotDrive<'_, '_>) -> R) -> R {
    let (bus, port) = VirtualBus::new();
    let alloc = UsbBusAllocator::new(bus);
    let mut scsi: PeerClass<'_> =
        Scsi::new(&alloc, PACKET, 0, vec![0u8; PEER_BUFFER]).expect("usbd-storage class");
    let mut dev = device(&alloc, "usbd-storage");
    let mut disk = PeerDisk {
        data: disk,
        offset: 0,
        sense: [0; 3],
        errors: 0,
    };
    let mut usb_errors = 0u64;
    let result = {
        let mut step = || {
            dev.poll(&mut [&mut scsi]);
            // Every step, event or not (see the peer notes).
            if scsi.poll(|cmd| disk.handle(cmd)).is_err() {
                usb_errors += 1;
            }
        };
        let mut host = VirtualHost::new(port, &mut step);
        let d = host.enumerate().expect("usbd-storage enumerates");
        let bot = BotHost::find(&d.interfaces).expect("usbd-storage has a mass-storage interface");
        let mut drive = BotDrive {
            name: "usbd-storage",
            host: &mut host,
            bot,
        };
        drive.settle();
        f(&mut drive)
    };
    assert_eq!(
        (disk.errors, usb_errors),
        (0, 0),
        "usbd-storage: transport errors (handler, poll)"
    );
    result
}

/// The harness floor: a vendor interface whose Bulk-In always holds a packet and whose
/// Bulk-Out takes every packet.
struct Floor<'a> {
    interface: InterfaceNumber,
    ep_in: EndpointIn<'a, VirtualBus>,
    ep_out: EndpointOut<'a, VirtualBus>,
    packet: [u8; PACKET as usize],
    scratch: [u8; PACKET as usize],
    received: Rc<Cell<u64>>,
}

impl Floor<'_> {
    /// The packet the source sends, over and over.
    fn pattern() -> [u8; PACKET as usize] {
        std::array::from_fn(|i| (i * 7 + 1) as u8)
    }

    fn pump(&mut self) {
        if let Ok(n) = self.ep_out.read(&mut self.scratch) {
            self.received.set(self.received.get() + n as u64);
        }
        let _ = self.ep_in.write(&self.packet); // WouldBlock while the last one waits
    }
}

impl UsbClass<VirtualBus> for Floor<'_> {
    fn get_configuration_descriptors(
        &self,
        writer: &mut DescriptorWriter<'_>,
    ) -> usb_device::Result<()> {
        writer.interface(self.interface, 0xFF, 0, 0)?;
        writer.endpoint(&self.ep_in)?;
        writer.endpoint(&self.ep_out)?;
        Ok(())
    }
}

/// The floor behind the virtual host: plain bulk transfers of 1 MiB.
struct FloorDrive<'h, 's> {
    host: &'h mut VirtualHost<'s>,
    ep_in: u8,
    ep_out: u8,
    received: Rc<Cell<u64>>,
}

impl Drive for FloorDrive<'_, '_> {
    fn read(&mut self, _lba: usize, _expected: &[u8]) -> Duration {
        let start = Instant::now();
        let data = self
            .host
            .bulk_in(self.ep_in, usize::from(PACKET), CMD_BYTES)
            .expect("floor bulk IN");
        let took = start.elapsed();
        let p = Floor::pattern();
        assert!(
            data.len() == CMD_BYTES && data.chunks(p.len()).all(|c| c == p),
            "floor: bulk IN returned other data"
        );
        took
    }

    fn write(&mut self, _lba: usize, data: &[u8]) -> Duration {
        let before = self.received.get();
        let start = Instant::now();
        let sent = self
            .host
            .bulk_out(self.ep_out, usize::from(PACKET), data, false)
            .expect("floor bulk OUT");
        let took = start.elapsed();
        assert_eq!(
            (sent as u64, self.received.get() - before),
            (CMD_BYTES as u64, CMD_BYTES as u64),
            "floor: bulk OUT lost data"
        );
        took
    }

    fn polls(&self) -> u64 {
        self.host.port().stats().polls
    }
}

/// Run `f` against the harness floor.
fn with_floor<R>(f: impl FnOnce(&mut FloorDrive<'_, '_>) -> R) -> R {
    let (bus, port) = VirtualBus::new();
    let alloc = UsbBusAllocator::new(bus);
    let received = Rc::new(Cell::new(0));
    let mut floor = Floor {
        interface: alloc.interface(),
        ep_in: alloc.bulk(PACKET),
        ep_out: alloc.bulk(PACKET),
        packet: Floor::pattern(),
        scratch: [0; PACKET as usize],
        received: received.clone(),
    };
    let mut dev = device(&alloc, "floor");
    let mut step = || {
        dev.poll(&mut [&mut floor]);
        if dev.state() == UsbDeviceState::Configured {
            floor.pump();
        }
    };
    let mut host = VirtualHost::new(port, &mut step);
    let d = host.enumerate().expect("floor enumerates");
    let i = d
        .interfaces
        .iter()
        .find(|i| i.class == (0xFF, 0, 0))
        .expect("floor interface");
    let ep = |dir_in: bool| {
        i.endpoints
            .iter()
            .find(|e| (e.address & 0x80 != 0) == dir_in)
            .expect("floor endpoint")
            .address
    };
    let (ep_in, ep_out) = (ep(true), ep(false));
    f(&mut FloorDrive {
        host: &mut host,
        ep_in,
        ep_out,
        received,
    })
}

// ---------------------------------------------------------------------------------------------
// Measurement
// ---------------------------------------------------------------------------------------------

/// Read or write.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Dir {
    Read,
    Write,
}

const DIRS: [Dir; 2] = [Dir::Read, Dir::Write];

/// Best and median of one row and direction.
#[derive(Clone, Copy, Default)]
struct Stats {
    best: f64,
    median: f64,
    /// Device polls per MiB.
    polls: f64,
}

/// One row of the table.
struct Row<'d> {
    name: &'static str,
    drive: &'d mut dyn Drive,
    /// Next LBA (sequential, wrapping).
    lba: usize,
    /// Commands per repetition, per direction.
    cmds: [usize; 2],
    /// MB/s of each repetition, per direction.
    samples: [Vec<f64>; 2],
    /// Polls over the timed repetitions, per direction.
    polls: [u64; 2],
}

impl<'d> Row<'d> {
    fn new(name: &'static str, drive: &'d mut dyn Drive) -> Self {
        Row {
            name,
            drive,
            lba: 0,
            cmds: [0; 2],
            samples: [Vec::new(), Vec::new()],
            polls: [0; 2],
        }
    }

    /// One 1 MiB command at the next LBA; the time inside it.
    fn one(&mut self, dir: Dir, image: &[u8]) -> Duration {
        let lba = self.lba;
        self.lba = (lba + CMD_BLOCKS) % DISK_BLOCKS;
        let bytes = &image[lba * BLOCK..lba * BLOCK + CMD_BYTES];
        match dir {
            Dir::Read => self.drive.read(lba, bytes),
            Dir::Write => self.drive.write(lba, bytes),
        }
    }

    /// Write the whole disk, then read it all back (checked), untimed.
    fn round_trip(&mut self, image: &[u8]) {
        self.lba = 0;
        for dir in [Dir::Write, Dir::Read] {
            for _ in 0..DISK_BLOCKS / CMD_BLOCKS {
                self.one(dir, image);
            }
        }
    }

    /// Read the whole disk back (checked), untimed.
    fn read_back(&mut self, image: &[u8]) {
        self.lba = 0;
        for _ in 0..DISK_BLOCKS / CMD_BLOCKS {
            self.one(Dir::Read, image);
        }
    }

    /// Warm up for [`WARMUP`] and choose the commands per repetition.
    fn calibrate(&mut self, dir: Dir, image: &[u8]) {
        let wall = Instant::now();
        let mut timed = Duration::ZERO;
        let mut n = 0u32;
        while n < 3 || wall.elapsed() < WARMUP {
            timed += self.one(dir, image);
            n += 1;
        }
        let per = timed / n;
        let cmds = (TARGET_REP.as_secs_f64() / per.as_secs_f64()).round() as usize;
        self.cmds[dir as usize] = cmds.clamp(REP_CMDS.0, REP_CMDS.1);
    }

    /// One timed repetition.
    fn rep(&mut self, dir: Dir, image: &[u8]) {
        let d = dir as usize;
        let polls = self.drive.polls();
        let mut timed = Duration::ZERO;
        for _ in 0..self.cmds[d] {
            timed += self.one(dir, image);
        }
        self.polls[d] += self.drive.polls() - polls;
        let mbs = (self.cmds[d] * CMD_BYTES) as f64 / timed.as_secs_f64() / 1e6;
        self.samples[d].push(mbs);
    }

    fn stats(&self, dir: Dir) -> Stats {
        let d = dir as usize;
        let mut s = self.samples[d].clone();
        s.sort_by(f64::total_cmp);
        let n = s.len();
        let median = if n % 2 == 1 {
            s[n / 2]
        } else {
            (s[n / 2 - 1] + s[n / 2]) / 2.0
        };
        Stats {
            best: s[n - 1],
            median,
            polls: self.polls[d] as f64 / (self.cmds[d] * n) as f64,
        }
    }
}

/// Measure every row (interleaved) and print the table.
fn run(rows: &mut [Row<'_>], image: &[u8]) {
    for row in rows.iter_mut() {
        row.round_trip(image);
    }
    for dir in DIRS {
        for row in rows.iter_mut() {
            row.calibrate(dir, image);
        }
    }
    for rep in 0..REPS {
        for dir in DIRS {
            for k in 0..rows.len() {
                let i = (rep + k) % rows.len();
                rows[i].rep(dir, image);
            }
        }
    }
    for row in rows.iter_mut() {
        row.read_back(image);
    }

    println!(
        "{:<34} {:>22} {:>9}   {:>22} {:>9}",
        "", "READ(10) MB/s", "polls/", "WRITE(10) MB/s", "polls/"
    );
    println!(
        "{:<34} {:>10} {:>11} {:>9}   {:>10} {:>11} {:>9}",
        "row", "best", "median", "MiB", "best", "median", "MiB"
    );
    for row in rows.iter() {
        let (r, w) = (row.stats(Dir::Read), row.stats(Dir::Write));
        println!(
            "{:<34} {:>10.0} {:>11.0} {:>9.0}   {:>10.0} {:>11.0} {:>9.0}",
            row.name, r.best, r.median, r.polls, w.best, w.median, w.polls
        );
    }
    println!(
        "(commands per repetition: {})",
        rows.iter()
            .map(|r| format!("{} {}/{}", r.name, r.cmds[0], r.cmds[1]))
            .collect::<Vec<_>>()
            .join(", ")
    );
}

/// Print lunbox/usbd-storage for `lunbox` against `peer`, and whether the targets are met
/// (judged on the medians).
fn verdict(lunbox: &Row<'_>, peer: &Row<'_>) {
    let mark = |ok: bool| if ok { "met" } else { "NOT MET" };
    println!("{}:", lunbox.name);
    for dir in DIRS {
        let (l, p) = (lunbox.stats(dir), peer.stats(dir));
        let ratio = l.median / p.median;
        let overall = ratio >= TARGET_RATIO && l.median >= TARGET_MBS;
        println!(
            "  {:<6} {ratio:.2}x usbd-storage (best {:.2}x) [>= {TARGET_RATIO:.1}x: {}], \
             {:.0} MB/s [>= {TARGET_MBS:.0} MB/s: {}] => target {}",
            match dir {
                Dir::Read => "read:",
                Dir::Write => "write:",
            },
            l.best / p.best,
            mark(ratio >= TARGET_RATIO),
            l.median,
            mark(l.median >= TARGET_MBS),
            mark(overall),
        );
    }
}

fn main() {
    let started = Instant::now();
    println!(
        "UMS throughput: sequential {} MiB READ(10)/WRITE(10) on a {} MiB RAM LUN, {PACKET}-B \
         bulk packets, in-process virtual host",
        CMD_BYTES >> 20,
        DISK_BYTES >> 20
    );
    println!(
        "MB/s = 10^6 B/s of time inside BotHost::command; {REPS} interleaved repetitions of \
         ~{} ms each after {} ms warm-up per row and direction",
        TARGET_REP.as_millis(),
        WARMUP.as_millis()
    );
    let img = image(0x9E37_79B9_7F4A_7C15);
    // Every disk starts with other content than the image, so the first round trip shows
    // that writes land.
    let old = image(0x2545_F491_4F6C_DD1D);
    let default = UmsConfig::new(Vec::new());
    // `cargo bench ... -- TEXT` measures only the rows whose name contains TEXT (profiling).
    let filter = std::env::args().skip(1).find(|a| !a.starts_with("--"));
    assert_eq!(
        (default.buffers, default.buffer_size),
        (2, 16 * 1024),
        "the row name {LUNBOX_16K} states the default buffers"
    );

    with_floor(|floor| {
        with_peer(old.clone(), |peer| {
            with_lunbox(default.buffer_size, old.clone(), |lunbox| {
                with_lunbox(64 * 1024, old.clone(), |lunbox64| {
                    let mut rows = vec![
                        Row::new(FLOOR, floor),
                        Row::new(PEER, peer),
                        Row::new(LUNBOX_16K, lunbox),
                        Row::new(LUNBOX_64K, lunbox64),
                    ];
                    rows.retain(|r| filter.as_ref().is_none_or(|f| r.name.contains(f.as_str())));
                    run(&mut rows, &img);
                    println!(
                        "\ntarget: lunbox >= {TARGET_RATIO:.1}x usbd-storage and >= \
                         {TARGET_MBS:.0} MB/s (medians)"
                    );
                    let find = |name: &str| rows.iter().find(|r| r.name == name);
                    if let Some(peer) = find(PEER) {
                        for lunbox in [LUNBOX_16K, LUNBOX_64K].into_iter().filter_map(find) {
                            verdict(lunbox, peer);
                        }
                    }
                })
            })
        })
    });
    println!(
        "\ndata checked: whole disk written and read back before and read back after timing, \
         every timed READ compared; total run {:.1} s",
        started.elapsed().as_secs_f64()
    );
}
