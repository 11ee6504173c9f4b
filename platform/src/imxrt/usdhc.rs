//! The Teensy 4.1's built-in microSD slot: uSDHC1, 4-bit SD bus, transfers by programmed I/O
//! (the CPU moves every word through the data port; no DMA yet).
//!
//! [`Usdhc`] implements embedded-sdmmc's `BlockDevice`, so the storage layer wraps it like the
//! SPI card (`SdmmcBackend`). The card is brought up on first use and again after any failed
//! transfer: CMD0, CMD8, ACMD41 (SDHC/SDXC and standard capacity), CMD2, CMD3, CMD9 (the
//! capacity from the CSD), CMD7, ACMD6 (4-bit bus); identification at ~400 kHz, data at
//! ~25 MHz (default speed; high speed via CMD6 is not attempted). Reads and writes use
//! CMD17/CMD24 for one block and CMD18/CMD25 with the controller's automatic CMD12 for more.
//! Waits for the card or the controller sleep or yield, so other coroutines keep running.
//!
//! Card detection: DAT3's pad is pulled down (100 kΩ) and cards pull it up; the controller's
//! DAT3 card detection, on from [`Usdhc::new`], reports it ([`Usdhc::card_present`]).
//!
//! Not verified on hardware: see docs/teensy41.md.

use core::cell::RefCell;
use core::fmt;
use core::time::Duration;

use embedded_sdmmc::{Block, BlockCount, BlockIdx};
use imxrt_hal as hal;
use imxrt_ral as ral;
use teensy4_bsp::pins::t41::{P42, P43, P44, P45, P46, P47};

use super::logic;
use crate::coroutine;

/// uSDHC1's root clock under the BSP's clock policy (PLL2 PFD2 / 2).
const BASE_HZ: u32 = teensy4_bsp::board::USDHC1_FREQUENCY;
const IDENTIFICATION_HZ: u32 = 400_000;
const TRANSFER_HZ: u32 = 25_000_000;
/// FIFO watermark in 32-bit words, both ways (128 words of buffer).
const WML: u32 = 16;

// Register bits (i.MX RT1060 reference manual, uSDHC chapter).
const SYS_RSTA: u32 = 1 << 24;
const SYS_RSTC: u32 = 1 << 25;
const SYS_RSTD: u32 = 1 << 26;
const SYS_INITA: u32 = 1 << 27;
const SYS_CLOCK_MASK: u32 = 0x000F_FFF0; // DTOCV, SDCLKFS, DVS
const SYS_DTOCV_MAX: u32 = 0xE << 16;
const PRES_CIHB: u32 = 1 << 0;
const PRES_CDIHB: u32 = 1 << 1;
const PRES_SDSTB: u32 = 1 << 3;
const PRES_CINST: u32 = 1 << 16;
const PROT_DTW_4BIT: u32 = 1 << 1;
const PROT_D3CD: u32 = 1 << 3;
const PROT_EMODE_LITTLE: u32 = 2 << 4;
const INT_CC: u32 = 1 << 0;
const INT_TC: u32 = 1 << 1;
const INT_BWR: u32 = 1 << 4;
const INT_BRR: u32 = 1 << 5;
const INT_CMD_ERRORS: u32 = 0xF << 16; // CTOE, CCE, CEBE, CIE
const INT_CTOE: u32 = 1 << 16;
const INT_DATA_ERRORS: u32 = (0x7 << 20) | (1 << 24); // DTOE, DCE, DEBE, AC12E
const INT_ALL: u32 = 0xFFFF_FFFF;
const MIX_BCEN: u32 = 1 << 1;
const MIX_AC12EN: u32 = 1 << 2;
const MIX_DTDSEL_READ: u32 = 1 << 4;
const MIX_MSBSEL: u32 = 1 << 5;
/// CMD_XFR_TYP: response types and checks.
const RSP_NONE: u32 = 0;
const RSP_136: u32 = 1 << 16;
const RSP_48: u32 = 2 << 16;
const RSP_48_BUSY: u32 = 3 << 16;
const CCCEN: u32 = 1 << 19;
const CICEN: u32 = 1 << 20;
const DPSEL: u32 = 1 << 21;

/// Response formats of the commands used.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Response {
    None,
    /// R1, R6, R7: 48 bits with CRC and index.
    R1,
    /// R1b: R1 and busy on DAT0.
    R1b,
    /// R2: CID or CSD, 136 bits.
    R2,
    /// R3: OCR, no CRC or index.
    R3,
}

impl Response {
    fn bits(self) -> u32 {
        match self {
            Response::None => RSP_NONE,
            Response::R1 => RSP_48 | CCCEN | CICEN,
            Response::R1b => RSP_48_BUSY | CCCEN | CICEN,
            Response::R2 => RSP_136 | CCCEN,
            Response::R3 => RSP_48,
        }
    }
}

/// What went wrong on the built-in slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UsdhcError {
    /// No card in the slot.
    NoCard,
    /// The controller or the card did not get to `what` in time.
    Timeout(&'static str),
    /// Command `index` failed (interrupt status bits).
    Command {
        /// The command index.
        index: u8,
        /// INT_STATUS when it failed.
        status: u32,
    },
    /// A data transfer failed (interrupt status bits).
    Data {
        /// INT_STATUS when it failed.
        status: u32,
    },
    /// The card answered in a way this driver does not handle.
    Unsupported(&'static str),
    /// A block beyond the card's end.
    OutOfRange,
}

impl fmt::Display for UsdhcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UsdhcError::NoCard => f.write_str("no card in the SD slot"),
            UsdhcError::Timeout(what) => write!(f, "SD slot: timeout waiting for {what}"),
            UsdhcError::Command { index, status } => {
                write!(f, "SD slot: CMD{index} failed (status {status:#010x})")
            }
            UsdhcError::Data { status } => {
                write!(f, "SD slot: data transfer failed (status {status:#010x})")
            }
            UsdhcError::Unsupported(what) => write!(f, "SD slot: unsupported card ({what})"),
            UsdhcError::OutOfRange => f.write_str("SD slot: block beyond the card's end"),
        }
    }
}

impl core::error::Error for UsdhcError {}

/// What the card told us at bring-up.
#[derive(Debug, Clone, Copy)]
struct Card {
    /// Relative card address (CMD3), shifted into the argument's upper half.
    rca_arg: u32,
    /// Block-addressed (SDHC/SDXC) rather than byte-addressed (standard capacity).
    high_capacity: bool,
    /// 512-byte blocks.
    blocks: u64,
}

struct Inner {
    regs: ral::usdhc::USDHC1,
    card: Option<Card>,
}

/// The built-in microSD slot (see the module docs).
pub struct Usdhc {
    inner: RefCell<Inner>,
}

impl fmt::Debug for Usdhc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Usdhc").finish_non_exhaustive()
    }
}

/// Pins of the built-in slot: CMD, CLK, DAT0..DAT3 (Teensy 4.1 pads 45, 44, 43, 42, 47, 46).
pub type SlotPins = (P45, P44, P43, P42, P47, P46);

/// Wait until `done` is true, spinning briefly, then sleeping 20 µs at a time (not yielding:
/// a sleep lets the idle hook run when nothing else is ready, which hands interrupt events
/// such as the USB controller's to their coroutines); gives up after `limit`.
fn wait_for(
    limit: Duration,
    what: &'static str,
    mut done: impl FnMut() -> bool,
) -> Result<(), UsdhcError> {
    let deadline = coroutine::now() + limit;
    let mut spins = 0u32;
    loop {
        if done() {
            return Ok(());
        }
        if spins < 256 {
            spins += 1;
            continue;
        }
        if coroutine::now() > deadline {
            return if done() {
                Ok(())
            } else {
                Err(UsdhcError::Timeout(what))
            };
        }
        coroutine::sleep(Duration::from_micros(20));
    }
}

impl Usdhc {
    /// Take uSDHC1 and its pins (the clock root and gate are set by the BSP's clock policy).
    /// The card is brought up on first use.
    pub(crate) fn new(regs: ral::usdhc::USDHC1, pins: SlotPins) -> Self {
        let (mut cmd, mut clk, mut d0, mut d1, mut d2, mut d3) = pins;
        hal::iomuxc::usdhc::prepare(&mut cmd);
        hal::iomuxc::usdhc::prepare(&mut clk);
        hal::iomuxc::usdhc::prepare(&mut d0);
        hal::iomuxc::usdhc::prepare(&mut d1);
        hal::iomuxc::usdhc::prepare(&mut d2);
        hal::iomuxc::usdhc::prepare(&mut d3);
        // DAT3 card detection from the start (its pad has a 100 kΩ pull-down; a card's own
        // pull-up wins): `card_present` must work before the first bring-up, which sets it
        // again after its reset.
        ral::write_reg!(ral::usdhc, regs, PROT_CTRL, PROT_EMODE_LITTLE | PROT_D3CD);
        Usdhc {
            inner: RefCell::new(Inner { regs, card: None }),
        }
    }

    /// Whether a card is in the slot (DAT3 card detection). While a transfer runs (another
    /// coroutine is in the controller, its DAT3 busy with data) the answer is yes.
    pub fn card_present(&self) -> bool {
        match self.inner.try_borrow() {
            Ok(inner) => ral::read_reg!(ral::usdhc, inner.regs, PRES_STATE) & PRES_CINST != 0,
            Err(_) => true,
        }
    }

    /// Forget the card: the next access brings it up again.
    pub fn mark_card_uninit(&self) {
        self.inner.borrow_mut().card = None;
    }

    fn with_card<T>(
        &self,
        f: impl FnOnce(&mut Inner, Card) -> Result<T, UsdhcError>,
    ) -> Result<T, UsdhcError> {
        let mut inner = self.inner.borrow_mut();
        let card = match inner.card {
            Some(card) => card,
            None => {
                let card = inner.bring_up()?;
                inner.card = Some(card);
                card
            }
        };
        let result = f(&mut inner, card);
        if result.is_err() {
            inner.card = None;
        }
        result
    }
}

impl Inner {
    /// Reset the controller, identify the card and switch to the 4-bit bus at 25 MHz.
    fn bring_up(&self) -> Result<Card, UsdhcError> {
        let r = &self.regs;
        ral::modify_reg!(ral::usdhc, r, SYS_CTRL, |s| s | SYS_RSTA);
        wait_for(Duration::from_millis(100), "controller reset", || {
            ral::read_reg!(ral::usdhc, r, SYS_CTRL) & SYS_RSTA == 0
        })?;
        ral::write_reg!(ral::usdhc, r, MMC_BOOT, 0);
        ral::write_reg!(ral::usdhc, r, MIX_CTRL, 0);
        ral::write_reg!(ral::usdhc, r, PROT_CTRL, PROT_EMODE_LITTLE | PROT_D3CD);
        ral::write_reg!(ral::usdhc, r, WTMK_LVL, RD_WML: WML, WR_WML: WML);
        ral::write_reg!(ral::usdhc, r, INT_STATUS_EN, INT_ALL);
        ral::write_reg!(ral::usdhc, r, INT_SIGNAL_EN, 0);
        ral::write_reg!(ral::usdhc, r, INT_STATUS, INT_ALL);
        self.set_clock(IDENTIFICATION_HZ)?;
        // 80 clocks to power up the card.
        ral::modify_reg!(ral::usdhc, r, SYS_CTRL, |s| s | SYS_INITA);
        wait_for(Duration::from_millis(10), "initialization clocks", || {
            ral::read_reg!(ral::usdhc, r, SYS_CTRL) & SYS_INITA == 0
        })?;
        if ral::read_reg!(ral::usdhc, r, PRES_STATE) & PRES_CINST == 0 {
            return Err(UsdhcError::NoCard);
        }

        self.command(0, 0, Response::None)?;
        // CMD8: a version 2.00+ card echoes the check pattern; older ones do not answer.
        let v2 = match self.command(8, 0x1AA, Response::R1) {
            Ok(rsp) if rsp[0] & 0xFFF == 0x1AA => true,
            Ok(_) => return Err(UsdhcError::Unsupported("CMD8 echo mismatch")),
            Err(UsdhcError::Command { status, .. }) if status & INT_CTOE != 0 => false,
            Err(e) => return Err(e),
        };
        // ACMD41 until the card is ready: 2.7–3.6 V window, high capacity if v2.
        let arg = if v2 { 0x40FF_8000 } else { 0x00FF_8000 };
        let deadline = coroutine::now() + Duration::from_secs(1);
        let ocr = loop {
            self.command(55, 0, Response::R1)?;
            let ocr = self.command(41, arg, Response::R3)?[0];
            if ocr & (1 << 31) != 0 {
                break ocr;
            }
            if coroutine::now() > deadline {
                return Err(UsdhcError::Timeout("the card to power up (ACMD41)"));
            }
            coroutine::sleep(Duration::from_millis(10));
        };
        let high_capacity = v2 && ocr & (1 << 30) != 0;
        self.command(2, 0, Response::R2)?; // CID
        let rca_arg = self.command(3, 0, Response::R1)?[0] & 0xFFFF_0000;
        let csd = logic::r2_register(self.command(9, rca_arg, Response::R2)?);
        let blocks = logic::csd_blocks(csd).ok_or(UsdhcError::Unsupported("CSD structure"))?;
        self.set_clock(TRANSFER_HZ)?;
        self.command(7, rca_arg, Response::R1b)?;
        self.command(55, rca_arg, Response::R1)?;
        self.command(6, 2, Response::R1)?; // 4-bit bus
        ral::modify_reg!(ral::usdhc, r, PROT_CTRL, |p| p | PROT_DTW_4BIT);
        self.command(16, 512, Response::R1)?;
        Ok(Card {
            rca_arg,
            high_capacity,
            blocks,
        })
    }

    fn set_clock(&self, max_hz: u32) -> Result<(), UsdhcError> {
        let r = &self.regs;
        let (sdclkfs, dvs, _) =
            logic::usdhc_dividers(BASE_HZ, max_hz).ok_or(UsdhcError::Unsupported("SD clock"))?;
        ral::modify_reg!(ral::usdhc, r, SYS_CTRL, |s| (s & !SYS_CLOCK_MASK)
            | SYS_DTOCV_MAX
            | sdclkfs << 8
            | dvs << 4);
        wait_for(Duration::from_millis(10), "the SD clock", || {
            ral::read_reg!(ral::usdhc, r, PRES_STATE) & PRES_SDSTB != 0
        })
    }

    /// Send a command; its response registers on success.
    fn command(&self, index: u8, arg: u32, rsp: Response) -> Result<[u32; 4], UsdhcError> {
        self.command_with(index, arg, rsp, 0)
    }

    fn command_with(
        &self,
        index: u8,
        arg: u32,
        rsp: Response,
        data: u32,
    ) -> Result<[u32; 4], UsdhcError> {
        let r = &self.regs;
        let inhibit = if data != 0 || rsp == Response::R1b {
            PRES_CIHB | PRES_CDIHB
        } else {
            PRES_CIHB
        };
        wait_for(Duration::from_millis(500), "the command line", || {
            ral::read_reg!(ral::usdhc, r, PRES_STATE) & inhibit == 0
        })?;
        ral::write_reg!(ral::usdhc, r, INT_STATUS, INT_ALL);
        ral::write_reg!(ral::usdhc, r, CMD_ARG, arg);
        ral::write_reg!(
            ral::usdhc,
            r,
            CMD_XFR_TYP,
            u32::from(index) << 24 | rsp.bits() | data
        );
        wait_for(Duration::from_millis(100), "a command response", || {
            ral::read_reg!(ral::usdhc, r, INT_STATUS) & (INT_CC | INT_CMD_ERRORS) != 0
        })?;
        let status = ral::read_reg!(ral::usdhc, r, INT_STATUS);
        if status & INT_CMD_ERRORS != 0 {
            ral::modify_reg!(ral::usdhc, r, SYS_CTRL, |s| s | SYS_RSTC);
            let _ = wait_for(Duration::from_millis(10), "command line reset", || {
                ral::read_reg!(ral::usdhc, r, SYS_CTRL) & SYS_RSTC == 0
            });
            return Err(UsdhcError::Command { index, status });
        }
        ral::write_reg!(ral::usdhc, r, INT_STATUS, INT_CC);
        Ok([
            ral::read_reg!(ral::usdhc, r, CMD_RSP0),
            ral::read_reg!(ral::usdhc, r, CMD_RSP1),
            ral::read_reg!(ral::usdhc, r, CMD_RSP2),
            ral::read_reg!(ral::usdhc, r, CMD_RSP3),
        ])
    }

    /// Start a data command for `count` blocks at `lba`.
    fn start_data(&self, card: Card, lba: u32, count: usize, read: bool) -> Result<(), UsdhcError> {
        if u64::from(lba) + count as u64 > card.blocks {
            return Err(UsdhcError::OutOfRange);
        }
        let r = &self.regs;
        let multi = count > 1;
        ral::write_reg!(ral::usdhc, r, BLK_ATT, BLKSIZE: 512, BLKCNT: count as u32);
        let mut mix = if read { MIX_DTDSEL_READ } else { 0 };
        if multi {
            mix |= MIX_MSBSEL | MIX_BCEN | MIX_AC12EN;
        }
        ral::write_reg!(ral::usdhc, r, MIX_CTRL, mix);
        let index = match (read, multi) {
            (true, false) => 17,
            (true, true) => 18,
            (false, false) => 24,
            (false, true) => 25,
        };
        let arg = if card.high_capacity { lba } else { lba * 512 };
        self.command_with(index, arg, Response::R1, DPSEL)
            .map(|_| ())
    }

    /// Wait for `flag` (buffer ready) or a data error.
    fn wait_buffer(&self, flag: u32, what: &'static str) -> Result<(), UsdhcError> {
        let r = &self.regs;
        wait_for(Duration::from_millis(1_000), what, || {
            ral::read_reg!(ral::usdhc, r, INT_STATUS) & (flag | INT_DATA_ERRORS) != 0
        })?;
        self.check_data()
    }

    fn check_data(&self) -> Result<(), UsdhcError> {
        let r = &self.regs;
        let status = ral::read_reg!(ral::usdhc, r, INT_STATUS);
        if status & INT_DATA_ERRORS != 0 {
            ral::modify_reg!(ral::usdhc, r, SYS_CTRL, |s| s | SYS_RSTD | SYS_RSTC);
            let _ = wait_for(Duration::from_millis(10), "data line reset", || {
                ral::read_reg!(ral::usdhc, r, SYS_CTRL) & (SYS_RSTD | SYS_RSTC) == 0
            });
            return Err(UsdhcError::Data { status });
        }
        Ok(())
    }

    /// Wait for the end of the transfer (for writes: the card has taken the data).
    fn finish_data(&self) -> Result<(), UsdhcError> {
        let r = &self.regs;
        wait_for(
            Duration::from_millis(2_000),
            "the end of a transfer",
            || ral::read_reg!(ral::usdhc, r, INT_STATUS) & (INT_TC | INT_DATA_ERRORS) != 0,
        )?;
        self.check_data()?;
        ral::write_reg!(ral::usdhc, r, INT_STATUS, INT_TC);
        Ok(())
    }

    fn read(&self, card: Card, blocks: &mut [Block], lba: u32) -> Result<(), UsdhcError> {
        self.start_data(card, lba, blocks.len(), true)?;
        for block in blocks.iter_mut() {
            for chunk in block.contents.chunks_exact_mut(WML as usize * 4) {
                self.wait_buffer(INT_BRR, "data from the card")?;
                let r = &self.regs;
                for word in chunk.chunks_exact_mut(4) {
                    let w = ral::read_reg!(ral::usdhc, r, DATA_BUFF_ACC_PORT);
                    word.copy_from_slice(&w.to_le_bytes());
                }
                ral::write_reg!(ral::usdhc, r, INT_STATUS, INT_BRR);
            }
        }
        self.finish_data()
    }

    fn write(&self, card: Card, blocks: &[Block], lba: u32) -> Result<(), UsdhcError> {
        self.start_data(card, lba, blocks.len(), false)?;
        for block in blocks {
            for chunk in block.contents.chunks_exact(WML as usize * 4) {
                self.wait_buffer(INT_BWR, "room for data to the card")?;
                let r = &self.regs;
                for word in chunk.chunks_exact(4) {
                    let w = u32::from_le_bytes([word[0], word[1], word[2], word[3]]);
                    ral::write_reg!(ral::usdhc, r, DATA_BUFF_ACC_PORT, w);
                }
                ral::write_reg!(ral::usdhc, r, INT_STATUS, INT_BWR);
            }
        }
        self.finish_data()?;
        // The card programs the data with DAT0 held low; wait until it is ready again.
        let rca_arg = card.rca_arg;
        let deadline = coroutine::now() + Duration::from_millis(1_000);
        loop {
            let status = self.command(13, rca_arg, Response::R1)?[0];
            // READY_FOR_DATA and back in the transfer state (4).
            if status & (1 << 8) != 0 && (status >> 9) & 0xF == 4 {
                return Ok(());
            }
            if coroutine::now() > deadline {
                return Err(UsdhcError::Timeout("the card to program its data"));
            }
            coroutine::sleep(Duration::from_micros(100));
        }
    }
}

impl embedded_sdmmc::BlockDevice for Usdhc {
    type Error = UsdhcError;

    fn read(&self, blocks: &mut [Block], start: BlockIdx) -> Result<(), Self::Error> {
        if blocks.is_empty() {
            return Ok(());
        }
        self.with_card(|inner, card| inner.read(card, blocks, start.0))
    }

    fn write(&self, blocks: &[Block], start: BlockIdx) -> Result<(), Self::Error> {
        if blocks.is_empty() {
            return Ok(());
        }
        self.with_card(|inner, card| inner.write(card, blocks, start.0))
    }

    fn num_blocks(&self) -> Result<BlockCount, Self::Error> {
        self.with_card(|_, card| {
            u32::try_from(card.blocks)
                .map(BlockCount)
                .map_err(|_| UsdhcError::Unsupported("more than 2 TiB"))
        })
    }
}

/// The slot by reference: the card's block device (`SdmmcBackend<&Usdhc>`) and the card
/// detection of the slot's watcher share one controller.
impl embedded_sdmmc::BlockDevice for &Usdhc {
    type Error = UsdhcError;

    fn read(&self, blocks: &mut [Block], start: BlockIdx) -> Result<(), Self::Error> {
        <Usdhc as embedded_sdmmc::BlockDevice>::read(self, blocks, start)
    }

    fn write(&self, blocks: &[Block], start: BlockIdx) -> Result<(), Self::Error> {
        <Usdhc as embedded_sdmmc::BlockDevice>::write(self, blocks, start)
    }

    fn num_blocks(&self) -> Result<BlockCount, Self::Error> {
        <Usdhc as embedded_sdmmc::BlockDevice>::num_blocks(self)
    }
}
