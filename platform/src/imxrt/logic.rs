//! The board's arithmetic and decisions, free of registers: the clock's tick extension, SD
//! card facts (CSD capacity, R2 response layout, SPI clock choice per command), the uSDHC
//! clock dividers, the activity LED's blink pattern, when to configure the USB controller's
//! endpoints, and the UART's interrupt-to-thread byte ring.
//!
//! This file uses nothing but `core`, so the host tests include it as it is
//! (`platform/tests/imxrt_logic.rs`) while the board module compiles only for the MCU.

use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicUsize, Ordering};

/// Microsecond ticks of the GPT clock to nanoseconds.
pub const NANOS_PER_TICK: u64 = 1_000;

/// The 64-bit tick count from the number of 32-bit counter wraps seen and the counter.
///
/// `rollover_pending` says the counter wrapped but the wrap interrupt has not counted it yet
/// (read with interrupts masked); `count_after` is the counter read again after seeing that
/// flag, which is certainly past the wrap.
pub fn extend_ticks(epochs: u32, count: u32, rollover_pending: bool, count_after: u32) -> u64 {
    if rollover_pending {
        (u64::from(epochs) + 1) << 32 | u64::from(count_after)
    } else {
        u64::from(epochs) << 32 | u64::from(count)
    }
}

/// Ticks from `now` to `deadline` (both in ticks), rounded so a wake-up is never early; `None`
/// when the deadline has passed.
pub fn ticks_until(now: u64, deadline_nanos: u64) -> Option<u64> {
    let deadline = deadline_nanos.div_ceil(NANOS_PER_TICK);
    deadline.checked_sub(now).filter(|&t| t > 0)
}

/// The compare value for a wake-up `ahead` ticks after counter value `count`, or `None` when
/// it does not fit the 32-bit counter's next wrap (the wrap interrupt wakes the core then, and
/// the idle hook sets the compare again). `margin` ticks are kept so the compare cannot be
/// passed while it is being written.
pub fn compare_for(count: u32, ahead: u64, margin: u32) -> Option<u32> {
    if ahead < u64::from(margin) || ahead >= u64::from(u32::MAX - margin) {
        return None;
    }
    Some(count.wrapping_add(ahead as u32))
}

/// Whether a 32-bit counter at `count` has reached `target`, both after `start` (wrapping).
pub fn reached(start: u32, target: u32, count: u32) -> bool {
    count.wrapping_sub(start) >= target.wrapping_sub(start)
}

/// The SPI clock an SD card command needs: embedded-sdmmc's `SdCard` sends every command as
/// one 6-byte write starting with `0x40 | index`. The card must be brought up at 100–400 kHz
/// (CMD0, CMD1, CMD8, CMD55/ACMD41, CMD58, CMD59); any other command comes after that, when
/// the card takes up to 25 MHz. `None`: not a command, keep the clock.
pub fn sd_spi_speed(first_write: &[u8]) -> Option<SpiSpeed> {
    let &[byte, _, _, _, _, crc] = first_write else {
        return None;
    };
    if byte & 0xC0 != 0x40 || crc & 1 != 1 {
        return None;
    }
    match byte & 0x3F {
        0 | 1 | 8 | 41 | 55 | 58 | 59 => Some(SpiSpeed::Identification),
        _ => Some(SpiSpeed::Transfer),
    }
}

/// The SPI clock speeds an SD card is driven at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpiSpeed {
    /// Card identification: at most 400 kHz.
    Identification,
    /// Data transfer: at most 25 MHz (default speed).
    Transfer,
}

/// The 128-bit register of an R2 response (CID or CSD) from the uSDHC's four response
/// registers, which hold bits 127..8 of it (the CRC7 and end bit are stripped) shifted down by
/// 8 bits.
pub fn r2_register(rsp: [u32; 4]) -> u128 {
    let raw = u128::from(rsp[0])
        | u128::from(rsp[1]) << 32
        | u128::from(rsp[2]) << 64
        | u128::from(rsp[3]) << 96;
    raw << 8
}

/// Bits `hi..=lo` of a 128-bit register (SD spec numbering: bit 127 is the first sent).
pub fn bits(reg: u128, hi: u32, lo: u32) -> u32 {
    ((reg >> lo) & ((1u128 << (hi - lo + 1)) - 1)) as u32
}

/// The card's capacity in 512-byte blocks from its CSD (versions 1.0 and 2.0/3.0), or `None`
/// for a structure version this does not know.
pub fn csd_blocks(csd: u128) -> Option<u64> {
    match bits(csd, 127, 126) {
        0 => {
            // Standard capacity: (C_SIZE + 1) * 2^(C_SIZE_MULT + 2) blocks of 2^READ_BL_LEN.
            let read_bl_len = bits(csd, 83, 80);
            let c_size = u64::from(bits(csd, 73, 62));
            let c_size_mult = bits(csd, 49, 47);
            if !(9..=11).contains(&read_bl_len) {
                return None;
            }
            let bytes = (c_size + 1) << (c_size_mult + 2 + read_bl_len);
            Some(bytes / 512)
        }
        1 => {
            // SDHC/SDXC: (C_SIZE + 1) * 512 KiB; C_SIZE is 22 bits (28 for SDUC's 2.0 format
            // version 3, which is structure 2 and not handled).
            let c_size = u64::from(bits(csd, 69, 48));
            Some((c_size + 1) * 1024)
        }
        _ => None,
    }
}

/// The uSDHC's SD clock dividers for at most `max_hz` from a `base_hz` root clock: the
/// register values `(SDCLKFS, DVS)` and the resulting clock. The prescaler divides by 1, 2,
/// 4, …, 256 (SDCLKFS 0, 0x01, 0x02, …, 0x80, single data rate), the divisor by 1 to 16 (DVS
/// 0 to 15). `None` when even the largest division is too fast.
pub fn usdhc_dividers(base_hz: u32, max_hz: u32) -> Option<(u32, u32, u32)> {
    if max_hz == 0 {
        return None;
    }
    for shift in 0..=8u32 {
        let prescaler = 1u32 << shift;
        for divisor in 1..=16u32 {
            let hz = base_hz / (prescaler * divisor);
            if hz <= max_hz {
                let sdclkfs = if shift == 0 { 0 } else { prescaler >> 1 };
                return Some((sdclkfs, divisor - 1, hz));
            }
        }
    }
    None
}

/// The activity LED: on while medium accesses are recent, blinking so steady traffic shows as
/// a flicker. Returns whether the LED is lit at `now_ms`, given the last access at
/// `last_access_ms`.
pub fn led_lit(now_ms: u64, last_access_ms: Option<u64>) -> bool {
    /// How long after an access the LED keeps blinking.
    const HOLD_MS: u64 = 100;
    /// Half a blink period.
    const HALF_PERIOD_MS: u64 = 40;
    match last_access_ms {
        Some(last) if now_ms.saturating_sub(last) < HOLD_MS => {
            (now_ms / HALF_PERIOD_MS).is_multiple_of(2)
        }
        _ => false,
    }
}

/// When to call imxrt-usbd's `BusAdapter::configure`: once each time the device enters the
/// Configured state (after SET_CONFIGURATION, and again after a bus reset and a new
/// SET_CONFIGURATION), never while it stays there.
#[derive(Debug, Default)]
pub struct ConfigureOnEntry {
    configured: bool,
}

impl ConfigureOnEntry {
    /// Note whether the device is Configured after a poll; true when the endpoints must be
    /// configured now.
    pub fn update(&mut self, configured: bool) -> bool {
        let entered = configured && !self.configured;
        self.configured = configured;
        entered
    }

    /// Whether the device was Configured at the last [`update`](Self::update).
    pub fn is_configured(&self) -> bool {
        self.configured
    }
}

/// A single-producer, single-consumer byte ring holding up to `N - 1` bytes: one side is an
/// interrupt handler, the other thread mode, coordinated by atomic indices. The UART's
/// receive and transmit queues. Crate-private: it is sound only while one context pushes and
/// one pops, which its users in this crate (`uart.rs`) keep to.
pub(crate) struct SpscRing<const N: usize> {
    buf: UnsafeCell<[u8; N]>,
    /// Next slot to write (producer only).
    head: AtomicUsize,
    /// Next slot to read (consumer only).
    tail: AtomicUsize,
}

// SAFETY: the producer writes only the slot at `head` before publishing it with a release
// store, the consumer reads only slots before `head` (acquire) and releases them by moving
// `tail`; each index has one writer. The crate's callers keep to one producer and one
// consumer (the type is crate-private for that reason).
unsafe impl<const N: usize> Sync for SpscRing<N> {}

impl<const N: usize> SpscRing<N> {
    /// An empty ring.
    pub(crate) const fn new() -> Self {
        SpscRing {
            buf: UnsafeCell::new([0; N]),
            head: AtomicUsize::new(0),
            tail: AtomicUsize::new(0),
        }
    }

    /// Producer: append `b`; false when full.
    pub(crate) fn push(&self, b: u8) -> bool {
        let head = self.head.load(Ordering::Relaxed);
        let next = (head + 1) % N;
        if next == self.tail.load(Ordering::Acquire) {
            return false;
        }
        // SAFETY: slot `head` is outside the consumer's range until `head` moves past it.
        unsafe { (*self.buf.get())[head] = b };
        self.head.store(next, Ordering::Release);
        true
    }

    /// Consumer: take the oldest byte.
    pub(crate) fn pop(&self) -> Option<u8> {
        let tail = self.tail.load(Ordering::Relaxed);
        if tail == self.head.load(Ordering::Acquire) {
            return None;
        }
        // SAFETY: slot `tail` was published by the producer and is not rewritten until
        // `tail` moves past it.
        let b = unsafe { (*self.buf.get())[tail] };
        self.tail.store((tail + 1) % N, Ordering::Release);
        Some(b)
    }

    /// Whether no byte is waiting.
    pub(crate) fn is_empty(&self) -> bool {
        self.tail.load(Ordering::Acquire) == self.head.load(Ordering::Acquire)
    }
}

impl<const N: usize> Default for SpscRing<N> {
    fn default() -> Self {
        Self::new()
    }
}
