//! The Teensy 4.1's program flash: 8 MiB of QSPI NOR flash on FlexSPI (FLEXSPI1),
//! memory-mapped at 0x6000_0000, 4 KiB erase sectors, 256-byte program pages.
//!
//! | flash offset | address | size | holds |
//! |---|---|---:|---|
//! | 0x00_0000 | 0x6000_0000 | up to the image's end | the boot image: FlexSPI configuration block, image vector table, the code and data copied to ITCM/DTCM at boot |
//! | … | … | | free in the plain build; the A/B build keeps its boot stage, slots and update state record here (docs/firmware-update.md, "On the board") |
//! | 0x7B_E000 | 0x607B_E000 | 4 KiB | [`CONFIG_SLOT_OFFSETS`]`[0]`: configuration record, slot 0 |
//! | 0x7B_F000 | 0x607B_F000 | 4 KiB | [`CONFIG_SLOT_OFFSETS`]`[1]`: configuration record, slot 1 |
//! | 0x7C_0000 | 0x607C_0000 | 256 KiB | PJRC: EEPROM emulation (252 KiB) and the restore program; never written ([`RESERVED_OFFSET`]) |
//!
//! [`Flash`] implements embedded-storage's [`ReadNorFlash`] and [`NorFlash`] with offsets
//! from the start of the flash (offset 0 is 0x6000_0000; capacity 8 MiB):
//!
//! - **Reads** copy from the memory-mapped (AHB) window, anywhere in the 8 MiB.
//! - **Erases** (4 KiB sectors, command 0x20) and **writes** (page program, command 0x02, at
//!   most one 256-byte page per command) go through FlexSPI *IP commands*, the way PJRC's
//!   Teensy 4 core does it (`eeprom.c`): write enable (0x06), the command, then the status
//!   register (0x05) polled until the flash is no longer busy. The commands use LUT sequence
//!   15, the empty "dummy" sequence of the boot configuration block (teensy4-fcb fills 0, 1,
//!   3, 5, 9 and 11; AHB reads use 0), with the same single-pad commands as that block; the
//!   LUT is unlocked for that. Afterwards FlexSPI's AHB buffers are purged (software reset of the
//!   controller, which keeps its configuration) and the D-cache lines of the range are
//!   cleaned and invalidated, so reads see the new contents.
//! - Erases and writes are refused with [`FlashError::Protected`] outside the writable region
//!   given to [`Flash::take`] (never the PJRC area at the end, never the first sector with the
//!   boot configuration), and with [`FlashError::NotAligned`] / [`FlashError::OutOfBounds`] as
//!   embedded-storage's checks define them.
//!
//! While the flash erases or programs it cannot be read, so no instruction or data may be
//! fetched from it: each operation runs with interrupts masked (PRIMASK) from the write
//! enable until the status register says ready and the buffers are purged, and all of it is
//! code in `.text`, which imxrt-rt places in ITCM (app/build.rs: `.text(Memory::Itcm)`), with
//! data in DTCM; only the reset handler and `__pre_init` stay in flash (`.xip`). [`Flash`]
//! checks this at run time too ([`FlashError::CodeInFlash`]) and copies the bytes to program
//! to the stack first, so a caller's buffer may itself lie in the flash window. A sector
//! erase keeps interrupts masked for its whole duration (typically 45 ms, up to 400 ms on the
//! W25Q64JV), a page program for up to 3 ms.
//!
//! The boot ROM's FlexSPI NOR API (`flexspi_nor_flash_*` through the ROM API tree) was not
//! used: it reinitialises the controller from a configuration block, which must be copied to
//! RAM and would reprogram the FlexSPI clock, and nothing of it is needed for page program
//! and sector erase.
//!
//! `unsafe` is in three places: taking the FLEXSPI1 register block once ([`Flash::take`]),
//! copying from the AHB window ([`ReadNorFlash::read`]), and the D-cache maintenance after a
//! change (`discard_cache_lines`).
//!
//! Not verified on hardware (see docs/teensy41.md): the commands, the timing, the FlexSPI
//! software reset as a way to drop stale AHB data, and that nothing (the boot ROM, PJRC's
//! bootloader) relies on LUT sequence 15 after boot.

use core::fmt;
use core::ops::Range;
use core::sync::atomic::{AtomicBool, Ordering, compiler_fence};

use cortex_m::peripheral::{CBP, SCB};
use embedded_storage::nor_flash::{
    ErrorType, NorFlash, NorFlashError, NorFlashErrorKind, ReadNorFlash,
};
use imxrt_ral as ral;

/// Where the flash is mapped (FlexSPI's AHB window).
pub const FLASH_BASE: usize = 0x6000_0000;
/// Bytes of flash.
pub const FLASH_SIZE: u32 = 8 * 1024 * 1024;
/// Bytes of an erase sector.
pub const SECTOR_SIZE: u32 = 4096;
/// Bytes of a program page (one program command never crosses a page boundary).
pub const PAGE_SIZE: u32 = 256;
/// Where PJRC's reserved area starts (EEPROM emulation, the restore program): the last
/// 256 KiB, never erased or written by [`Flash`].
pub const RESERVED_OFFSET: u32 = FLASH_SIZE - 256 * 1024;
/// The two configuration record sectors, just below the reserved area (0x607B_E000 and
/// 0x607B_F000): `lunbox_config`'s slots 0 and 1.
pub const CONFIG_SLOT_OFFSETS: [u32; 2] = [
    RESERVED_OFFSET - 2 * SECTOR_SIZE,
    RESERVED_OFFSET - SECTOR_SIZE,
];
/// The writable region that holds both configuration sectors (for [`Flash::take`]).
pub const CONFIG_REGION: Range<u32> = CONFIG_SLOT_OFFSETS[0]..RESERVED_OFFSET;
const _: () = assert!(
    RESERVED_OFFSET == 0x7C_0000
        && CONFIG_SLOT_OFFSETS[0] == 0x7B_E000
        && CONFIG_SLOT_OFFSETS[1] == 0x7B_F000
);

/// The whole FlexSPI1 AHB window (256 MiB): code found here runs from flash.
const FLEXSPI_WINDOW: Range<usize> = 0x6000_0000..0x7000_0000;
/// The LUT sequence the IP commands use (LUT entries 60–63).
const SEQ: u32 = 15;
const LUT_KEY: u32 = 0x5AF0_5AF0;
/// Cortex-M7 D-cache line size.
const CACHE_LINE: usize = 32;

// LUT instructions (i.MX RT1060 reference manual, FlexSPI, "Look Up Table"): opcode in bits
// 15–10, pads in 9–8, operand in 7–0; two per 32-bit LUT word.
const OP_CMD_SDR: u32 = 0x01;
const OP_RADDR_SDR: u32 = 0x02;
const OP_WRITE_SDR: u32 = 0x08;
const OP_READ_SDR: u32 = 0x09;
const PADS_1: u32 = 0;

const fn lut(op0: u32, operand0: u32, op1: u32, operand1: u32) -> u32 {
    (op0 << 10 | PADS_1 << 8 | operand0) | (op1 << 10 | PADS_1 << 8 | operand1) << 16
}

// Serial NOR commands (JEDEC, the W25Q64JV's datasheet).
const CMD_WRITE_ENABLE: u32 = 0x06;
const CMD_READ_STATUS: u32 = 0x05;
const CMD_SECTOR_ERASE: u32 = 0x20;
const CMD_PAGE_PROGRAM: u32 = 0x02;
/// Status register 1: erase or program in progress.
const STATUS_BUSY: u32 = 1;

// FlexSPI register bits.
const INTR_IPCMDDONE: u32 = 1 << 0;
const INTR_IPCMDERR: u32 = 1 << 3;
const INTR_IPTXWE: u32 = 1 << 6;
const LUTCR_UNLOCK: u32 = 1 << 1;
const IPCMD_TRG: u32 = 1;
const FIFO_CLEAR: u32 = 1;
const MCR0_SWRESET: u32 = 1;

/// Status polls before a busy flash counts as failed. Each poll is an IP command of 16 clocks
/// plus its overhead (about a microsecond), so this is seconds, far above a sector erase's
/// 400 ms maximum.
const BUSY_POLLS: u32 = 5_000_000;
/// Register polls before an IP command counts as stuck.
const COMMAND_POLLS: u32 = 1_000_000;

/// What goes wrong with the flash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlashError {
    /// An offset or length is not a multiple of the operation's granularity.
    NotAligned,
    /// The range goes past the end of the flash.
    OutOfBounds,
    /// An erase or write outside the writable region: nothing was done.
    Protected {
        /// The first offset of the refused range.
        offset: u32,
    },
    /// FlexSPI reported an IP command error (STS1 holds its id and code).
    Controller {
        /// FlexSPI's STS1 register.
        sts1: u32,
    },
    /// The flash stayed busy (or the controller did not finish a command).
    Timeout,
    /// The code that drives the flash is itself in the flash window, where it cannot run
    /// while the flash is busy: nothing was done.
    CodeInFlash,
    /// [`Flash::take`] was called before.
    AlreadyTaken,
    /// The writable region given to [`Flash::take`] is not whole sectors between the first
    /// sector and the reserved area.
    BadRegion,
}

impl fmt::Display for FlashError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FlashError::NotAligned => f.write_str("flash: offset or length not aligned"),
            FlashError::OutOfBounds => f.write_str("flash: past the end of the flash"),
            FlashError::Protected { offset } => {
                write!(
                    f,
                    "flash: offset {offset:#x} is outside the writable region"
                )
            }
            FlashError::Controller { sts1 } => {
                write!(f, "flash: FlexSPI command error (STS1 {sts1:#010x})")
            }
            FlashError::Timeout => f.write_str("flash: timed out"),
            FlashError::CodeInFlash => f.write_str("flash: the flash driver is not in RAM"),
            FlashError::AlreadyTaken => f.write_str("flash: already taken"),
            FlashError::BadRegion => f.write_str("flash: bad writable region"),
        }
    }
}

impl core::error::Error for FlashError {}

impl NorFlashError for FlashError {
    fn kind(&self) -> NorFlashErrorKind {
        match self {
            FlashError::NotAligned => NorFlashErrorKind::NotAligned,
            FlashError::OutOfBounds | FlashError::Protected { .. } => {
                NorFlashErrorKind::OutOfBounds
            }
            _ => NorFlashErrorKind::Other,
        }
    }
}

impl From<NorFlashErrorKind> for FlashError {
    fn from(kind: NorFlashErrorKind) -> Self {
        match kind {
            NorFlashErrorKind::NotAligned => FlashError::NotAligned,
            _ => FlashError::OutOfBounds,
        }
    }
}

/// The program flash (see the module docs). One per boot ([`Flash::take`]).
pub struct Flash {
    regs: ral::flexspi::FLEXSPI1,
    writable: Range<u32>,
}

impl fmt::Debug for Flash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Flash")
            .field("writable", &self.writable)
            .finish_non_exhaustive()
    }
}

impl Flash {
    /// The flash, erasable and writable in `writable` (flash offsets: whole sectors, not the
    /// first sector, below [`RESERVED_OFFSET`]); [`CONFIG_REGION`] for the configuration.
    ///
    /// # Errors
    ///
    /// [`FlashError::BadRegion`] for such a region (the flash stays available);
    /// [`FlashError::AlreadyTaken`] on every call after the first successful one.
    pub fn take(writable: Range<u32>) -> Result<Flash, FlashError> {
        static TAKEN: AtomicBool = AtomicBool::new(false);
        if writable.start < SECTOR_SIZE
            || writable.end <= writable.start
            || writable.end > RESERVED_OFFSET
            || !writable.start.is_multiple_of(SECTOR_SIZE)
            || !writable.end.is_multiple_of(SECTOR_SIZE)
        {
            return Err(FlashError::BadRegion);
        }
        if TAKEN.swap(true, Ordering::SeqCst) {
            return Err(FlashError::AlreadyTaken);
        }
        // SAFETY: FLEXSPI1 drives the boot flash. Nothing else in lunbox uses it (teensy4-bsp
        // hands out FLEXSPI2 only, for PSRAM), and TAKEN makes this the only `Flash`, so its
        // IP command registers and LUT sequence 15 have one user. The AHB reads the hardware
        // serves from the same controller do not touch those registers.
        let regs = unsafe { ral::flexspi::FLEXSPI1::instance() };
        Ok(Flash { regs, writable })
    }

    /// The writable region.
    pub fn writable(&self) -> Range<u32> {
        self.writable.clone()
    }

    /// Refuses ranges outside the writable region.
    fn check_writable(&self, offset: u32, len: u32) -> Result<(), FlashError> {
        let end = offset.checked_add(len).ok_or(FlashError::OutOfBounds)?;
        if offset < self.writable.start || end > self.writable.end {
            return Err(FlashError::Protected { offset });
        }
        Ok(())
    }

    /// Refuses to erase or program when this code would run from the flash.
    fn check_code_location() -> Result<(), FlashError> {
        let here = Flash::erase_sector as fn(&mut Flash, u32) -> Result<(), FlashError> as usize;
        let there =
            Flash::program_page as fn(&mut Flash, u32, &[u8]) -> Result<(), FlashError> as usize;
        if FLEXSPI_WINDOW.contains(&here) || FLEXSPI_WINDOW.contains(&there) {
            return Err(FlashError::CodeInFlash);
        }
        Ok(())
    }

    /// Erases the sector at `offset` (aligned, writable).
    fn erase_sector(&mut self, offset: u32) -> Result<(), FlashError> {
        cortex_m::interrupt::free(|_| {
            let result = self.write_enable().and_then(|()| {
                self.set_sequence(lut(OP_CMD_SDR, CMD_SECTOR_ERASE, OP_RADDR_SDR, 24), 0);
                self.command(offset, 0, &[])?;
                self.wait_ready()
            });
            self.after_change(offset, SECTOR_SIZE);
            result
        })
    }

    /// Programs `data` (at most a page, not crossing a page boundary, written to an erased
    /// range) at `offset`.
    fn program_page(&mut self, offset: u32, data: &[u8]) -> Result<(), FlashError> {
        // A copy on the stack (DTCM): the caller's bytes may be in the flash window, which
        // cannot be read while the flash programs.
        let mut page = [0xff_u8; PAGE_SIZE as usize];
        page[..data.len()].copy_from_slice(data);
        let len = data.len();
        cortex_m::interrupt::free(|_| {
            let result = self.write_enable().and_then(|()| {
                self.set_sequence(
                    lut(OP_CMD_SDR, CMD_PAGE_PROGRAM, OP_RADDR_SDR, 24),
                    lut(OP_WRITE_SDR, 1, 0, 0),
                );
                self.command(offset, len, &page[..len])?;
                self.wait_ready()
            });
            self.after_change(offset, len as u32);
            result
        })
    }

    /// Puts `w0`, `w1` into LUT sequence [`SEQ`] (the other two words: STOP).
    fn set_sequence(&self, w0: u32, w1: u32) {
        let r = &self.regs;
        ral::write_reg!(ral::flexspi, r, LUTKEY, LUT_KEY);
        ral::write_reg!(ral::flexspi, r, LUTCR, LUTCR_UNLOCK);
        let base = SEQ as usize * 4;
        r.LUT[base].write(w0);
        r.LUT[base + 1].write(w1);
        r.LUT[base + 2].write(0);
        r.LUT[base + 3].write(0);
    }

    /// Runs LUT sequence [`SEQ`] at flash address `addr` with `size` data bytes, feeding
    /// `tx` to the TX FIFO (a write) or leaving the bytes in the RX FIFO (a read).
    fn command(&self, addr: u32, size: usize, tx: &[u8]) -> Result<(), FlashError> {
        let r = &self.regs;
        ral::write_reg!(
            ral::flexspi,
            r,
            INTR,
            INTR_IPCMDDONE | INTR_IPCMDERR | INTR_IPTXWE
        );
        ral::write_reg!(ral::flexspi, r, IPRXFCR, FIFO_CLEAR);
        ral::write_reg!(ral::flexspi, r, IPTXFCR, FIFO_CLEAR);
        ral::write_reg!(ral::flexspi, r, IPCR0, addr);
        ral::write_reg!(ral::flexspi, r, IPCR1, IDATSZ: size as u32, ISEQID: SEQ, ISEQNUM: 0);
        ral::write_reg!(ral::flexspi, r, IPCMD, IPCMD_TRG);
        // The TX FIFO's watermark is 8 bytes (TXWMRK 0): each IPTXWE takes two words, and
        // clearing the flag pushes them.
        let mut rest = tx;
        let mut polls = 0;
        loop {
            let intr = ral::read_reg!(ral::flexspi, r, INTR);
            if intr & INTR_IPCMDERR != 0 {
                let sts1 = ral::read_reg!(ral::flexspi, r, STS1);
                ral::write_reg!(ral::flexspi, r, INTR, INTR_IPCMDERR | INTR_IPCMDDONE);
                return Err(FlashError::Controller { sts1 });
            }
            if intr & INTR_IPCMDDONE != 0 {
                ral::write_reg!(ral::flexspi, r, INTR, INTR_IPCMDDONE | INTR_IPTXWE);
                return Ok(());
            }
            if intr & INTR_IPTXWE != 0 && !rest.is_empty() {
                let (chunk, after) = rest.split_at(rest.len().min(8));
                let mut bytes = [0xff_u8; 8];
                bytes[..chunk.len()].copy_from_slice(chunk);
                r.TFDR[0].write(u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]));
                r.TFDR[1].write(u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]));
                ral::write_reg!(ral::flexspi, r, INTR, INTR_IPTXWE);
                rest = after;
            }
            polls += 1;
            if polls > COMMAND_POLLS {
                return Err(FlashError::Timeout);
            }
        }
    }

    fn write_enable(&self) -> Result<(), FlashError> {
        self.set_sequence(lut(OP_CMD_SDR, CMD_WRITE_ENABLE, 0, 0), 0);
        self.command(0, 0, &[])
    }

    /// Polls the status register until the flash is not busy.
    fn wait_ready(&self) -> Result<(), FlashError> {
        self.set_sequence(lut(OP_CMD_SDR, CMD_READ_STATUS, OP_READ_SDR, 1), 0);
        for _ in 0..BUSY_POLLS {
            self.command(0, 1, &[])?;
            let status = self.regs.RFDR[0].read() & 0xff;
            if status & STATUS_BUSY == 0 {
                return Ok(());
            }
        }
        Err(FlashError::Timeout)
    }

    /// After an erase or program (also a failed one), still with interrupts masked: drops
    /// what FlexSPI's AHB buffers and the D-cache hold of `offset..offset + len`.
    fn after_change(&self, offset: u32, len: u32) {
        let r = &self.regs;
        ral::modify_reg!(ral::flexspi, r, MCR0, |m| m | MCR0_SWRESET);
        let mut polls = 0;
        while ral::read_reg!(ral::flexspi, r, MCR0) & MCR0_SWRESET != 0 && polls < COMMAND_POLLS {
            polls += 1;
        }
        if SCB::dcache_enabled() {
            discard_cache_lines(FLASH_BASE + offset as usize, len as usize);
        }
    }
}

/// Cleans and invalidates the D-cache lines of `addr..addr + len`, in the flash window.
fn discard_cache_lines(addr: usize, len: usize) {
    // SAFETY: CBP::PTR is the Cortex-M7's cache maintenance block, always mapped; only a
    // shared reference is made, and its registers are write-only triggers.
    let cbp = unsafe { &*CBP::PTR };
    let first = addr & !(CACHE_LINE - 1);
    for line in (first..addr + len).step_by(CACHE_LINE) {
        // SAFETY: clean and invalidate by address of a line in the flash window. The flash
        // is never written through the bus, so no line of it is dirty and cleaning writes
        // nothing back; the next read fetches the flash's new contents.
        unsafe { cbp.dccimvac.write(line as u32) };
    }
    cortex_m::asm::dsb();
    cortex_m::asm::isb();
}

impl ErrorType for Flash {
    type Error = FlashError;
}

impl ReadNorFlash for Flash {
    const READ_SIZE: usize = 1;

    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), FlashError> {
        embedded_storage::nor_flash::check_read(self, offset, bytes.len())?;
        compiler_fence(Ordering::SeqCst);
        let src = (FLASH_BASE + offset as usize) as *const u8;
        // SAFETY: `offset..offset + bytes.len()` lies in the 8 MiB the FlexSPI AHB window maps
        // (checked above), which is readable memory while no erase or program runs, and
        // those run only inside `&mut self` methods, not concurrently with this one. The
        // window is not Rust-owned memory, so `bytes` cannot overlap it mutably.
        unsafe { core::ptr::copy_nonoverlapping(src, bytes.as_mut_ptr(), bytes.len()) };
        Ok(())
    }

    fn capacity(&self) -> usize {
        FLASH_SIZE as usize
    }
}

impl NorFlash for Flash {
    /// The TX FIFO takes whole words; the flash itself programs any bytes.
    const WRITE_SIZE: usize = 4;
    const ERASE_SIZE: usize = SECTOR_SIZE as usize;

    fn erase(&mut self, from: u32, to: u32) -> Result<(), FlashError> {
        embedded_storage::nor_flash::check_erase(self, from, to)?;
        self.check_writable(from, to - from)?;
        Flash::check_code_location()?;
        for sector in (from..to).step_by(SECTOR_SIZE as usize) {
            self.erase_sector(sector)?;
        }
        Ok(())
    }

    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), FlashError> {
        embedded_storage::nor_flash::check_write(self, offset, bytes.len())?;
        let len = u32::try_from(bytes.len()).map_err(|_| FlashError::OutOfBounds)?;
        self.check_writable(offset, len)?;
        Flash::check_code_location()?;
        let mut at = offset;
        let mut rest = bytes;
        while !rest.is_empty() {
            let room = (PAGE_SIZE - at % PAGE_SIZE) as usize;
            let (chunk, after) = rest.split_at(rest.len().min(room));
            self.program_page(at, chunk)?;
            at += chunk.len() as u32;
            rest = after;
        }
        Ok(())
    }
}
