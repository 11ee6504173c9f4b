//! The Teensy 4.1 board (NXP i.MX RT1062, Cortex-M7 at 600 MHz): everything the firmware
//! needs from the hardware, behind the same interfaces the sandbox board offers.
//!
//! [`Board::take`] brings the board up once, in this order: the heap; clocks and power
//! (teensy4-bsp's policy: core 600 MHz, PERCLK 1 MHz, UART 8 MHz, LPSPI 132 MHz, uSDHC1
//! 198 MHz, USB PLL on); the coroutine runtime on [`Teensy41Machine`] (GPT1 clock, `WFI`
//! idle); the console UART; the USB bus; LPSPI4 probed for an SD card, or the LED
//! ([`Pin13`]); the built-in SD slot; the RAM disk region in OCRAM.
//!
//! | what | where | module |
//! |------|-------|--------|
//! | monotonic clock, idle, interrupt wake-ups | GPT1 (1 MHz), `WFI` | [`machine`] |
//! | serial console | LPUART6: pin 1 TX, pin 0 RX, 115200 8N1 | [`uart`] |
//! | USB device, high speed | USB1 (micro-USB connector), imxrt-usbd | [`usb`] |
//! | SD card over SPI | LPSPI4: 10 CS, 11 MOSI, 12 MISO, 13 SCK | [`pin13`] |
//! | activity LED | pin 13 (only without an SPI card) | [`pin13`] |
//! | built-in microSD slot | uSDHC1, 4-bit, programmed I/O | [`usdhc`] |
//! | RAM disk | 448 KiB of OCRAM2 (`.uninit`) | [`Board::ram_disk`] |
//! | heap | DTCM (`.heap`, size set by the firmware's build.rs) | [`heap`] |
//! | panics, faults | message on the UART, reset after 2 s | `fault` |
//!
//! The memory map and boot image come from imxrt-rt, configured by the firmware binary's
//! build script (app/build.rs); the FlexSPI configuration block from teensy4-bsp
//! (teensy4-fcb). Build for `thumbv7em-none-eabihf` only.

#[cfg(not(all(target_arch = "arm", target_os = "none")))]
compile_error!(
    "lunbox-platform's `teensy41` board builds for thumbv7em-none-eabihf only: add \
     `--no-default-features --features teensy41 --target thumbv7em-none-eabihf`"
);

mod fault;
pub mod flash;
pub mod heap;
pub mod logic;
pub mod machine;
pub mod pin13;
pub mod uart;
pub mod usb;
pub mod usdhc;

use alloc::rc::Rc;
use core::mem::MaybeUninit;
use core::sync::atomic::{AtomicBool, Ordering};

pub use cortex_m_rt::entry;
// The runtime: its `__pre_init` (FlexRAM banks, copying the code to ITCM) must be linked.
pub use imxrt_hal as hal;
pub use imxrt_ral as ral;
use imxrt_rt as _;
use usb_device::bus::UsbBusAllocator;

pub use machine::{Event, Teensy41Machine};
pub use pin13::{ActivityLed, Pin13, SdSpi};
pub use uart::Uart;
pub use usdhc::{Usdhc, UsdhcError};

use crate::coroutine::{self, Instant, Machine};

/// Bytes of OCRAM2 given to the RAM disk (the rest of its 512 KiB stays free).
pub const RAM_DISK_BYTES: usize = 448 * 1024;

/// The RAM disk's memory: OCRAM2, not initialised by the runtime (zeroed by [`Board::take`]).
// SAFETY: imxrt-rt's linker script places `.uninit.*` in OCRAM2, outside every other section,
// and leaves it uninitialised, which `MaybeUninit` allows.
#[unsafe(link_section = ".uninit.lunbox_ram_disk")]
static mut RAM_DISK: MaybeUninit<[u8; RAM_DISK_BYTES]> = MaybeUninit::uninit();

/// The machine is shared between the runtime and the board (which registers event watchers).
impl Machine for Rc<Teensy41Machine> {
    fn now(&self) -> Instant {
        (**self).now()
    }

    fn idle(&self, deadline: Option<Instant>) {
        (**self).idle(deadline)
    }
}

/// The board, brought up.
pub struct Board {
    /// The runtime's machine: register wake-ups with [`Teensy41Machine::watch`].
    pub machine: Rc<Teensy41Machine>,
    /// The serial console on LPUART6.
    pub uart: Uart,
    /// The USB bus (USB1, high speed) for the gadget's functions.
    pub usb: &'static UsbBusAllocator<usb::Bus>,
    /// Pin 13: the SD card on LPSPI4, or the activity LED.
    pub pin13: Pin13,
    /// The built-in microSD slot.
    pub sd_slot: Usdhc,
    /// [`RAM_DISK_BYTES`] of zeroed OCRAM for a RAM disk.
    pub ram_disk: &'static mut [u8],
}

impl core::fmt::Debug for Board {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Board").finish_non_exhaustive()
    }
}

impl Board {
    /// Bring the board up (see the module docs) and install the coroutine runtime. Call once,
    /// first thing in `main`.
    ///
    /// # Panics
    /// On a second call.
    pub fn take() -> Board {
        static TAKEN: AtomicBool = AtomicBool::new(false);
        assert!(
            !TAKEN.swap(true, Ordering::SeqCst),
            "Board::take called twice"
        );
        heap::init();

        let mut p = teensy4_bsp::board::instances();
        teensy4_bsp::board::prepare_clocks_and_power(&mut p.CCM, &mut p.CCM_ANALOG, &mut p.DCDC);
        let pins = teensy4_bsp::pins::t41::from_pads(hal::iomuxc::into_pads(p.IOMUXC));

        let machine = Rc::new(Teensy41Machine::start(hal::gpt::Gpt::new(p.GPT1)));
        // SAFETY: one core; the interrupt handlers of this board never call into the runtime
        // (they set atomic flags the idle hook reads).
        unsafe { coroutine::init(machine.clone()) };

        let uart = Uart::new(p.LPUART6, pins.p1, pins.p0);
        let usb = usb::bus(imxrt_usbd::Instances {
            usb: p.USB1,
            usbnc: p.USBNC1,
            usbphy: p.USBPHY1,
        });
        let mut gpio2 = hal::gpio::Port::new(p.GPIO2);
        let pin13 = pin13::probe(
            p.LPSPI4,
            &mut gpio2,
            (pins.p10, pins.p11, pins.p12, pins.p13),
        );
        let sd_slot = Usdhc::new(
            p.USDHC1,
            (pins.p45, pins.p44, pins.p43, pins.p42, pins.p47, pins.p46),
        );

        let region = (&raw mut RAM_DISK).cast::<u8>();
        // SAFETY: RAM_DISK is RAM_DISK_BYTES of memory only this function touches, once
        // (guarded by TAKEN).
        unsafe { region.write_bytes(0, RAM_DISK_BYTES) };
        // SAFETY: as above, this is the only reference ever made to RAM_DISK, and every byte
        // was just initialised.
        let ram_disk = unsafe { core::slice::from_raw_parts_mut(region, RAM_DISK_BYTES) };

        Board {
            machine,
            uart,
            usb,
            pin13,
            sd_slot,
            ram_disk,
        }
    }
}

/// The chip's 64-bit unique id: OCOTP fuse words CFG0 (low) and CFG1 (high), read through
/// their shadow registers (the boot ROM loads them; the OCOTP clock is on after reset). The
/// firmware's USB serial number is made from it, so that two boards differ.
pub fn unique_id() -> u64 {
    // SAFETY: only reads OCOTP's shadow registers, which have no read side effects; nothing in
    // the firmware writes OCOTP, so this second handle to the block cannot race a writer.
    let ocotp = unsafe { ral::ocotp::OCOTP::instance() };
    let low = ral::read_reg!(ral::ocotp, ocotp, CFG0);
    let high = ral::read_reg!(ral::ocotp, ocotp, CFG1);
    (u64::from(high) << 32) | u64::from(low)
}

/// Start the firmware image whose vector table is at address `table` (the boot stage's last
/// step): interrupts off, then its initial stack pointer and reset handler from the table.
///
/// # Safety
/// `table` must be the vector table of a complete image built to run from there (imxrt-rt's
/// `in_flash` layout keeps it at the partition start). Nothing of the caller's may be used
/// afterwards: its stack and data are abandoned to the new image.
pub unsafe fn start_image(table: usize) -> ! {
    cortex_m::interrupt::disable();
    // SAFETY: stealing the core peripherals here is fine: the caller is about to give up the
    // processor, and nothing else runs (interrupts are off).
    let mut core = unsafe { cortex_m::Peripherals::steal() };
    // The image runs its start-up from flash that a swap may just have rewritten: no stale
    // instructions or data from before may survive the jump.
    core.SCB.clean_invalidate_dcache(&mut core.CPUID);
    core.SCB.invalidate_icache();
    cortex_m::asm::dsb();
    cortex_m::asm::isb();
    // SAFETY: the caller guarantees `table` holds a valid image's initial stack pointer and
    // reset vector; `bootload` loads MSP and branches there, never returning.
    unsafe { cortex_m::asm::bootload(table as *const u32) }
}

/// Reset the board (the console's `reset`).
pub fn reset() -> ! {
    cortex_m::peripheral::SCB::sys_reset()
}
