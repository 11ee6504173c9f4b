//! `lunbox-teensy41`: the lunbox firmware for the Teensy 4.1 (i.MX RT1062). The same app as
//! the sandbox (`lunbox::gadget` spawns the USB controller poller and the mass-storage
//! function, `lunbox::console` serves `lunbox::shell` on the UART and the USB serial port):
//! mass storage, DFU and a CDC-ACM serial console at high speed on the real USB controller,
//! with the board's disks: the built-in microSD slot (`sd0`), an SD card on LPSPI4 (`sd1`, if
//! one answers at boot) and a RAM disk in OCRAM (`ram0`). This file is wiring only; [`board`]
//! adapts the board, [`disks`] finds the disks.
//!
//! Coroutines: `usb` (the USB controller poller; DFU's work runs in it) and `ums` (the
//! mass-storage function), spawned by `lunbox::boot::start` as on the sandbox; `console`
//! (`Console::spawn`, as on the sandbox); `sd0` (watches the built-in slot for cards put in
//! and taken out) and `led` (activity LED, only without an SPI card), the board's own. The
//! main context sets the board up, then waits for the console. Build and flash:
//! docs/teensy41.md.

#![no_std]
#![no_main]

extern crate alloc;

mod board;
mod disks;
#[cfg(feature = "teensy41-ab")]
mod firmware;
mod flash;

use alloc::format;
use alloc::rc::Rc;
use core::cell::RefCell;
use core::time::Duration;

use lunbox::board::Terminal;
use lunbox::console::Console;
use lunbox::gadget::Gadgets;
use lunbox::shell::Context;
use lunbox_platform::coroutine::{self, Completion};
use lunbox_platform::imxrt::{self, Event, Uart, entry};

use board::{Teensy41, UartTerminal};
use flash::{ConfigStore, SharedFlash};

/// Stack of the activity LED's coroutine.
const LED_STACK: usize = 2 * 1024;
/// Stack of the built-in slot's watcher (it brings inserted cards up through the uSDHC driver).
const SLOT_STACK: usize = 8 * 1024;
/// How often the watcher looks at the built-in slot (a change counts after two looks).
const SLOT_PERIOD: Duration = Duration::from_millis(250);
/// How often the console looks at the UART while the idle hook does not run (busy USB).
const CONSOLE_POLL: Duration = Duration::from_millis(50);

/// Log a line on the UART.
pub(crate) fn log(uart: &Uart, line: &str) {
    uart.write(b"lunbox: ");
    uart.write(line.as_bytes());
    uart.write(b"\r\n");
}

#[entry]
fn main() -> ! {
    let imxrt::Board {
        machine,
        uart,
        usb,
        pin13,
        sd_slot,
        ram_disk,
    } = imxrt::Board::take();
    let uart = Rc::new(uart);
    uart.write(
        format!(
            "\r\nlunbox {} — USB mass-storage gadget (Teensy 4.1)\r\n",
            board::VERSION
        )
        .as_bytes(),
    );

    let disks = disks::setup(ram_disk, sd_slot, pin13, &uart);
    if let Some(led) = &disks.led {
        let led = led.clone();
        coroutine::Builder::new("led")
            .stack_size(LED_STACK)
            .spawn(move || led.run());
    }
    let slot = disks.slot;
    let slot_log = uart.clone();
    coroutine::Builder::new("sd0")
        .stack_size(SLOT_STACK)
        .spawn(move || slot.run(SLOT_PERIOD, "sd0", |line| log(&slot_log, line)));

    // Wake-ups: the USB poller sleeps on `usb_ready` (USB interrupt, work posted by the
    // functions), the console on `console_ready` (UART input, USB serial input).
    let usb_ready = Rc::new(Completion::new());
    machine.watch(Event::Usb, usb_ready.clone());
    let console_ready = Rc::new(Completion::new());
    machine.watch(Event::Uart, console_ready.clone());

    // The program flash: the configuration store and (A/B build) the firmware slots.
    let flash = SharedFlash::take();
    if let Err(e) = &flash {
        log(&uart, &format!("the program flash is not available: {e}"));
    }
    let board = Rc::new(Teensy41::new(
        usb,
        uart.clone(),
        usb_ready.clone(),
        #[cfg(feature = "teensy41-ab")]
        flash.clone().ok().map(firmware::Firmware::new),
    ));
    let mut store = ConfigStore::new(flash);

    // The built-in gadget: every disk on a LUN and as a readable DFU target, the firmware
    // target (A/B build), the serial console.
    let defaults = lunbox::boot::every_disk(&disks.defaults, board.has_firmware_target());
    if !board.has_firmware_target() && cfg!(feature = "teensy41-ab") {
        log(
            &uart,
            "firmware: the program flash is not available: no firmware target",
        );
    }
    let registry = Rc::new(RefCell::new(disks.registry));
    let gadgets = Rc::new(Gadgets::new(
        board,
        registry.clone(),
        usb_ready,
        console_ready.clone(),
    ));
    // The shared start, for a board that builds its gadget once per boot: the saved
    // configuration; with problems, or if it cannot start, the built-in gadget, which keeps
    // the USB console up.
    let config = lunbox::boot::start(&gadgets, &mut store, &defaults, true, |line| {
        log(&uart, line)
    });

    let ctx = Context {
        gadgets,
        registry,
        config: RefCell::new(config),
        defaults,
        store: RefCell::new(store),
    };
    let console = Console::new(
        ctx,
        UartTerminal(uart.clone()),
        console_ready,
        Some(CONSOLE_POLL),
    )
    .spawn();
    // The board refuses `exit` (`Board::can_exit`): the console ends with `reset`, or a panic
    // (which resets the board itself).
    let _ = console.join();
    let mut terminal = UartTerminal(uart.clone());
    terminal.write(b"resetting\r\n");
    terminal.flush();
    imxrt::reset()
}
