//! Fuzz a whole Bulk-Only session through the virtual host: the input is a series of
//! (CBW bytes, data direction, data length) commands sent to a RAM LUN; the function must
//! answer each with a CSW or a wedge, never panic, and come back after Reset Recovery.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lunbox_gadget::testing::{BotHost, VirtualBus, VirtualHost};
use lunbox_gadget::ums::{LunConfig, Ums, UmsConfig};
use lunbox_platform::coroutine;
use lunbox_storage::{RamDisk, share};
use usb_device::bus::UsbBusAllocator;
use usb_device::device::{UsbDeviceBuilder, UsbVidPid};

fuzz_target!(|data: &[u8]| {
    let (bus, port) = VirtualBus::new();
    let alloc = UsbBusAllocator::new(bus);
    let mut config = UmsConfig::new(vec![
        LunConfig::new(Some(share(RamDisk::new(64).unwrap())), "a"),
        LunConfig::new(None, "b"),
    ]);
    config.max_packet = 64;
    config.buffer_size = 4096;
    let Ums { mut class, function, .. } = Ums::new(&alloc, config).unwrap();
    let mut dev = UsbDeviceBuilder::new(&alloc, UsbVidPid(0x1209, 0x4c42)).build();
    let task = coroutine::spawn("ums", move || function.run());
    {
        let mut step = || {
            dev.poll(&mut [&mut class]);
            class.pump();
            coroutine::yield_now();
        };
        let mut host = VirtualHost::new(port, &mut step);
        let d = host.enumerate().expect("enumeration");
        let bot = BotHost::find(&d.interfaces).unwrap();
        for chunk in data.chunks(34) {
            if chunk.len() < 34 {
                break;
            }
            let (cbw, rest) = chunk.split_at(31);
            let _ = bot.send_raw_cbw(&mut host, cbw);
            let len = usize::from(u16::from_le_bytes([rest[1], rest[2]])) % 5000;
            match rest[0] % 3 {
                0 => {}
                1 => {
                    let _ = host.bulk_in(bot.ep_in, bot.mps, len);
                }
                _ => {
                    let _ = host.bulk_out(bot.ep_out, bot.mps, &vec![0xA5; len], false);
                }
            }
            let _ = host.bulk_in(bot.ep_in, bot.mps, 13);
            bot.reset_recovery(&mut host).expect("Reset Recovery always works");
        }
        let mut bot = bot;
        let r = bot.command(&mut host, 0, &[0; 6], lunbox_gadget::testing::DataPhase::None);
        assert!(r.is_ok(), "responsive after the session: {r:?}");
    }
    task.stop().expect("clean stop");
});
