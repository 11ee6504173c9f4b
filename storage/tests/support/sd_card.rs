//! A simulated SD card (SDHC, block addressed) on an SPI bus, modelled byte for byte.
//!
//! [`SimSdCard`] implements `embedded_hal::spi::SpiDevice<u8>` over an in-memory image. Every
//! byte the host clocks is full duplex: the card shifts out the byte it had ready while it
//! shifts in the host's byte, so anything the card answers appears from the *next* byte on,
//! after [`Config::ncr`] bytes of 0xFF response latency.
//!
//! What it speaks (SD Physical Layer, SPI mode):
//!
//! - power up: optionally ignores everything until [`Config::power_up_clocks`] clocks went by;
//!   until CMD0 (with a valid CRC) it is in SD mode and silent on MISO.
//! - CMD0 (R1 idle), CMD8 (R7, voltage and check pattern echoed), CMD59 (CRC on/off),
//!   CMD55 + ACMD41 (idle for [`Config::acmd41_busy_polls`] polls, then ready; an SDHC card
//!   never gets ready without HCS), CMD58 (R3, OCR with power-up status and CCS = 1),
//!   CMD9 (CSD version 2.0 whose C_SIZE gives the image size, as a data block), CMD13 (R2),
//!   CMD17 / CMD18 + CMD12 (data token 0xFE, 512 bytes, CRC16; CMD18 streams until CMD12, which
//!   is answered after a stuff byte and followed by busy), CMD55 + ACMD23, CMD24 / CMD25
//!   (start tokens 0xFE / 0xFC, stop token 0xFD, data response, busy 0x00 bytes then 0xFF).
//! - Command CRC7 is checked on CMD0 and CMD8 always and on everything once CMD59 turned CRC
//!   on (R1 "CRC error" otherwise); data block CRC16 is checked on writes when CRC is on (data
//!   response "CRC error") and always sent on reads. Unknown commands get R1 "illegal command".
//! - Reading past the end of the card in a CMD18 stream sends the "out of range" data error
//!   token and stops the stream; after a data error token in a CMD18 stream the card stays in
//!   the data state until CMD12 (other commands there are "illegal").
//!
//! Failure injection: no card at all (MISO stays 0xFF), a data error token ("card ECC failed")
//! instead of 0xFE for chosen blocks, a write error data response for chosen blocks.
//! Observation: the image, every command the card decoded, and a list of protocol violations
//! by the host (bad CRCs, commands while busy, bytes where a token belongs), which tests
//! expect to stay empty.

#![allow(dead_code, reason = "not every test uses every knob")]

use std::cell::RefCell;
use std::collections::{BTreeSet, VecDeque};
use std::convert::Infallible;
use std::rc::Rc;

use embedded_hal::spi::{ErrorType, Operation, SpiDevice};

/// Bytes per block (SDHC cards have a fixed 512-byte block).
pub(crate) const BLOCK: usize = 512;

/// R1: in idle state (initialising).
pub(crate) const R1_IDLE: u8 = 0x01;
/// R1: illegal command.
pub(crate) const R1_ILLEGAL_COMMAND: u8 = 0x04;
/// R1: command CRC error.
pub(crate) const R1_COM_CRC_ERROR: u8 = 0x08;
/// R1: parameter (address) out of range.
pub(crate) const R1_PARAMETER_ERROR: u8 = 0x40;

/// Start token of a data block (reads, CMD9, single-block writes).
pub(crate) const TOKEN_START_BLOCK: u8 = 0xFE;
/// Start token of each block of a CMD25 write.
pub(crate) const TOKEN_START_MULTI_WRITE: u8 = 0xFC;
/// Stop token of a CMD25 write.
pub(crate) const TOKEN_STOP_TRAN: u8 = 0xFD;
/// Data error token: card ECC failed (the card could not read the block).
pub(crate) const TOKEN_ERROR_ECC: u8 = 0x04;
/// Data error token: out of range.
pub(crate) const TOKEN_ERROR_OUT_OF_RANGE: u8 = 0x08;
/// Data response: accepted.
pub(crate) const DATA_ACCEPTED: u8 = 0x05;
/// Data response: rejected, CRC error.
pub(crate) const DATA_CRC_ERROR: u8 = 0x0B;
/// Data response: rejected, write error.
pub(crate) const DATA_WRITE_ERROR: u8 = 0x0D;

/// CRC7 (x^7 + x^3 + 1) as SD commands and the CSD use it, without the end bit.
pub(crate) fn crc7(bytes: &[u8]) -> u8 {
    let mut crc = 0u8;
    for &byte in bytes {
        for bit in (0..8).rev() {
            let feedback = ((byte >> bit) & 1) ^ ((crc >> 6) & 1);
            crc = (crc << 1) & 0x7F;
            if feedback != 0 {
                crc ^= 0x09;
            }
        }
    }
    crc
}

/// CRC16-CCITT (x^16 + x^12 + x^5 + 1, initial 0) as SD data blocks use it.
pub(crate) fn crc16(bytes: &[u8]) -> u16 {
    let mut crc = 0u16;
    for &byte in bytes {
        crc ^= u16::from(byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// A CSD register, structure version 2.0 (SDHC/SDXC), for a card of `blocks` 512-byte blocks
/// (a multiple of 1024: capacity is (C_SIZE + 1) * 512 KiB), with its CRC7.
pub(crate) fn csd_v2(blocks: u64) -> [u8; 16] {
    assert!(
        blocks > 0 && blocks.is_multiple_of(1024),
        "CSD 2.0 sizes are whole multiples of 512 KiB"
    );
    let c_size = u128::from(blocks / 1024 - 1);
    assert!(c_size < 1 << 22, "C_SIZE is 22 bits");
    let fields: [(u128, u32); 10] = [
        (1, 126),     // CSD_STRUCTURE: 1, version 2.0
        (0x0E, 112),  // TAAC: 1 ms
        (0x32, 96),   // TRAN_SPEED: 25 MHz
        (0x5B5, 84),  // CCC: classes 0, 2, 4, 5, 7, 8, 10
        (9, 80),      // READ_BL_LEN: 512
        (c_size, 48), // C_SIZE
        (1, 46),      // ERASE_BLK_EN
        (0x7F, 39),   // SECTOR_SIZE: 128 blocks
        (2, 26),      // R2W_FACTOR: x4
        (9, 22),      // WRITE_BL_LEN: 512
    ];
    let v = fields
        .iter()
        .fold(0u128, |v, &(field, at)| v | (field << at));
    let mut csd = v.to_be_bytes();
    csd[15] = (crc7(&csd[..15]) << 1) | 1;
    csd
}

/// One command frame as the card decoded it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Command {
    /// The command index (17 for CMD17; 41 for ACMD41, with `app` set).
    pub(crate) index: u8,
    /// The 32-bit argument.
    pub(crate) arg: u32,
    /// Whether it was an application command (the one after CMD55).
    pub(crate) app: bool,
}

impl Command {
    /// Whether this is a block read or write command (CMD17, CMD18, CMD24, CMD25).
    pub(crate) fn moves_data(&self) -> bool {
        !self.app && matches!(self.index, 17 | 18 | 24 | 25)
    }
}

/// Timing and behaviour of the simulated card.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    /// 0xFF bytes before each command response (NCR; 1 to 8 on real cards).
    pub(crate) ncr: usize,
    /// 0xFF bytes before each data token (NAC, the read access time).
    pub(crate) nac: usize,
    /// 0x00 busy bytes after each written block, after a stop token and after CMD12.
    pub(crate) busy: usize,
    /// 0xFF bytes between a stop token and the busy bytes (N_BR: 0 or 1 by the spec; a host
    /// must skip one byte before it polls for "not busy").
    pub(crate) nbr: usize,
    /// ACMD41 polls answered "still idle" before the card reports ready.
    pub(crate) acmd41_busy_polls: u32,
    /// Clocks the card needs after power-up before it hears CMD0 (the spec asks the host for
    /// at least 74 with CS high; 0 models a forgiving card).
    pub(crate) power_up_clocks: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            ncr: 2,
            nac: 3,
            busy: 4,
            nbr: 0,
            acmd41_busy_polls: 2,
            power_up_clocks: 0,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Powered, in SD mode: waits for CMD0 with CS asserted.
    PowerUp,
    /// SPI mode, initialising (R1 idle bit set).
    Idle,
    /// SPI mode, initialised: data transfer commands work.
    Ready,
}

#[derive(Debug)]
enum Data {
    /// No data transfer: commands are decoded.
    None,
    /// A CMD18 stream: `next` is the block sent next; `halted` after a data error token.
    ReadMulti { next: u64, halted: bool },
    /// A CMD24 / CMD25 write at block `lba`: waiting for a token (`rx` empty) or receiving a
    /// block and its CRC (`rx` holds what came so far).
    Write {
        lba: u64,
        multi: bool,
        rx: Option<Vec<u8>>,
    },
}

#[derive(Debug)]
struct Card {
    cfg: Config,
    image: Vec<u8>,
    present: bool,
    mode: Mode,
    crc_on: bool,
    app_next: bool,
    acmd41_polls: u32,
    clocks: u64,
    transactions: u64,
    /// What the card shifts out next; 0xFF when empty (or the next stream bytes).
    out: VecDeque<u8>,
    /// The command frame being received.
    frame: Vec<u8>,
    /// Bytes of an ignored frame still to swallow.
    swallow: usize,
    data: Data,
    fail_reads: BTreeSet<u64>,
    fail_writes: BTreeSet<u64>,
    pre_erase: Option<u32>,
    log: Vec<Command>,
    violations: Vec<String>,
}

impl Card {
    fn blocks(&self) -> u64 {
        (self.image.len() / BLOCK) as u64
    }

    fn violation(&mut self, what: String) {
        self.violations.push(what);
    }

    /// One full-duplex byte: what the card had ready goes out, `mosi` comes in.
    fn exchange(&mut self, mosi: u8) -> u8 {
        if !self.present {
            return 0xFF;
        }
        let miso = self.next_out();
        self.receive(mosi);
        self.clocks += 8;
        miso
    }

    fn next_out(&mut self) -> u8 {
        if self.out.is_empty()
            && let Data::ReadMulti {
                next,
                halted: false,
            } = self.data
        {
            self.queue_block(next, true);
        }
        self.out.pop_front().unwrap_or(0xFF)
    }

    /// Queue block `lba` as a data block (after NAC), or a data error token. In a CMD18
    /// stream, move it on (or halt it on an error).
    fn queue_block(&mut self, lba: u64, stream: bool) {
        self.out.extend(std::iter::repeat_n(0xFF, self.cfg.nac));
        let error = if lba >= self.blocks() {
            Some(TOKEN_ERROR_OUT_OF_RANGE)
        } else if self.fail_reads.contains(&lba) {
            Some(TOKEN_ERROR_ECC)
        } else {
            None
        };
        match error {
            Some(token) => self.out.push_back(token),
            None => {
                let at = lba as usize * BLOCK;
                let block = &self.image[at..at + BLOCK];
                self.out.push_back(TOKEN_START_BLOCK);
                self.out.extend(block.iter().copied());
                self.out.extend(crc16(block).to_be_bytes());
            }
        }
        if stream {
            self.data = Data::ReadMulti {
                next: lba + 1,
                halted: error.is_some(),
            };
        }
    }

    fn receive(&mut self, mosi: u8) {
        if let Data::Write { .. } = self.data {
            self.receive_write(mosi);
            return;
        }
        if self.swallow > 0 {
            self.swallow -= 1;
            return;
        }
        if self.frame.is_empty() {
            // Between commands the host clocks 0xFF (and a CMD18 stream is read with 0xFF):
            // a frame starts with the start bit 0 and the transmission bit 1.
            if mosi & 0xC0 != 0x40 {
                return;
            }
            if self.mode == Mode::PowerUp && self.clocks < self.cfg.power_up_clocks {
                // Not ready to listen yet: the frame is lost.
                self.swallow = 5;
                return;
            }
            let streaming = matches!(self.data, Data::ReadMulti { .. });
            if !self.out.is_empty() && !streaming {
                let pending = self.out.len();
                self.violation(format!(
                    "CMD{} started while the card still had {pending} bytes to send (busy?)",
                    mosi & 0x3F
                ));
                self.swallow = 5;
                return;
            }
        }
        self.frame.push(mosi);
        if self.frame.len() == 6 {
            let frame = std::mem::take(&mut self.frame);
            self.command(&frame);
        }
    }

    fn respond(&mut self, bytes: &[u8]) {
        self.out.extend(std::iter::repeat_n(0xFF, self.cfg.ncr));
        self.out.extend(bytes.iter().copied());
    }

    fn r1(&self) -> u8 {
        if self.mode == Mode::Idle { R1_IDLE } else { 0 }
    }

    fn busy(&mut self) {
        self.out.extend(std::iter::repeat_n(0x00, self.cfg.busy));
    }

    fn command(&mut self, frame: &[u8]) {
        let index = frame[0] & 0x3F;
        let arg = u32::from_be_bytes([frame[1], frame[2], frame[3], frame[4]]);
        let crc_ok = frame[5] == (crc7(&frame[..5]) << 1) | 1;

        if self.mode == Mode::PowerUp {
            // SD mode: only CMD0 (with a good CRC, always checked there) switches to SPI mode;
            // anything else would be answered on the CMD line, not on MISO.
            if index != 0 || !crc_ok {
                return;
            }
        }
        let app = std::mem::take(&mut self.app_next) && matches!(index, 23 | 41);
        self.log.push(Command { index, arg, app });
        let name = if app { "ACMD" } else { "CMD" };

        if !crc_ok && (self.crc_on || index == 0 || index == 8) {
            self.violation(format!(
                "{name}{index} with a bad CRC byte {:#04x}",
                frame[5]
            ));
            let r1 = self.r1() | R1_COM_CRC_ERROR;
            self.respond(&[r1]);
            return;
        }

        if let Data::ReadMulti { .. } = self.data {
            match index {
                12 => {
                    // The card still shifts out one byte (the stuff byte) before it stops.
                    let stuff = self.next_out();
                    self.out.clear();
                    self.data = Data::None;
                    self.out.push_back(stuff);
                    self.respond(&[0x00]);
                    self.busy();
                    return;
                }
                0 => {}
                _ => {
                    self.violation(format!(
                        "{name}{index} during a CMD18 read: the host never sent CMD12"
                    ));
                    let r1 = self.r1() | R1_ILLEGAL_COMMAND;
                    self.respond(&[r1]);
                    return;
                }
            }
        }

        let ready = self.mode == Mode::Ready;
        match (app, index) {
            (_, 0) => {
                self.mode = Mode::Idle;
                self.crc_on = false;
                self.acmd41_polls = 0;
                self.data = Data::None;
                self.out.clear();
                self.respond(&[R1_IDLE]);
            }
            (false, 8) => {
                let voltage = ((arg >> 8) & 0x0F) as u8;
                let accepted = if voltage == 0x1 { 0x1 } else { 0x0 };
                let r1 = self.r1();
                self.respond(&[r1, 0x00, 0x00, accepted, arg as u8]);
            }
            (false, 59) => {
                self.crc_on = arg & 1 == 1;
                let r1 = self.r1();
                self.respond(&[r1]);
            }
            (false, 55) => {
                self.app_next = true;
                let r1 = self.r1();
                self.respond(&[r1]);
            }
            (true, 41) => {
                if self.mode == Mode::Idle {
                    self.acmd41_polls += 1;
                    // An SDHC card stays idle for a host that does not set HCS (bit 30).
                    let hcs = arg & (1 << 30) != 0;
                    if hcs && self.acmd41_polls > self.cfg.acmd41_busy_polls {
                        self.mode = Mode::Ready;
                    }
                }
                let r1 = self.r1();
                self.respond(&[r1]);
            }
            (true, 23) if ready => {
                self.pre_erase = Some(arg & 0x7F_FFFF);
                self.respond(&[0x00]);
            }
            (false, 58) => {
                // Voltage window 2.7-3.6 V; power-up status and CCS once initialised.
                let mut ocr: u32 = 0x00FF_8000;
                if ready {
                    ocr |= 0xC000_0000;
                }
                let r1 = self.r1();
                let o = ocr.to_be_bytes();
                self.respond(&[r1, o[0], o[1], o[2], o[3]]);
            }
            (false, 9) if ready => {
                self.respond(&[0x00]);
                let csd = csd_v2(self.blocks());
                self.out.extend(std::iter::repeat_n(0xFF, self.cfg.nac));
                self.out.push_back(TOKEN_START_BLOCK);
                self.out.extend(csd);
                self.out.extend(crc16(&csd).to_be_bytes());
            }
            (false, 13) => {
                let r1 = self.r1();
                self.respond(&[r1, 0x00]);
            }
            (false, 12) => {
                // Not in a read: nothing to stop. The stuff byte, then R1.
                self.out.push_back(0xFF);
                let r1 = self.r1();
                self.respond(&[r1]);
            }
            (false, 17 | 18 | 24 | 25) if ready => {
                let lba = u64::from(arg);
                if lba >= self.blocks() {
                    self.respond(&[R1_PARAMETER_ERROR]);
                    return;
                }
                self.respond(&[0x00]);
                match index {
                    17 => self.queue_block(lba, false),
                    18 => {
                        self.data = Data::ReadMulti {
                            next: lba,
                            halted: false,
                        }
                    }
                    _ => {
                        self.data = Data::Write {
                            lba,
                            multi: index == 25,
                            rx: None,
                        }
                    }
                }
            }
            _ => {
                let r1 = self.r1() | R1_ILLEGAL_COMMAND;
                self.respond(&[r1]);
            }
        }
    }

    /// A byte while a CMD24 / CMD25 write is in progress.
    fn receive_write(&mut self, mosi: u8) {
        let Data::Write { lba, multi, rx } = &mut self.data else {
            unreachable!("receive_write outside a write")
        };
        let (lba, multi) = (*lba, *multi);
        match rx {
            Some(buf) => {
                buf.push(mosi);
                if buf.len() == BLOCK + 2 {
                    let buf = std::mem::take(buf);
                    self.finish_block(lba, multi, &buf);
                }
            }
            None => {
                if mosi == 0xFF {
                    return;
                }
                if !self.out.is_empty() {
                    self.violation(format!(
                        "byte {mosi:#04x} sent while the card was busy programming"
                    ));
                    return;
                }
                match (mosi, multi) {
                    (TOKEN_START_BLOCK, false) | (TOKEN_START_MULTI_WRITE, true) => {
                        self.data = Data::Write {
                            lba,
                            multi,
                            rx: Some(Vec::with_capacity(BLOCK + 2)),
                        };
                    }
                    (TOKEN_STOP_TRAN, true) => {
                        self.data = Data::None;
                        // N_BR, then busy while the card finishes programming.
                        self.out.extend(std::iter::repeat_n(0xFF, self.cfg.nbr));
                        self.busy();
                    }
                    (b, _) => self.violation(format!(
                        "byte {b:#04x} where a data token belongs (CMD{} at block {lba})",
                        if multi { 25 } else { 24 }
                    )),
                }
            }
        }
    }

    fn finish_block(&mut self, lba: u64, multi: bool, buf: &[u8]) {
        let (data, crc) = buf.split_at(BLOCK);
        let crc = u16::from_be_bytes([crc[0], crc[1]]);
        let response = if self.crc_on && crc != crc16(data) {
            self.violation(format!("data block for block {lba} with a bad CRC16"));
            DATA_CRC_ERROR
        } else if lba >= self.blocks() || self.fail_writes.contains(&lba) {
            DATA_WRITE_ERROR
        } else {
            let at = lba as usize * BLOCK;
            self.image[at..at + BLOCK].copy_from_slice(data);
            DATA_ACCEPTED
        };
        // The data response follows the CRC immediately, then busy while programming.
        self.out.push_back(response);
        self.busy();
        self.data = if multi {
            Data::Write {
                lba: lba + 1,
                multi,
                rx: None,
            }
        } else {
            Data::None
        };
    }
}

/// The simulated card and its SPI device: clones share one card, so a test keeps a clone to
/// inspect the card the driver owns.
#[derive(Debug, Clone)]
pub(crate) struct SimSdCard {
    card: Rc<RefCell<Card>>,
}

impl SimSdCard {
    /// A card holding `image` (its length a whole multiple of 512 KiB), default timing.
    pub(crate) fn new(image: Vec<u8>) -> Self {
        Self::with_config(image, Config::default())
    }

    /// A card holding `image` with the given timing and behaviour.
    pub(crate) fn with_config(image: Vec<u8>, cfg: Config) -> Self {
        // csd_v2 checks the size.
        let _ = csd_v2((image.len() / BLOCK) as u64);
        assert!(image.len().is_multiple_of(BLOCK));
        SimSdCard {
            card: Rc::new(RefCell::new(Card {
                cfg,
                image,
                present: true,
                mode: Mode::PowerUp,
                crc_on: false,
                app_next: false,
                acmd41_polls: 0,
                clocks: 0,
                transactions: 0,
                out: VecDeque::new(),
                frame: Vec::new(),
                swallow: 0,
                data: Data::None,
                fail_reads: BTreeSet::new(),
                fail_writes: BTreeSet::new(),
                pre_erase: None,
                log: Vec::new(),
                violations: Vec::new(),
            })),
        }
    }

    /// An empty slot: nothing drives MISO, the host reads 0xFF whatever it sends.
    pub(crate) fn no_card() -> Self {
        let sim = Self::new(vec![0; 1024 * BLOCK]);
        sim.set_present(false);
        sim
    }

    /// Insert or remove the card (removing it does not reset it).
    pub(crate) fn set_present(&self, present: bool) {
        self.card.borrow_mut().present = present;
    }

    /// Answer reads of block `lba` with a "card ECC failed" data error token.
    pub(crate) fn fail_reads_of(&self, lba: u64) {
        self.card.borrow_mut().fail_reads.insert(lba);
    }

    /// Answer writes of block `lba` with a "write error" data response (and keep the old data).
    pub(crate) fn fail_writes_of(&self, lba: u64) {
        self.card.borrow_mut().fail_writes.insert(lba);
    }

    /// Number of blocks of the image.
    pub(crate) fn blocks(&self) -> u64 {
        self.card.borrow().blocks()
    }

    /// A copy of the whole image.
    pub(crate) fn image(&self) -> Vec<u8> {
        self.card.borrow().image.clone()
    }

    /// A copy of `count` blocks of the image from block `lba`.
    pub(crate) fn image_blocks(&self, lba: u64, count: usize) -> Vec<u8> {
        let at = lba as usize * BLOCK;
        self.card.borrow().image[at..at + count * BLOCK].to_vec()
    }

    /// How many command frames the card has decoded.
    pub(crate) fn commands_seen(&self) -> usize {
        self.card.borrow().log.len()
    }

    /// Every command frame the card has decoded, in order.
    pub(crate) fn commands(&self) -> Vec<Command> {
        self.card.borrow().log.clone()
    }

    /// What the host did against the protocol (empty for a well-behaved host).
    pub(crate) fn violations(&self) -> Vec<String> {
        self.card.borrow().violations.clone()
    }

    /// Whether the card has CRC checking on (CMD59).
    pub(crate) fn crc_on(&self) -> bool {
        self.card.borrow().crc_on
    }

    /// Whether the card is in the middle of a CMD18 stream (waiting for CMD12).
    pub(crate) fn in_multi_block_read(&self) -> bool {
        matches!(self.card.borrow().data, Data::ReadMulti { .. })
    }

    /// The last ACMD23 (pre-erase) block count.
    pub(crate) fn pre_erase(&self) -> Option<u32> {
        self.card.borrow().pre_erase
    }

    /// SPI clock cycles the card has seen.
    pub(crate) fn clocks(&self) -> u64 {
        self.card.borrow().clocks
    }

    /// SPI transactions (chip-select assertions) so far.
    pub(crate) fn transactions(&self) -> u64 {
        self.card.borrow().transactions
    }
}

impl ErrorType for SimSdCard {
    type Error = Infallible;
}

impl SpiDevice<u8> for SimSdCard {
    /// One chip-select assertion. Bytes the host does not provide (a `Read`, or the tail of a
    /// `Transfer` whose write buffer is shorter) are clocked out as 0xFF; `DelayNs` only passes
    /// time, which this card does not model.
    fn transaction(&mut self, operations: &mut [Operation<'_, u8>]) -> Result<(), Infallible> {
        let mut card = self.card.borrow_mut();
        card.transactions += 1;
        for op in operations {
            match op {
                Operation::Read(buf) => {
                    for b in buf.iter_mut() {
                        *b = card.exchange(0xFF);
                    }
                }
                Operation::Write(buf) => {
                    for &b in buf.iter() {
                        card.exchange(b);
                    }
                }
                Operation::Transfer(read, write) => {
                    for i in 0..read.len().max(write.len()) {
                        let miso = card.exchange(write.get(i).copied().unwrap_or(0xFF));
                        if let Some(r) = read.get_mut(i) {
                            *r = miso;
                        }
                    }
                }
                Operation::TransferInPlace(buf) => {
                    for b in buf.iter_mut() {
                        *b = card.exchange(*b);
                    }
                }
                Operation::DelayNs(_) => {}
            }
        }
        Ok(())
    }
}
