//! SD cards over SPI: `open_sd_card` (embedded-sdmmc's `SdCard` behind `SdmmcBackend`) against
//! a byte-level simulated SDHC card (tests/support/sd_card.rs).

#[path = "support/sd_card.rs"]
mod sd_card;

use std::cell::Cell;
use std::rc::Rc;

use embedded_hal::spi::SpiDevice;
use lunbox_platform::coroutine::{self, Instant, Machine};
use lunbox_storage::{BlockDevice, IoOp, StorageError, open_sd_card};
use sd_card::{BLOCK, Command, Config, SimSdCard};

/// 8 MiB.
const CARD_BLOCKS: u64 = 16384;

/// What the image holds before the test writes: every byte depends on its block and offset.
fn background(lba: u64, i: usize) -> u8 {
    (lba.wrapping_mul(31) as u8) ^ (i as u8).wrapping_mul(7) ^ 0xC3
}

/// What the test writes: distinct from the background and from block to block.
fn pattern(lba: u64, i: usize) -> u8 {
    (lba.wrapping_mul(13) as u8) ^ (i as u8).wrapping_mul(29) ^ 0x5A ^ ((i >> 8) as u8)
}

fn fill(lba: u64, blocks: usize, f: fn(u64, usize) -> u8) -> Vec<u8> {
    let mut v = vec![0u8; blocks * BLOCK];
    for (b, chunk) in v.chunks_exact_mut(BLOCK).enumerate() {
        for (i, byte) in chunk.iter_mut().enumerate() {
            *byte = f(lba + b as u64, i);
        }
    }
    v
}

fn card(cfg: Config) -> SimSdCard {
    SimSdCard::with_config(fill(0, CARD_BLOCKS as usize, background), cfg)
}

/// A clock that only moves when the scheduler idles, jumping to the next timer: the card's
/// thousands of 10 µs retry delays cost no real time. (Only for tests where nothing else
/// runs: a coroutine that keeps yielding would stop this clock.)
#[derive(Clone, Default)]
struct VirtualClock {
    now: Rc<Cell<u64>>,
}

impl Machine for VirtualClock {
    fn now(&self) -> Instant {
        Instant::from_nanos(self.now.get())
    }

    fn idle(&self, deadline: Option<Instant>) {
        let deadline = deadline.expect("idle without a timer: deadlock in the test");
        self.now.set(self.now.get().max(deadline.as_nanos()));
    }
}

fn virtual_clock() -> VirtualClock {
    let clock = VirtualClock::default();
    coroutine::init(clock.clone());
    clock
}

fn cmds(log: &[Command], index: u8) -> Vec<u32> {
    log.iter()
        .filter(|c| !c.app && c.index == index)
        .map(|c| c.arg)
        .collect()
}

#[test]
fn simulator_crcs_and_csd_match_the_spec_and_a_real_card() {
    // CMD0 and CMD8(0x1AA) carry the well-known CRC bytes 0x95 and 0x87.
    assert_eq!((sd_card::crc7(&[0x40, 0, 0, 0, 0]) << 1) | 1, 0x95);
    assert_eq!((sd_card::crc7(&[0x48, 0, 0, 0x01, 0xAA]) << 1) | 1, 0x87);
    // A CSD read from a real 4 GB SDHC card (embedded-sdmmc's own test vector), and the CRC16
    // of another real CSD.
    let real = [
        0x40, 0x0E, 0x00, 0x32, 0x5B, 0x59, 0x00, 0x00, 0x1D, 0x69, 0x7F, 0x80, 0x0A, 0x40, 0x00,
        0x8B,
    ];
    assert_eq!(sd_card::csd_v2((0x1D69 + 1) * 1024), real);
    let other = [
        0x00, 0x26, 0x00, 0x32, 0x5F, 0x5A, 0x83, 0xAE, 0xFE, 0xFB, 0xCF, 0xFF, 0x92, 0x80, 0x40,
        0xDF,
    ];
    assert_eq!(sd_card::crc16(&other), 0x9FC5);
}

/// Clock a command frame to `sim` (with `crc` as its last byte, or the right one) and return
/// the next 8 bytes it sends.
fn raw_command(sim: &mut SimSdCard, index: u8, arg: u32, crc: Option<u8>) -> [u8; 8] {
    let a = arg.to_be_bytes();
    let mut frame = [0x40 | index, a[0], a[1], a[2], a[3], 0];
    frame[5] = crc.unwrap_or((sd_card::crc7(&frame[..5]) << 1) | 1);
    sim.write(&frame).unwrap();
    let mut answer = [0xFF; 8];
    sim.transfer_in_place(&mut answer).unwrap();
    answer
}

#[test]
fn simulator_answers_after_ncr_and_flags_unknown_commands_and_bad_crcs() {
    let mut sim = card(Config::default());
    // Silent (SD mode) until CMD0; then R1 "idle" after NCR = 2 bytes of 0xFF.
    assert_eq!(raw_command(&mut sim, 8, 0x1AA, None), [0xFF; 8]);
    assert_eq!(
        raw_command(&mut sim, 0, 0, None)[..4],
        [0xFF, 0xFF, 0x01, 0xFF]
    );
    // R7 echoes the voltage and the check pattern.
    assert_eq!(
        raw_command(&mut sim, 8, 0x1AA, None)[..7],
        [0xFF, 0xFF, 0x01, 0x00, 0x00, 0x01, 0xAA]
    );
    // CMD1 and CMD42 are unknown to this card: idle + illegal command.
    assert_eq!(raw_command(&mut sim, 1, 0, None)[2], 0x05);
    assert_eq!(raw_command(&mut sim, 42, 0, None)[2], 0x05);
    // Data commands before initialisation are illegal too.
    assert_eq!(raw_command(&mut sim, 17, 0, None)[2], 0x05);
    assert!(sim.violations().is_empty());
    // CMD8's CRC is checked even with CRC off: idle + CRC error.
    assert_eq!(raw_command(&mut sim, 8, 0x1AA, Some(0x01))[2], 0x09);
    assert_eq!(sim.violations().len(), 1);
    // With CRC off, other commands' CRCs are not checked; with CRC on they are.
    assert_eq!(raw_command(&mut sim, 58, 0, Some(0x01))[2], 0x01);
    assert_eq!(raw_command(&mut sim, 59, 1, None)[2], 0x01);
    assert_eq!(raw_command(&mut sim, 58, 0, Some(0x01))[2], 0x09);
    // Every frame after power-up was decoded and counted, the ignored first CMD8 not.
    assert_eq!(sim.commands_seen(), 9);
}

#[test]
fn eight_mib_card_has_16384_blocks() {
    let sim = card(Config::default());
    let dev = open_sd_card(sim.clone()).unwrap();
    assert_eq!(dev.num_blocks(), CARD_BLOCKS);
    assert_eq!(dev.block_size(), 512);
    assert!(!dev.is_read_only());

    // The SDHC initialisation embedded-sdmmc 0.10 performs, with CRC checking turned on.
    let log = sim.commands();
    let seq: Vec<(bool, u8)> = log.iter().map(|c| (c.app, c.index)).collect();
    let polls = Config::default().acmd41_busy_polls as usize + 1;
    let mut expected = vec![(false, 0), (false, 59), (false, 8)];
    for _ in 0..polls {
        expected.extend([(false, 55), (true, 41)]);
    }
    expected.extend([(false, 58), (false, 9)]);
    assert_eq!(seq, expected);
    assert_eq!(cmds(&log, 59), [1]);
    assert_eq!(cmds(&log, 8), [0x1AA]);
    let acmd41_args: Vec<u32> = log.iter().filter(|c| c.app).map(|c| c.arg).collect();
    assert!(acmd41_args.iter().all(|&a| a == 0x4000_0000), "HCS set");
    assert!(sim.crc_on());
    assert_eq!(sim.violations(), Vec::<String>::new());
}

#[test]
fn writes_land_at_the_right_offsets_and_read_back() {
    let sim = card(Config::default());
    let mut dev = open_sd_card(sim.clone()).unwrap();
    let mut model = sim.image();
    let ranges: [(u64, usize); 5] = [
        (0, 1),
        (100, 8),
        (200, 2),
        (1000, 33), // chunks of 8, 8, 8, 8 and 1 in SdmmcBackend
        (CARD_BLOCKS - 3, 3),
    ];

    for &(lba, n) in &ranges {
        let before = sim.commands_seen();
        let data = fill(lba, n, pattern);
        dev.write(lba, &data).unwrap();
        let at = lba as usize * BLOCK;
        model[at..at + data.len()].copy_from_slice(&data);
        // Landed in the card at the right place.
        assert_eq!(sim.image_blocks(lba, n), data, "image at {lba}+{n}");

        // One CMD24 per 1-block chunk, ACMD23 + CMD25 per 2..8-block chunk.
        let log = &sim.commands()[before..];
        let mut expected = Vec::new();
        for chunk_at in (lba..lba + n as u64).step_by(8) {
            let len = (lba + n as u64 - chunk_at).min(8);
            if len == 1 {
                expected.push((24, chunk_at as u32));
            } else {
                expected.push((25, chunk_at as u32));
            }
        }
        let got: Vec<(u8, u32)> = log
            .iter()
            .filter(|c| c.moves_data())
            .map(|c| (c.index, c.arg))
            .collect();
        assert_eq!(got, expected, "write commands for {lba}+{n}");
        let pre_erase: Vec<u32> = log
            .iter()
            .filter(|c| c.app && c.index == 23)
            .map(|c| c.arg)
            .collect();
        let multi_lens: Vec<u32> = (lba..lba + n as u64)
            .step_by(8)
            .map(|c| (lba + n as u64 - c).min(8) as u32)
            .filter(|&l| l > 1)
            .collect();
        assert_eq!(pre_erase, multi_lens, "ACMD23 counts for {lba}+{n}");
    }

    // Read back through the BlockDevice trait, including each neighbour on both sides.
    for &(lba, n) in &ranges {
        let mut buf = vec![0u8; n * BLOCK];
        dev.read(lba, &mut buf).unwrap();
        assert_eq!(buf, fill(lba, n, pattern), "read back {lba}+{n}");

        let first = lba.saturating_sub(1);
        let end = (lba + n as u64 + 1).min(CARD_BLOCKS);
        let mut around = vec![0u8; (end - first) as usize * BLOCK];
        dev.read(first, &mut around).unwrap();
        let at = first as usize * BLOCK;
        assert_eq!(around, model[at..at + around.len()], "{first}..{end}");
        if lba > 0 {
            assert_eq!(
                around[..BLOCK],
                fill(lba - 1, 1, background),
                "block before {lba}"
            );
        }
        if lba + (n as u64) < CARD_BLOCKS {
            assert_eq!(
                around[around.len() - BLOCK..],
                fill(lba + n as u64, 1, background),
                "block after {lba}+{n}"
            );
        }
    }

    // A read spanning written and untouched blocks, with multi-block chunks crossing both.
    let mut span = vec![0u8; 45 * BLOCK];
    dev.read(95, &mut span).unwrap();
    assert_eq!(span, model[95 * BLOCK..140 * BLOCK]);

    // Nothing else in the image changed.
    assert!(sim.image() == model, "image differs from the expected one");
    assert!(!sim.in_multi_block_read());
    assert_eq!(sim.violations(), Vec::<String>::new());
}

#[test]
fn out_of_range_is_refused_before_the_card_sees_it() {
    let sim = card(Config::default());
    let mut dev = open_sd_card(sim.clone()).unwrap();
    let before = sim.commands_seen();
    let clocks = sim.clocks();

    let mut one = vec![0u8; BLOCK];
    let mut eight = vec![0u8; 8 * BLOCK];
    assert_eq!(
        dev.read(CARD_BLOCKS, &mut one),
        Err(StorageError::OutOfRange {
            lba: CARD_BLOCKS,
            count: 1,
            capacity: CARD_BLOCKS
        })
    );
    assert_eq!(
        dev.read(CARD_BLOCKS - 4, &mut eight),
        Err(StorageError::OutOfRange {
            lba: CARD_BLOCKS - 4,
            count: 8,
            capacity: CARD_BLOCKS
        })
    );
    assert!(matches!(
        dev.read(u64::MAX, &mut one),
        Err(StorageError::OutOfRange { .. })
    ));
    assert_eq!(
        dev.write(CARD_BLOCKS, &one),
        Err(StorageError::OutOfRange {
            lba: CARD_BLOCKS,
            count: 1,
            capacity: CARD_BLOCKS
        })
    );
    assert_eq!(
        dev.write(CARD_BLOCKS - 7, &eight),
        Err(StorageError::OutOfRange {
            lba: CARD_BLOCKS - 7,
            count: 8,
            capacity: CARD_BLOCKS
        })
    );
    assert!(matches!(
        dev.write(u64::MAX - 1, &eight),
        Err(StorageError::OutOfRange { .. })
    ));

    assert_eq!(sim.commands_seen(), before, "the card saw a command");
    assert!(!sim.commands()[before..].iter().any(Command::moves_data));
    assert_eq!(sim.clocks(), clocks, "the bus was clocked");
    // The last blocks are still reachable.
    dev.read(CARD_BLOCKS - 8, &mut eight).unwrap();
    assert_eq!(eight, fill(CARD_BLOCKS - 8, 8, background));
}

#[test]
fn no_card_is_no_media() {
    let clock = virtual_clock();
    let sim = SimSdCard::no_card();
    assert!(matches!(
        open_sd_card(sim.clone()),
        Err(StorageError::NoMedia)
    ));
    assert_eq!(sim.commands_seen(), 0);
    // embedded-sdmmc retried CMD0 for a while (its delays ran on the coroutine clock).
    assert!(
        clock.now.get() > 1_000_000_000,
        "gave up after {} ns",
        clock.now.get()
    );
}

#[test]
fn injected_read_failure_reports_the_failing_chunk() {
    const BAD: u64 = 105;
    let sim = card(Config::default());
    let mut dev = open_sd_card(sim.clone()).unwrap();
    sim.fail_reads_of(BAD);

    // A single block (CMD17): the error is at that block.
    let mut one = vec![0u8; BLOCK];
    match dev.read(BAD, &mut one) {
        Err(StorageError::Io { lba, op, .. }) => assert_eq!((lba, op), (BAD, IoOp::Read)),
        other => panic!("expected an I/O error, got {other:?}"),
    }
    // After a failed CMD17 the card is back in the transfer state: other blocks read fine.
    dev.read(BAD - 1, &mut one).unwrap();
    assert_eq!(one, fill(BAD - 1, 1, background));
    assert_eq!(sim.violations(), Vec::<String>::new());

    // 24 blocks from 90: SdmmcBackend reads chunks 90..98 (fine), 98..106 (fails at 105),
    // then looks for the failing block one CMD17 at a time after asking embedded-sdmmc to
    // initialise the card afresh. This simulated card stays stuck in the unfinished CMD18
    // (embedded-sdmmc sends no CMD12 after an error token), so the search fails at once and
    // the error names the first block of the failing chunk: never a block after the real one.
    let mut buf = vec![0u8; 24 * BLOCK];
    match dev.read(90, &mut buf) {
        Err(StorageError::Io { lba, op, .. }) => {
            assert_eq!(op, IoOp::Read);
            assert!((98..=BAD).contains(&lba), "{lba}");
        }
        other => panic!("expected an I/O error, got {other:?}"),
    }
    assert_eq!(buf[..8 * BLOCK], fill(90, 8, background)[..], "first chunk");
    let reads: Vec<(u8, u32)> = sim
        .commands()
        .iter()
        .filter(|c| c.moves_data())
        .map(|c| (c.index, c.arg))
        .collect();
    let first = reads
        .iter()
        .position(|&r| r == (18, 90))
        .expect("the first chunk read");
    assert_eq!(reads[first..first + 3], [(18, 90), (18, 98), (17, 98)]);
}

#[test]
fn injected_write_failure_is_a_write_error_and_keeps_the_old_data() {
    const BAD: u64 = 300;
    let sim = card(Config::default());
    let mut dev = open_sd_card(sim.clone()).unwrap();
    sim.fail_writes_of(BAD);
    let data = fill(BAD, 1, pattern);
    match dev.write(BAD, &data) {
        Err(StorageError::Io { lba, op, .. }) => assert_eq!((lba, op), (BAD, IoOp::Write)),
        other => panic!("expected an I/O error, got {other:?}"),
    }
    assert_eq!(sim.image_blocks(BAD, 1), fill(BAD, 1, background));
    // The card carries on after a rejected single-block write.
    dev.write(BAD + 1, &fill(BAD + 1, 1, pattern)).unwrap();
    assert_eq!(sim.image_blocks(BAD + 1, 1), fill(BAD + 1, 1, pattern));
    assert_eq!(sim.violations(), Vec::<String>::new());
}

#[test]
fn card_delays_let_other_coroutines_run() {
    // The card stays busy for many ACMD41 polls; embedded-sdmmc delays between them.
    let sim = card(Config {
        acmd41_busy_polls: 20,
        ..Config::default()
    });
    let count = Rc::new(Cell::new(0u64));
    let c = count.clone();
    let counter = coroutine::spawn("counter", move || {
        while !coroutine::should_stop() {
            c.set(c.get() + 1);
            coroutine::yield_now();
        }
        c.get()
    });
    assert_eq!(
        count.get(),
        0,
        "the counter ran before the main context gave way"
    );

    let dev = open_sd_card(sim.clone()).unwrap();
    let during = count.get();
    assert_eq!(dev.num_blocks(), CARD_BLOCKS);
    let polls = sim
        .commands()
        .iter()
        .filter(|c| c.app && c.index == 41)
        .count();
    assert_eq!(polls, 21);
    assert!(
        during > 0,
        "the counter never ran while the card initialised"
    );

    counter.request_stop();
    let total = counter.join().unwrap();
    assert!(total >= during);
}

#[test]
fn card_wanting_power_up_clocks_opens_after_a_cmd0_timeout() {
    // A card that ignores commands until it has had 74 clocks: embedded-sdmmc sends none
    // before its first CMD0 (and open_sd_card none either), so that CMD0 is lost and
    // open_sd_card only succeeds after a full CMD0 timeout and a retry.
    let clock = virtual_clock();
    let sim = card(Config {
        power_up_clocks: 74,
        ..Config::default()
    });
    let dev = open_sd_card(sim.clone()).unwrap();
    assert_eq!(dev.num_blocks(), CARD_BLOCKS);
    assert_eq!(sim.commands()[0].index, 0);
    // 10 000 retries of 10 µs were spent waiting for the lost CMD0's answer.
    assert!(clock.now.get() >= 100_000_000, "{} ns", clock.now.get());
    assert_eq!(sim.violations(), Vec::<String>::new());
}

/// embedded-sdmmc 0.10 polls for busy right after the stop token without skipping N_BR: with a
/// card that waits one byte before going busy, the next command would go out while the card
/// is busy. `SkipNbr` clocks that byte.
#[test]
fn command_after_a_multi_block_write_waits_for_a_card_with_one_byte_nbr() {
    let _clock = virtual_clock();
    let sim = card(Config {
        nbr: 1,
        busy: 16,
        ..Config::default()
    });
    let mut dev = open_sd_card(sim.clone()).unwrap();
    dev.write(400, &fill(400, 4, pattern)).unwrap();
    let mut one = vec![0u8; BLOCK];
    let read = dev.read(400, &mut one);
    assert_eq!(sim.violations(), Vec::<String>::new());
    read.unwrap();
    assert_eq!(one, fill(400, 1, pattern));
}
