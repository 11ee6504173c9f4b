//! Hostile state records: `Record::decode` of arbitrary bytes, and records through
//! `encode`, `decode` and bit flips. The state target also runs [`log`](super::log).

use lunbox_update::state::{RECORD_LEN, crc32};
use lunbox_update::{DecodeError, Phase, Record, State};

use super::input::Input;
use super::log;

/// The state target: the input as a record, a record read from it, and state sectors read
/// from it.
pub(crate) fn fuzz(data: &[u8]) {
    check_decode(data);
    let mut input = Input::new(data);
    let base = input.u32();
    check_record(&read_record(&mut input, base));
    log::check(&log::LogCase::read(&mut input));
}

/// A record with fields from the input: sequence `base` plus a byte; mostly sector counts
/// and a swap index that fit `super::L` (8-sector slots), sometimes any.
pub(crate) fn read_record(input: &mut Input<'_>, base: u32) -> Record {
    let kind = input.byte();
    let sequence = base.wrapping_add(u32::from(input.byte()));
    let phase = [Phase::Start, Phase::Scratch, Phase::Primary][usize::from(input.byte() % 3)];
    let (primary_sectors, secondary_sectors, index) = if kind & 0x80 == 0 {
        let p = u32::from(input.byte() % 8) + 1;
        let s = u32::from(input.byte() % 8) + 1;
        (p, s, u32::from(input.byte()) % p.max(s))
    } else {
        (input.u32(), input.u32(), input.u32())
    };
    let state = match kind % 5 {
        0 => State::Confirmed,
        1 => State::TestPending,
        2 => State::Swapping { index, phase },
        3 => State::OnTrial,
        _ => State::Reverting { index, phase },
    };
    Record {
        sequence,
        state,
        primary_sectors,
        secondary_sectors,
    }
}

/// Any bytes: a record decodes from the first [`RECORD_LEN`] bytes only, and a decoded
/// record encodes back to exactly them; each error is what the bytes show.
pub(crate) fn check_decode(data: &[u8]) {
    let decoded = Record::decode(data);
    let Some(b) = data.get(..RECORD_LEN) else {
        assert_eq!(decoded, Err(DecodeError::Short));
        return;
    };
    assert_eq!(Record::decode(b), decoded, "bytes after the record count");
    match decoded {
        Ok(r) => {
            assert_eq!(r.encode()[..], *b);
            assert_eq!(Record::decode(&r.encode()), Ok(r));
        }
        Err(DecodeError::Short) => panic!("{} bytes are short", data.len()),
        Err(DecodeError::Blank) => assert!(b.iter().all(|&x| x == 0xff)),
        Err(DecodeError::Magic) => assert_ne!(b[..4], *b"LBXU"),
        Err(DecodeError::Version(v)) => assert_eq!(v.to_le_bytes(), b[4..6]),
        Err(DecodeError::Crc { stored, computed }) => {
            assert_eq!(stored.to_le_bytes(), b[28..]);
            assert_eq!(computed, crc32(&b[..28]));
            assert_ne!(stored, computed);
        }
        Err(DecodeError::Field) => assert_eq!(crc32(&b[..28]).to_le_bytes(), b[28..]),
    }
}

/// Any record decodes from its encoding to itself, and no single flipped bit of the
/// encoding decodes.
pub(crate) fn check_record(r: &Record) {
    let b = r.encode();
    assert_eq!(Record::decode(&b), Ok(*r));
    check_decode(&b);
    for bit in 0..RECORD_LEN * 8 {
        let mut c = b;
        c[bit / 8] ^= 1 << (bit % 8);
        assert!(Record::decode(&c).is_err(), "bit {bit} of {r:?}");
        check_decode(&c);
    }
}
