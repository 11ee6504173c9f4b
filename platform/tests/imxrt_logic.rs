//! Host tests of the Teensy 4.1 board's register-free logic (`platform/src/imxrt/logic.rs`):
//! the board module itself only builds for the MCU, so the file is included here as it is.

#[allow(unreachable_pub, dead_code)]
#[path = "../src/imxrt/logic.rs"]
mod logic;

use logic::*;

#[test]
fn ticks_extend_across_wraps() {
    assert_eq!(extend_ticks(0, 5, false, 5), 5);
    assert_eq!(
        extend_ticks(3, 0xFFFF_FFF0, false, 0),
        3 << 32 | 0xFFFF_FFF0
    );
    // The counter wrapped, the interrupt has not counted it: the count read again is after
    // the wrap, whatever the first read saw.
    assert_eq!(extend_ticks(3, 0xFFFF_FFFF, true, 2), 4 << 32 | 2);
    assert_eq!(extend_ticks(3, 1, true, 2), 4 << 32 | 2);
    // u32::MAX epochs still fit.
    assert_eq!(
        extend_ticks(u32::MAX, 7, false, 7),
        u64::from(u32::MAX) << 32 | 7
    );
}

#[test]
fn ticks_until_never_wakes_early() {
    assert_eq!(ticks_until(10, 10_000), None);
    assert_eq!(ticks_until(10, 9_000), None);
    assert_eq!(ticks_until(10, 10_001), Some(1));
    assert_eq!(ticks_until(10, 11_000), Some(1));
    assert_eq!(ticks_until(10, 11_001), Some(2));
    assert_eq!(ticks_until(0, u64::MAX), Some(u64::MAX.div_ceil(1_000)));
}

#[test]
fn compare_values_wrap_and_keep_a_margin() {
    assert_eq!(compare_for(100, 50, 2), Some(150));
    assert_eq!(compare_for(u32::MAX - 9, 20, 2), Some(10));
    assert_eq!(compare_for(100, 1, 2), None, "too close to set safely");
    assert_eq!(
        compare_for(100, u64::from(u32::MAX), 2),
        None,
        "beyond the next wrap"
    );
    assert_eq!(compare_for(100, 1 << 40, 2), None);
}

#[test]
fn reached_handles_the_wrap() {
    assert!(!reached(100, 150, 120));
    assert!(reached(100, 150, 150));
    assert!(reached(100, 150, 151));
    let start = u32::MAX - 5;
    let target = start.wrapping_add(10);
    assert!(!reached(start, target, u32::MAX));
    assert!(!reached(start, target, 3));
    assert!(reached(start, target, 4));
    assert!(reached(start, target, 9));
}

fn command(index: u8) -> [u8; 6] {
    [0x40 | index, 0, 0, 0, 0, 0x01]
}

#[test]
fn sd_spi_clock_follows_the_commands() {
    // CMD0 as embedded-sdmmc sends it (with its CRC).
    assert_eq!(
        sd_spi_speed(&[0x40, 0, 0, 0, 0, 0x95]),
        Some(SpiSpeed::Identification)
    );
    for index in [1, 8, 41, 55, 58, 59] {
        assert_eq!(
            sd_spi_speed(&command(index)),
            Some(SpiSpeed::Identification),
            "CMD{index}"
        );
    }
    for index in [9, 12, 13, 16, 17, 18, 24, 25] {
        assert_eq!(
            sd_spi_speed(&command(index)),
            Some(SpiSpeed::Transfer),
            "CMD{index}"
        );
    }
    // Not commands: data, filler bytes, tokens, other lengths, no end bit.
    assert_eq!(sd_spi_speed(&[0xFF; 6]), None);
    assert_eq!(sd_spi_speed(&[0xFE]), None);
    assert_eq!(sd_spi_speed(&[0x51, 0, 0, 0, 0]), None);
    assert_eq!(sd_spi_speed(&[0x51, 0, 0, 0, 0, 0x00]), None);
    assert_eq!(sd_spi_speed(&[0x00, 0, 0, 0, 0, 0x01]), None);
    assert_eq!(sd_spi_speed(&[0xFF; 512]), None);
}

/// A CSD as the uSDHC's response registers hold it: bits 127..8, shifted down by 8.
fn as_response(csd: u128) -> [u32; 4] {
    let raw = csd >> 8;
    [
        raw as u32,
        (raw >> 32) as u32,
        (raw >> 64) as u32,
        (raw >> 96) as u32,
    ]
}

fn set(reg: &mut u128, hi: u32, lo: u32, value: u128) {
    let mask = ((1u128 << (hi - lo + 1)) - 1) << lo;
    *reg = (*reg & !mask) | (value << lo & mask);
}

#[test]
fn r2_response_round_trips_without_the_crc() {
    let csd: u128 = 0x400E_0032_5B59_0000_EDC8_7F80_0A40_4000 & !0xFF;
    assert_eq!(r2_register(as_response(csd)), csd);
    assert_eq!(bits(csd, 127, 126), 1);
}

#[test]
fn csd_version_2_capacity() {
    // A real SDHC card's CSD (32 GB class): C_SIZE = 0xEDC8.
    let csd: u128 = 0x400E_0032_5B59_0000_EDC8_7F80_0A40_4000;
    assert_eq!(bits(csd, 69, 48), 0xEDC8);
    assert_eq!(csd_blocks(csd), Some((0xEDC8 + 1) * 1024));
    let mut max = 0u128;
    set(&mut max, 127, 126, 1);
    set(&mut max, 69, 48, (1 << 22) - 1);
    assert_eq!(csd_blocks(max), Some((1 << 22) * 1024), "2 TiB");
}

#[test]
fn csd_version_1_capacity() {
    let mut csd = 0u128;
    // 2 GiB: READ_BL_LEN 10 (1024-byte blocks), C_SIZE 4095, C_SIZE_MULT 7.
    set(&mut csd, 83, 80, 10);
    set(&mut csd, 73, 62, 4095);
    set(&mut csd, 49, 47, 7);
    assert_eq!(csd_blocks(csd), Some(4 * 1024 * 1024));
    // 512-byte blocks: (C_SIZE + 1) * 2^(C_SIZE_MULT + 2) blocks.
    set(&mut csd, 83, 80, 9);
    set(&mut csd, 73, 62, 0xF0F);
    set(&mut csd, 49, 47, 5);
    assert_eq!(csd_blocks(csd), Some(0xF10 * 128));
    // A block length the spec does not allow.
    set(&mut csd, 83, 80, 12);
    assert_eq!(csd_blocks(csd), None);
    // An unknown structure version.
    let mut v3 = 0u128;
    set(&mut v3, 127, 126, 2);
    assert_eq!(csd_blocks(v3), None);
}

#[test]
fn usdhc_dividers_never_exceed_the_limit() {
    const BASE: u32 = 198_000_000;
    assert_eq!(usdhc_dividers(BASE, 400_000), Some((0x10, 15, 386_718)));
    assert_eq!(usdhc_dividers(BASE, 25_000_000), Some((0, 7, 24_750_000)));
    assert_eq!(usdhc_dividers(BASE, 50_000_000), Some((0, 3, 49_500_000)));
    assert_eq!(usdhc_dividers(BASE, 200_000_000), Some((0, 0, BASE)));
    assert_eq!(usdhc_dividers(BASE, 0), None);
    assert_eq!(usdhc_dividers(BASE, 1_000), None, "below base / 4096");
    for max in (100_000..60_000_000).step_by(99_991) {
        if let Some((sdclkfs, dvs, hz)) = usdhc_dividers(BASE, max) {
            assert!(hz <= max);
            let prescaler = if sdclkfs == 0 { 1 } else { sdclkfs * 2 };
            assert!(prescaler.is_power_of_two() && prescaler <= 256);
            assert!(dvs <= 15);
            assert_eq!(hz, BASE / (prescaler * (dvs + 1)));
        }
    }
}

#[test]
fn led_blinks_only_after_recent_accesses() {
    assert!(!led_lit(1_000, None));
    // 40 ms on, 40 ms off, by the clock, while the last access is under 100 ms old.
    assert!(led_lit(960, Some(950)));
    assert!(!led_lit(1_000, Some(950)));
    assert!(led_lit(1_040, Some(950)));
    assert!(
        !led_lit(1_050, Some(950)),
        "100 ms after the last access: off"
    );
    assert!(!led_lit(1_120, Some(950)));
}

#[test]
fn the_usb_endpoints_are_configured_on_each_entry_to_configured() {
    let mut c = ConfigureOnEntry::default();
    assert!(!c.is_configured());
    // Default, Addressed: nothing to do.
    assert!(!c.update(false));
    assert!(!c.update(false));
    // SET_CONFIGURATION: configure once, not on every poll after.
    assert!(c.update(true));
    assert!(c.is_configured());
    assert!(!c.update(true));
    assert!(!c.update(true));
    // A bus reset drops to Default; the next SET_CONFIGURATION configures again.
    assert!(!c.update(false));
    assert!(!c.is_configured());
    assert!(c.update(true));
}

#[test]
fn the_byte_ring_keeps_order_holds_n_minus_one_and_wraps() {
    let r = SpscRing::<8>::new();
    assert!(r.is_empty());
    assert_eq!(r.pop(), None);
    for round in 0..5u8 {
        // Full at 7 bytes: the eighth is refused (a UART overrun drops it) and nothing is
        // overwritten.
        for i in 0..7 {
            assert!(r.push(round * 10 + i), "round {round}: byte {i}");
        }
        assert!(!r.push(0xEE));
        assert!(!r.is_empty());
        for i in 0..7 {
            assert_eq!(r.pop(), Some(round * 10 + i), "round {round}");
        }
        assert_eq!(r.pop(), None);
        assert!(r.is_empty());
        // Start the next round at another index so the indices wrap.
        assert!(r.push(1));
        assert_eq!(r.pop(), Some(1));
    }
}

#[test]
fn the_byte_ring_moves_every_byte_once_between_two_threads() {
    // One producer (the interrupt handler's side) and one consumer (thread mode) running at
    // the same time: every byte arrives, in order, none twice.
    static RING: SpscRing<16> = SpscRing::new();
    const COUNT: u32 = 200_000;
    let producer = std::thread::spawn(|| {
        for i in 0..COUNT {
            while !RING.push(i as u8) {
                std::hint::spin_loop();
            }
        }
    });
    let mut next = 0u32;
    while next < COUNT {
        if let Some(b) = RING.pop() {
            assert_eq!(b, next as u8, "byte {next}");
            next += 1;
        } else {
            std::hint::spin_loop();
        }
    }
    producer.join().unwrap();
    assert!(RING.is_empty());
}
