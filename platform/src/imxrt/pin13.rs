//! Teensy pin 13: the on-board LED, and also LPSPI4's SCK. With an SD card on LPSPI4 (pins
//! 10–13) the LED shows the SPI clock and nothing else (measured on a Teensy 4.1 running other firmware: the project's notes), so the pin is
//! one or the other: [`probe`] looks for a card on LPSPI4 at boot and returns either the SD
//! card's SPI device ([`SdSpi`]) or the activity LED ([`ActivityLed`]).
//!
//! [`SdSpi`] is an `embedded_hal::spi::SpiDevice` for embedded-sdmmc's `SdCard`: chip select
//! on pin 10 as a GPIO, low for each transaction the driver asks for. embedded-sdmmc 0.10 makes
//! every byte of a command exchange a transaction of its own, so chip select goes high
//! between them; the SD spec asks for it to stay low through a command, its response and its
//! data. embedded-sdmmc's users run cards this way, but it is not verified here (no board).
//! Clocked at 400 kHz while the card identifies
//! and at 22 MHz after (24 MHz asked of imxrt-hal, which rounds down to 132 MHz / 6; see
//! [`logic::sd_spi_speed`]), with 80 clocks before every CMD0. Its delays sleep on the
//! coroutine clock.

use core::cell::Cell;
use core::time::Duration;

use embedded_hal::spi::{Operation, SpiBus, SpiDevice};
use imxrt_hal as hal;
use imxrt_ral as ral;
use teensy4_bsp::pins::common::{P10, P11, P12, P13};

use super::logic::{self, SpiSpeed};
use crate::coroutine::{self, Instant};

/// SPI clock while the card identifies itself (at most 400 kHz).
const IDENTIFICATION_HZ: u32 = 400_000;
/// SPI clock asked for data (at most 25 MHz at default speed): imxrt-hal rounds the divider
/// up, so the LPSPI's 132 MHz gives 22 MHz (÷6).
const TRANSFER_HZ: u32 = 24_000_000;
/// LPSPI clock root dividers from PLL2 (528 MHz): /4 = 132 MHz (the BSP's policy) for data;
/// /8 = 66 MHz while identifying, since the LPSPI's own divider stops at /256 (515 kHz
/// from 132 MHz).
const ROOT_DIVIDER_TRANSFER: u32 = 4;
const ROOT_DIVIDER_IDENTIFICATION: u32 = 8;
const PLL2_HZ: u32 = 528_000_000;

/// What pin 13 is on this boot.
pub enum Pin13 {
    /// A card answered on LPSPI4: pin 13 is its clock.
    SdSpi(SdSpi),
    /// No card on LPSPI4: pin 13 drives the LED.
    Led(ActivityLed),
}

/// Look for an SD card on LPSPI4 (pins 10 CS, 11 MOSI, 12 MISO, 13 SCK): a CMD0 answered
/// with "idle" in up to three tries. Needs the coroutine runtime (it sleeps briefly).
pub(crate) fn probe(
    lpspi4: ral::lpspi::LPSPI4,
    gpio2: &mut hal::gpio::Port,
    pins: (P10, P11, P12, P13),
) -> Pin13 {
    let (p10, mut p11, mut p12, mut p13) = pins;
    let Ok(cs) = gpio2.output(p10) else {
        unreachable!("pin 10 is GPIO2's")
    };
    cs.set();
    hal::iomuxc::lpspi::prepare(&mut p11);
    hal::iomuxc::lpspi::prepare(&mut p12);
    hal::iomuxc::lpspi::prepare(&mut p13);
    let mut sd = SdSpi {
        spi: hal::lpspi::Lpspi::without_pins(lpspi4),
        cs,
        speed: None,
        _pins: (p11, p12),
    };
    sd.set_speed(SpiSpeed::Identification);
    if (0..3).any(|_| sd.probe_cmd0()) {
        return Pin13::SdSpi(sd);
    }
    // No card: stop LPSPI4, give pin 13 to the GPIO (which muxes the pad back).
    sd.spi.set_enable(false);
    let Ok(led) = gpio2.output(p13) else {
        unreachable!("pin 13 is GPIO2's")
    };
    Pin13::Led(ActivityLed::new(led))
}

/// An SD card on LPSPI4 with a GPIO chip select (see the module docs).
pub struct SdSpi {
    spi: hal::lpspi::Lpspi,
    cs: hal::gpio::Output,
    speed: Option<SpiSpeed>,
    /// MOSI and MISO stay LPSPI4's while this lives (SCK, pin 13, is not kept as a value: it
    /// was moved into the probe; nothing else can take it).
    _pins: (P11, P12),
}

impl core::fmt::Debug for SdSpi {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SdSpi")
            .field("speed", &self.speed)
            .finish_non_exhaustive()
    }
}

impl SdSpi {
    fn set_speed(&mut self, speed: SpiSpeed) {
        if self.speed == Some(speed) {
            return;
        }
        let (root_divider, hz) = match speed {
            SpiSpeed::Identification => (ROOT_DIVIDER_IDENTIFICATION, IDENTIFICATION_HZ),
            SpiSpeed::Transfer => (ROOT_DIVIDER_TRANSFER, TRANSFER_HZ),
        };
        {
            // SAFETY: the LPSPI clock root and LPSPI4's gate are this driver's: the board uses
            // no other LPSPI. The gate is off while the divider changes.
            let mut ccm = unsafe { ral::ccm::CCM::instance() };
            let gate = hal::ccm::clock_gate::lpspi::<4>();
            gate.set(&mut ccm, hal::ccm::clock_gate::OFF);
            hal::ccm::lpspi_clk::set_divider(&mut ccm, root_divider);
            gate.set(&mut ccm, hal::ccm::clock_gate::ON);
        }
        let source = PLL2_HZ / root_divider;
        self.spi.disabled(|spi| {
            spi.set_clock_hz(source, hz);
            spi.set_sample_point(hal::lpspi::SamplePoint::Edge);
        });
        self.speed = Some(speed);
    }

    /// 80 clocks with chip select high: how a card enters SPI mode after power-up.
    fn power_up_clocks(&mut self) -> Result<(), hal::lpspi::LpspiError> {
        self.cs.set();
        SpiBus::<u8>::write(&mut self.spi, &[0xFF; 10])?;
        SpiBus::<u8>::flush(&mut self.spi)
    }

    /// Send CMD0 and look for the "idle" answer (R1 = 0x01).
    fn probe_cmd0(&mut self) -> bool {
        if self.power_up_clocks().is_err() {
            return false;
        }
        self.cs.clear();
        let cmd0 = [0x40, 0, 0, 0, 0, 0x95];
        let mut answer = false;
        if SpiBus::<u8>::write(&mut self.spi, &cmd0).is_ok() {
            for _ in 0..16 {
                let mut r = [0xFF];
                if SpiBus::<u8>::transfer_in_place(&mut self.spi, &mut r).is_err() {
                    break;
                }
                if r[0] != 0xFF {
                    answer = r[0] == 0x01;
                    break;
                }
            }
        }
        let _ = SpiBus::<u8>::flush(&mut self.spi);
        self.cs.set();
        if !answer {
            coroutine::sleep(Duration::from_millis(5));
        }
        answer
    }

    fn run(&mut self, ops: &mut [Operation<'_, u8>]) -> Result<(), hal::lpspi::LpspiError> {
        for op in ops {
            match op {
                Operation::Read(buf) => SpiBus::<u8>::read(&mut self.spi, buf)?,
                Operation::Write(buf) => SpiBus::<u8>::write(&mut self.spi, buf)?,
                Operation::Transfer(read, write) => {
                    SpiBus::<u8>::transfer(&mut self.spi, read, write)?
                }
                Operation::TransferInPlace(buf) => {
                    SpiBus::<u8>::transfer_in_place(&mut self.spi, buf)?
                }
                Operation::DelayNs(ns) => {
                    SpiBus::<u8>::flush(&mut self.spi)?;
                    coroutine::sleep(Duration::from_nanos(u64::from(*ns)));
                }
            }
        }
        SpiBus::<u8>::flush(&mut self.spi)
    }
}

impl embedded_hal::spi::ErrorType for SdSpi {
    type Error = hal::lpspi::LpspiError;
}

impl SpiDevice<u8> for SdSpi {
    fn transaction(&mut self, ops: &mut [Operation<'_, u8>]) -> Result<(), Self::Error> {
        if let Some(Operation::Write(first)) = ops.first()
            && let Some(speed) = logic::sd_spi_speed(first)
        {
            let cmd0 = first[0] == 0x40;
            self.set_speed(speed);
            if cmd0 {
                self.power_up_clocks()?;
            }
        }
        self.cs.clear();
        let result = self.run(ops);
        self.cs.set();
        result
    }
}

/// The LED on pin 13, blinking while the mass-storage function reads or writes a medium.
///
/// [`ActivityLed::pulse`] is cheap (a timestamp); the blinking happens in
/// [`ActivityLed::run`], a coroutine body that sleeps while nothing happens.
pub struct ActivityLed {
    led: hal::gpio::Output,
    last_ms: Cell<Option<u64>>,
    waiter: Cell<Option<coroutine::CoroutineId>>,
}

impl core::fmt::Debug for ActivityLed {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ActivityLed")
            .field("last_ms", &self.last_ms.get())
            .finish_non_exhaustive()
    }
}

fn now_ms() -> u64 {
    coroutine::now().as_nanos() / 1_000_000
}

impl ActivityLed {
    fn new(led: hal::gpio::Output) -> Self {
        led.clear();
        ActivityLed {
            led,
            last_ms: Cell::new(None),
            waiter: Cell::new(None),
        }
    }

    /// Note an access; wakes the blinking coroutine if it sleeps.
    pub fn pulse(&self) {
        self.last_ms.set(Some(now_ms()));
        if let Some(id) = self.waiter.take() {
            coroutine::unpark(id);
        }
    }

    /// Turn the LED on or off directly (for example at boot).
    pub fn set(&self, on: bool) {
        if on { self.led.set() } else { self.led.clear() }
    }

    /// The blinking coroutine: follows [`logic::led_lit`] every 10 ms while accesses are
    /// recent, parks otherwise. Returns when asked to stop.
    pub fn run(&self) {
        while !coroutine::should_stop() {
            let lit = logic::led_lit(now_ms(), self.last_ms.get());
            self.set(lit);
            if lit || self.last_ms.get().is_some_and(|t| now_ms() - t < 200) {
                coroutine::sleep_until(Instant::from_nanos(
                    coroutine::now().as_nanos() + 10_000_000,
                ));
            } else {
                self.last_ms.set(None);
                self.waiter.set(Some(coroutine::current()));
                coroutine::park();
                self.waiter.set(None);
            }
        }
        self.set(false);
    }
}
