//! Hostile input at small case counts, on stable: the properties of the `update/fuzz`
//! targets (`tests/hostile`), run on random inputs by proptest. Images: arbitrary bytes
//! through `Header::parse`, `verify` and the streamed check, and signed images with edits,
//! which verify only when unchanged; state records and state sectors through `decode`,
//! `status` and `boot`; downloads through the board's DFU target, which accepts exactly what
//! `verify` and its policy accept and, refusing, never leaves a test requested.

// The fake flash's power cuts are for the other tests.
#[allow(dead_code)]
mod common;
mod hostile;

use hostile::image::{Edit, SignedCase};
use hostile::sink::{Bytes, SinkCase, Start};
use lunbox_update::image::{Board, HEADER_LEN, Version};
use lunbox_update::{Phase, Record, State};
use proptest::collection::vec;
use proptest::prelude::*;

fn edit() -> impl Strategy<Value = Edit> {
    let at = any::<usize>();
    prop_oneof![
        (at, 1..=255u8).prop_map(|(at, mask)| Edit::Flip { at, mask }),
        (at, any::<u8>()).prop_map(|(at, byte)| Edit::Set { at, byte }),
        at.prop_map(Edit::Truncate),
        vec(any::<u8>(), 1..16).prop_map(Edit::Append),
        (at, vec(any::<u8>(), 1..16)).prop_map(|(at, bytes)| Edit::Insert { at, bytes }),
        (at, 1..16usize).prop_map(|(at, len)| Edit::Remove { at, len }),
    ]
}

fn signed_case(max_len: usize) -> impl Strategy<Value = SignedCase> {
    (
        vec(any::<u8>(), 0..=max_len),
        (0..3u32, any::<u32>(), any::<u32>()),
        any::<bool>(),
        prop_oneof![
            Just("teensy41".to_string()),
            Just("sandbox-x86_64".to_string()),
            "[a-z0-9._-]{1,31}",
        ],
        vec(edit(), 0..4),
    )
        .prop_map(
            |(payload, (major, minor, patch), downgrade, board, edits)| SignedCase {
                payload,
                version: Version {
                    major,
                    minor,
                    patch,
                },
                downgrade,
                board: Board::new(&board).expect("a board id"),
                edits,
            },
        )
}

fn record() -> impl Strategy<Value = Record> {
    let phase = prop_oneof![
        Just(Phase::Start),
        Just(Phase::Scratch),
        Just(Phase::Primary)
    ];
    let state = prop_oneof![
        Just(State::Confirmed),
        Just(State::TestPending),
        (any::<u32>(), phase.clone()).prop_map(|(index, phase)| State::Swapping { index, phase }),
        Just(State::OnTrial),
        (any::<u32>(), phase).prop_map(|(index, phase)| State::Reverting { index, phase }),
    ];
    (any::<u32>(), state, any::<u32>(), any::<u32>()).prop_map(|(sequence, state, p, s)| Record {
        sequence,
        state,
        primary_sectors: p,
        secondary_sectors: s,
    })
}

fn sink_case() -> impl Strategy<Value = SinkCase> {
    let start = prop_oneof![
        Just(Start::Blank),
        Just(Start::Confirmed),
        Just(Start::Pending),
        Just(Start::OnTrial)
    ];
    let bytes = prop_oneof![
        4 => signed_case(7300).prop_map(Bytes::Signed),
        1 => vec(any::<u8>(), 0..600).prop_map(Bytes::Raw),
    ];
    (
        prop_oneof![Just(1usize), Just(4), Just(256)],
        start,
        any::<bool>(),
        vec(0..=4096usize, 1..4),
        proptest::option::of(0..8usize),
        bytes,
    )
        .prop_map(
            |(write_size, start, allow_downgrade, chunks, abandoned, bytes)| SinkCase {
                write_size,
                start,
                allow_downgrade,
                chunks,
                abandoned,
                bytes,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn image_target(data in vec(any::<u8>(), 0..700)) {
        hostile::image::fuzz(&data);
    }

    #[test]
    fn signed_images_verify_only_unchanged(
        case in signed_case(3000),
        pieces in vec(0..600usize, 1..4),
    ) {
        hostile::image::check_signed(&case, &pieces);
    }

    #[test]
    fn bytes_behind_a_valid_header(
        case in signed_case(300),
        tail in vec(any::<u8>(), 0..400),
        pieces in vec(0..100usize, 1..4),
    ) {
        let (signed, _) = case.build();
        let mut data = signed[..HEADER_LEN].to_vec();
        data.extend_from_slice(&tail);
        let _ = hostile::image::check_raw(&data, &pieces);
    }

    #[test]
    fn state_target(data in vec(any::<u8>(), 0..400)) {
        hostile::state::fuzz(&data);
    }

    #[test]
    fn records_round_trip_and_catch_flipped_bits(r in record()) {
        hostile::state::check_record(&r);
    }

    #[test]
    fn sink_target(data in vec(any::<u8>(), 0..300)) {
        hostile::sink::fuzz(&data);
    }

    #[test]
    fn downloads(case in sink_case()) {
        hostile::sink::check(&case);
    }
}
