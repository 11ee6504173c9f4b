//! The serial console on LPUART6: Teensy pins 1 (TX) and 0 (RX), 115200 8N1.
//!
//! The LPUART's FIFOs are 4 bytes deep, far less than a coroutine may run without yielding,
//! so its interrupt handler moves bytes between the FIFOs and two rings in RAM: received bytes
//! into a 256-byte ring (and the console's wake-up, [`Event::Uart`]), queued output from a
//! 1 KiB ring into the transmit FIFO. Each ring has one producer and one consumer (the handler
//! and thread mode), coordinated by atomic indices.

use core::time::Duration;

use imxrt_hal as hal;
use imxrt_ral as ral;

use super::logic::SpscRing;
use super::machine::{self, Event};
use crate::coroutine;

/// The console's baud rate.
pub const BAUD: u32 = 115_200;

static RX: SpscRing<256> = SpscRing::new();
static TX: SpscRing<1024> = SpscRing::new();

const CTRL_TIE: u32 = 1 << 23;
const CTRL_RIE: u32 = 1 << 21;
const STAT_TDRE: u32 = 1 << 23;
const STAT_OR: u32 = 1 << 19;
const STAT_NF: u32 = 1 << 18;
const STAT_FE: u32 = 1 << 17;
const STAT_PF: u32 = 1 << 16;
const DATA_RXEMPT: u32 = 1 << 12;
/// Transmit FIFO depth of the i.MX RT1062's LPUARTs.
const TX_FIFO: u32 = 4;

fn lpuart6() -> ral::lpuart::LPUART6 {
    // SAFETY: LPUART6 belongs to this module once `Uart::new` took it. Thread mode changes
    // CTRL only with interrupts masked; the handler owns DATA and the status flags.
    unsafe { ral::lpuart::LPUART6::instance() }
}

/// Whether LPUART6 can send: its clock gate is on and its transmitter enabled. A program that
/// never set the UART up (the boot stage) gets no output from the fault handlers, instead of a
/// second fault on a gated peripheral or a wait for a transmitter that never empties.
fn transmitter_on() -> bool {
    // SAFETY: only reads CCM's clock gate register; nothing on the fault path writes CCM.
    let ccm = unsafe { ral::ccm::CCM::instance() };
    if hal::ccm::clock_gate::lpuart::<6>().get(&ccm) == hal::ccm::clock_gate::Setting::Off {
        return false;
    }
    ral::read_reg!(ral::lpuart, lpuart6(), CTRL, TE) != 0
}

/// LPUART6: drain the receiver into [`RX`], feed the transmitter from [`TX`].
// SAFETY: the vector table names this handler by its symbol; no other item in the image
// exports `LPUART6`.
#[unsafe(no_mangle)]
extern "C" fn LPUART6() {
    let uart = lpuart6();
    let mut received = false;
    loop {
        let data = ral::read_reg!(ral::lpuart, uart, DATA);
        if data & DATA_RXEMPT != 0 {
            break;
        }
        // A full ring drops the byte, as a UART overrun would.
        let _ = RX.push(data as u8);
        received = true;
    }
    let stat = ral::read_reg!(ral::lpuart, uart, STAT);
    let errors = stat & (STAT_OR | STAT_NF | STAT_FE | STAT_PF);
    if errors != 0 {
        // Write-1-to-clear; an overrun stops the receiver until cleared.
        ral::write_reg!(ral::lpuart, uart, STAT, errors);
    }
    if ral::read_reg!(ral::lpuart, uart, CTRL) & CTRL_TIE != 0 {
        while ral::read_reg!(ral::lpuart, uart, WATER, TXCOUNT) < TX_FIFO {
            match TX.pop() {
                Some(b) => ral::write_reg!(ral::lpuart, uart, DATA, u32::from(b)),
                None => {
                    ral::modify_reg!(ral::lpuart, uart, CTRL, |c| c & !CTRL_TIE);
                    break;
                }
            }
        }
    }
    if received {
        machine::note_from_interrupt(Event::Uart);
    }
}

/// Write one byte, waiting for room in the transmit FIFO (panic and fault output, which must
/// not depend on interrupts). Bytes still queued in the ring go first.
pub(crate) fn write_blocking(b: u8) {
    if !transmitter_on() {
        return;
    }
    let uart = lpuart6();
    let put = |b: u8| {
        while ral::read_reg!(ral::lpuart, uart, STAT) & STAT_TDRE == 0 {}
        ral::write_reg!(ral::lpuart, uart, DATA, u32::from(b));
    };
    while let Some(q) = TX.pop() {
        put(q);
    }
    put(b);
}

/// The serial console. The received bytes' wake-up is [`Event::Uart`]: watch it with
/// `Teensy41Machine::watch`.
#[derive(Debug)]
pub struct Uart {
    _hw: (),
}

impl Uart {
    /// Set up LPUART6 on pins 1 (TX) and 0 (RX) at [`BAUD`] 8N1 with its interrupt.
    pub(crate) fn new(
        instance: ral::lpuart::LPUART6,
        tx: teensy4_bsp::pins::common::P1,
        rx: teensy4_bsp::pins::common::P0,
    ) -> Self {
        let _: hal::lpuart::Lpuart = teensy4_bsp::board::lpuart(instance, tx, rx, BAUD);
        let uart = lpuart6();
        ral::modify_reg!(ral::lpuart, uart, CTRL, TE: 0, RE: 0);
        ral::modify_reg!(ral::lpuart, uart, WATER, TXWATER: 0, RXWATER: 0);
        ral::modify_reg!(ral::lpuart, uart, FIFO, TXFE: 1, RXFE: 1);
        ral::modify_reg!(ral::lpuart, uart, FIFO, TXFLUSH: 1, RXFLUSH: 1);
        ral::modify_reg!(ral::lpuart, uart, CTRL, |c| c | CTRL_RIE);
        ral::modify_reg!(ral::lpuart, uart, CTRL, TE: 1, RE: 1);
        machine::enable_event(Event::Uart);
        Uart { _hw: () }
    }

    /// Take up to `buf.len()` received bytes; 0 when none are waiting.
    pub fn read(&self, buf: &mut [u8]) -> usize {
        let mut n = 0;
        while n < buf.len() {
            match RX.pop() {
                Some(b) => {
                    buf[n] = b;
                    n += 1;
                }
                None => break,
            }
        }
        n
    }

    /// Queue `bytes` for sending, sleeping while the ring is full (other coroutines run).
    pub fn write(&self, bytes: &[u8]) {
        for &b in bytes {
            while !TX.push(b) {
                self.kick();
                // 1 ms is 11 bytes at 115200 baud: the ring has room again by then.
                coroutine::sleep(Duration::from_millis(1));
            }
        }
        self.kick();
    }

    /// Whether queued output is still waiting for the transmitter.
    pub fn is_sending(&self) -> bool {
        !TX.is_empty()
    }

    /// Let the handler feed the transmitter.
    fn kick(&self) {
        if TX.is_empty() {
            return;
        }
        let uart = lpuart6();
        cortex_m::interrupt::free(|_| {
            ral::modify_reg!(ral::lpuart, uart, CTRL, |c| c | CTRL_TIE);
        });
    }
}
