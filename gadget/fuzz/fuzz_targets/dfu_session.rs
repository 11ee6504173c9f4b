//! Fuzz the DFU state machine through the virtual host: the input is a series of 4-byte
//! operations (DFU requests with fuzzed fields, raw class requests, SET_INTERFACE, bus
//! resets) against a direct, a safe and a read-only block device target. GETSTATUS (after
//! the operations with the top bit of their first byte set) must answer with a DFU-mode state whose status is OK exactly outside
//! dfuERROR; the read-only device must never change; and at the end the device must get
//! back to dfuIDLE and take a whole download.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lunbox_gadget::dfu::{BlockTarget, DfuClass, DfuState, DfuTarget, StatusReport, TargetFlags};
use lunbox_gadget::testing::{HostError, Setup, VirtualBus, VirtualHost};
use lunbox_platform::coroutine;
use lunbox_storage::{DeviceRef, RamDisk, share};
use usb_device::bus::UsbBusAllocator;
use usb_device::device::{UsbDeviceBuilder, UsbVidPid};

fn out(host: &mut VirtualHost<'_>, req: u8, value: u16, data: &[u8]) -> Result<(), HostError> {
    host.control_out(
        Setup {
            request_type: 0x21,
            request: req,
            value,
            index: 0,
            length: data.len() as u16,
        },
        data,
    )
}

fn inp(host: &mut VirtualHost<'_>, req: u8, length: u16) -> Result<Vec<u8>, HostError> {
    host.control_in(Setup {
        request_type: 0xA1,
        request: req,
        value: 0,
        index: 0,
        length,
    })
}

fn status(host: &mut VirtualHost<'_>) -> StatusReport {
    let raw = inp(host, 3, 6).expect("GETSTATUS never stalls");
    let s = StatusReport::parse(&raw).expect("a valid status");
    assert!(
        !matches!(
            s.state,
            DfuState::AppIdle | DfuState::AppDetach | DfuState::ManifestWaitReset
        ),
        "{s:?}"
    );
    assert_eq!(s.status.is_some(), s.state == DfuState::Error, "{s:?}");
    s
}

fn contents(dev: &DeviceRef) -> Vec<u8> {
    let mut d = dev.lock();
    let mut buf = vec![0u8; d.num_blocks() as usize * 512];
    d.read(0, &mut buf).unwrap();
    buf
}

fuzz_target!(|data: &[u8]| {
    let direct = share(RamDisk::new(16).unwrap());
    let safe = share(RamDisk::new(16).unwrap());
    let mut ro_disk = RamDisk::from_image(vec![0x5A; 4096]).unwrap();
    ro_disk.set_read_only(true);
    let ro = share(ro_disk);
    let rw = TargetFlags::parse("r").unwrap();
    let targets: Vec<Box<dyn DfuTarget>> = vec![
        Box::new(BlockTarget::new("direct", direct.clone(), rw)),
        Box::new(
            BlockTarget::new("safe", safe.clone(), TargetFlags::parse("rs").unwrap())
                .with_stage_limit(2048),
        ),
        Box::new(BlockTarget::new("ro", ro.clone(), rw)),
    ];
    let (bus, port) = VirtualBus::new();
    let alloc = UsbBusAllocator::new(bus);
    let mut class = DfuClass::new(&alloc, targets).unwrap();
    let mut dev = UsbDeviceBuilder::new(&alloc, UsbVidPid(0x1209, 0x4c42)).build();
    let mut step = || {
        dev.poll(&mut [&mut class]);
        class.pump();
        coroutine::yield_now();
    };
    let mut host = VirtualHost::new(port, &mut step);
    host.enumerate().expect("enumeration");
    for op in data.chunks_exact(4) {
        let (a, b, c) = (op[1], op[2], op[3]);
        let len = u16::from_le_bytes([b, c]);
        match op[0] % 12 {
            // DNLOAD: up to one byte over wTransferSize (4096; longer ones stall in usb-device's
            // control pipe and never reach the class).
            0 | 1 => {
                let n = usize::from(len % 4098);
                let _ = out(&mut host, 1, a.into(), &vec![a; n]);
            }
            2 => {
                let _ = inp(&mut host, 2, len % 4200);
            }
            3 => {
                let _ = inp(&mut host, 5, 1);
            }
            4 => {
                let _ = out(&mut host, 4, 0, &[]);
            }
            5 => {
                let _ = out(&mut host, 6, 0, &[]);
            }
            6 => {
                let _ = out(&mut host, 0, len, &[]);
            }
            7 => {
                let _ = host.control_out(
                    Setup {
                        request_type: 0x01,
                        request: 11,
                        value: u16::from(a % 4),
                        index: 0,
                        length: 0,
                    },
                    &[],
                );
            }
            // Any class request, either direction, small data.
            8 => {
                let _ = out(&mut host, a, len, &vec![b; usize::from(c % 32)]);
            }
            9 => {
                let _ = inp(&mut host, a, len % 300);
            }
            10 if a == 0 => {
                host.port().bus_reset();
                host.enumerate().expect("enumeration after a reset");
            }
            _ => host.step(),
        }
        // GETSTATUS moves dfuDNLOAD-SYNC on: check only after some operations, so that
        // the others meet the device in every state.
        if op[0] & 0x80 != 0 {
            status(&mut host);
        }
        assert_eq!(
            contents(&ro),
            vec![0x5A; 4096],
            "the read-only device changed"
        );
    }
    // Back to dfuIDLE the way dfu-util gets there, then a whole download.
    let _ = host.control_out(
        Setup {
            request_type: 0x01,
            request: 11,
            value: 0,
            index: 0,
            length: 0,
        },
        &[],
    );
    for _ in 0..1000 {
        match status(&mut host).state {
            DfuState::Idle => break,
            DfuState::Error => out(&mut host, 4, 0, &[]).expect("CLRSTATUS"),
            DfuState::DnloadIdle | DfuState::UploadIdle => {
                out(&mut host, 6, 0, &[]).expect("ABORT")
            }
            _ => {}
        }
    }
    host.control_out(
        Setup {
            request_type: 0x01,
            request: 11,
            value: 0,
            index: 0,
            length: 0,
        },
        &[],
    )
    .expect("SET_INTERFACE in dfuIDLE");
    // Full wTransferSize blocks and a short last one.
    let image: Vec<u8> = (0..6000u32).map(|i| (i * 7) as u8).collect();
    let blocks = image.chunks(4096).count();
    for (i, chunk) in image.chunks(4096).enumerate() {
        out(&mut host, 1, i as u16, chunk).expect("DNLOAD");
        assert_eq!(status(&mut host).state, DfuState::DnloadIdle);
    }
    out(&mut host, 1, blocks as u16, &[]).expect("zero-length DNLOAD");
    assert_eq!(status(&mut host).state, DfuState::Idle);
    assert_eq!(contents(&direct)[..6000], image[..]);
});
