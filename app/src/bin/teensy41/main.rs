//! `lunbox-teensy41`: the lunbox firmware for the Teensy 4.1 (i.MX RT1062). The same USB
//! gadget as the sandbox — mass storage (UMS) and a CDC-ACM serial console, high speed — on
//! the real USB controller, with the board's disks: the built-in microSD slot (`sd0`), an SD
//! card on LPSPI4 (`sd1`, if one answers at boot) and a RAM disk in OCRAM (`ram0`).
//!
//! DFU (`dfu-util`) reads and writes the same disks.
//!
//! Coroutines: `usb` (the USB controller poller; DFU's work runs in it), `ums` (the
//! mass-storage function), `led` (activity LED, only without an SPI card), and the main
//! context running the console on the UART and the USB serial port. Build and flash:
//! docs/teensy41.md.

#![no_std]
#![no_main]

extern crate alloc;

mod console;
mod disks;
#[cfg(feature = "teensy41-ab")]
mod firmware;

use alloc::boxed::Box;
use alloc::format;
use alloc::rc::Rc;
use alloc::vec::Vec;
use core::time::Duration;

use lunbox_gadget::DeviceQualifier;
use lunbox_gadget::acm::AcmClass;
use lunbox_gadget::dfu::{BlockTarget, DfuClass, DfuTarget, TargetFlags};
use lunbox_gadget::ums::{LunConfig, Ums, UmsConfig};
use lunbox_platform::coroutine::{self, Completion};
use lunbox_platform::imxrt::usb::Configured;
use lunbox_platform::imxrt::{self, Board, Event, Uart, entry};
use usb_device::class::UsbClass;
use usb_device::device::{StringDescriptors, UsbDeviceBuilder, UsbRev, UsbVidPid};

/// USB vendor and product id (pid.codes open-source test pair, as the sandbox).
const VID_PID: (u16, u16) = (0x1209, 0x0001);
/// Stacks: the mass-storage function runs SCSI and the storage drivers (embedded-sdmmc on
/// SPI) on its own; the poller runs usb-device's control handling and DFU's block writes.
const UMS_STACK: usize = 16 * 1024;
/// (The A/B build also checks firmware signatures there: ~8.5 KiB of stack more.)
const USB_STACK: usize = if cfg!(feature = "teensy41-ab") {
    24 * 1024
} else {
    16 * 1024
};
const LED_STACK: usize = 2 * 1024;

/// Log a line on the UART.
pub(crate) fn log(uart: &Uart, line: &str) {
    uart.write(b"lunbox: ");
    uart.write(line.as_bytes());
    uart.write(b"\r\n");
}

#[entry]
fn main() -> ! {
    let Board {
        machine,
        uart,
        usb,
        pin13,
        sd_slot,
        ram_disk,
    } = Board::take();
    uart.write(
        format!(
            "\r\nlunbox {} — USB mass-storage gadget (Teensy 4.1)\r\n",
            env!("CARGO_PKG_VERSION")
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

    // Wake-ups: the USB poller sleeps on `usb_ready` (USB interrupt, work posted by the
    // functions), the console on `console_ready` (UART input, USB serial input).
    let usb_ready = Rc::new(Completion::new());
    machine.watch(Event::Usb, usb_ready.clone());
    let console_ready = Rc::new(Completion::new());
    machine.watch(Event::Uart, console_ready.clone());

    // The gadget: mass storage with every LUN, the serial console, at high speed.
    let luns: Vec<LunConfig> = disks
        .luns
        .iter()
        .map(|(name, device)| LunConfig::new(device.clone(), name))
        .collect();
    let mut config = UmsConfig::new(luns);
    config.activity = usb_ready.clone();
    let Ums {
        class: mut ums_class,
        function,
        control,
    } = match Ums::new(usb, config) {
        Ok(ums) => ums,
        Err(e) => panic!("mass storage: {e}"),
    };
    let (mut acm, port) = AcmClass::new(usb, true, console_ready.clone(), usb_ready.clone());
    // DFU: every disk with a medium at boot, written directly, readable (`dfu-util -U`).
    let targets: Vec<Box<dyn DfuTarget>> = disks
        .luns
        .iter()
        .filter_map(|(name, device)| {
            let device = device.clone()?;
            let flags = TargetFlags {
                read: true,
                safe: false,
            };
            Some(Box::new(BlockTarget::new(name.as_str(), device, flags)) as Box<dyn DfuTarget>)
        })
        .collect();
    // The A/B build: the `firmware` target writes the secondary slot.
    #[cfg(feature = "teensy41-ab")]
    let firmware = firmware::Firmware::take();
    #[cfg(feature = "teensy41-ab")]
    let mut targets = targets;
    #[cfg(feature = "teensy41-ab")]
    match &firmware {
        Some(f) => targets.push(f.target()),
        None => log(
            &uart,
            "firmware: the program flash is not available: no firmware target",
        ),
    }
    let dfu_targets = targets.len();
    let mut dfu = match DfuClass::new(usb, targets) {
        Ok(dfu) => dfu,
        Err(e) => panic!("DFU: {e}"),
    };
    let mut qualifier = DeviceQualifier::new((0xEF, 0x02, 0x01), 64);
    // The serial number: the chip's unique id, so that two boards on one PC differ. Leaked:
    // usb-device keeps the strings as long as the device, which is forever.
    let serial: &'static str = Box::leak(format!("LB{:016X}", imxrt::unique_id()).into_boxed_str());
    let Ok(builder) = UsbDeviceBuilder::new(usb, UsbVidPid(VID_PID.0, VID_PID.1))
        .usb_rev(UsbRev::Usb200)
        .composite_with_iads()
        .strings(&[StringDescriptors::default()
            .manufacturer("lunbox")
            .product("lunbox USB gadget")
            .serial_number(serial)])
        .and_then(|b| b.max_packet_size_0(64))
    else {
        panic!("USB device descriptors rejected");
    };
    let mut device = builder.device_release(0x0010).build();

    coroutine::Builder::new("ums")
        .stack_size(UMS_STACK)
        .spawn(move || function.run());
    let ready = usb_ready.clone();
    coroutine::Builder::new("usb")
        .stack_size(USB_STACK)
        .spawn(move || {
            let mut configured = Configured::default();
            loop {
                let mut busy = false;
                for _ in 0..64 {
                    let events = {
                        let mut classes: [&mut dyn UsbClass<_>; 4] =
                            [&mut qualifier, &mut ums_class, &mut acm, &mut dfu];
                        device.poll(&mut classes)
                    };
                    configured.update(&device);
                    ums_class.pump();
                    acm.pump();
                    // DFU work (block writes, manifestation) runs here, between requests.
                    dfu.pump();
                    busy |= dfu.is_busy();
                    if !events {
                        break;
                    }
                    busy = true;
                }
                if busy {
                    coroutine::yield_now();
                } else {
                    // Until the controller interrupts or a function posts work; the timeout
                    // is only a safety net.
                    ready.wait_timeout(Duration::from_millis(100));
                }
            }
        });

    log(
        &uart,
        &format!(
            "USB device {:04x}:{:04x} (mass storage, {} LUNs; serial console; DFU, {} targets), \
             high speed",
            VID_PID.0,
            VID_PID.1,
            control.lun_count(),
            dfu_targets
        ),
    );
    let console = console::Console {
        uart,
        acm: port,
        control,
        registry: disks.registry,
        ready: console_ready,
        #[cfg(feature = "teensy41-ab")]
        firmware,
    };
    console.run()
}
