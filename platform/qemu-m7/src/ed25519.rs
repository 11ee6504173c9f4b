//! Firmware-image verification on the Cortex-M7: `ed25519-dalek` 2 and `sha2` 0.10 with
//! exactly the features `app/Cargo.toml` uses (no std, no precomputed tables), checked
//! against RFC 8032's test vectors and FIPS 180-2's SHA-256 examples, and the stack each
//! needs, measured on a coroutine (the runtime paints coroutine stacks and reports their
//! high-water mark).
//!
//! Built with the crate's `ed25519` feature (on by default); `--no-default-features` leaves
//! it out, to measure its flash cost.

use alloc::format;
use alloc::string::String;
use core::hint::black_box;

use ed25519_dalek::{Signature, VerifyingKey};
use lunbox_platform::coroutine::{self, Builder};
use sha2::{Digest, Sha256};

/// Stack of the coroutines that verify: generous, so that the high-water mark is what the
/// code needs and not a limit it ran into.
const STACK: usize = 32 * 1024;

/// An RFC 8032 section 7.1 test vector (Ed25519, PureEdDSA).
struct Vector {
    name: &'static str,
    public: [u8; 32],
    message: &'static [u8],
    signature: [u8; 64],
}

/// TEST 2 and TEST 3 of RFC 8032 section 7.1.
const VECTORS: [Vector; 2] = [
    Vector {
        name: "RFC 8032 TEST 2",
        public: [
            0x3d, 0x40, 0x17, 0xc3, 0xe8, 0x43, 0x89, 0x5a, 0x92, 0xb7, 0x0a, 0xa7, 0x4d, 0x1b,
            0x7e, 0xbc, 0x9c, 0x98, 0x2c, 0xcf, 0x2e, 0xc4, 0x96, 0x8c, 0xc0, 0xcd, 0x55, 0xf1,
            0x2a, 0xf4, 0x66, 0x0c,
        ],
        message: &[0x72],
        signature: [
            0x92, 0xa0, 0x09, 0xa9, 0xf0, 0xd4, 0xca, 0xb8, 0x72, 0x0e, 0x82, 0x0b, 0x5f, 0x64,
            0x25, 0x40, 0xa2, 0xb2, 0x7b, 0x54, 0x16, 0x50, 0x3f, 0x8f, 0xb3, 0x76, 0x22, 0x23,
            0xeb, 0xdb, 0x69, 0xda, 0x08, 0x5a, 0xc1, 0xe4, 0x3e, 0x15, 0x99, 0x6e, 0x45, 0x8f,
            0x36, 0x13, 0xd0, 0xf1, 0x1d, 0x8c, 0x38, 0x7b, 0x2e, 0xae, 0xb4, 0x30, 0x2a, 0xee,
            0xb0, 0x0d, 0x29, 0x16, 0x12, 0xbb, 0x0c, 0x00,
        ],
    },
    Vector {
        name: "RFC 8032 TEST 3",
        public: [
            0xfc, 0x51, 0xcd, 0x8e, 0x62, 0x18, 0xa1, 0xa3, 0x8d, 0xa4, 0x7e, 0xd0, 0x02, 0x30,
            0xf0, 0x58, 0x08, 0x16, 0xed, 0x13, 0xba, 0x33, 0x03, 0xac, 0x5d, 0xeb, 0x91, 0x15,
            0x48, 0x90, 0x80, 0x25,
        ],
        message: &[0xaf, 0x82],
        signature: [
            0x62, 0x91, 0xd6, 0x57, 0xde, 0xec, 0x24, 0x02, 0x48, 0x27, 0xe6, 0x9c, 0x3a, 0xbe,
            0x01, 0xa3, 0x0c, 0xe5, 0x48, 0xa2, 0x84, 0x74, 0x3a, 0x44, 0x5e, 0x36, 0x80, 0xd7,
            0xdb, 0x5a, 0xc3, 0xac, 0x18, 0xff, 0x9b, 0x53, 0x8d, 0x16, 0xf2, 0x90, 0xae, 0x67,
            0xf7, 0x60, 0x98, 0x4d, 0xc6, 0x59, 0x4a, 0x7c, 0x15, 0xe9, 0x71, 0x6e, 0xd2, 0x8d,
            0xc0, 0x27, 0xbe, 0xce, 0xea, 0x1e, 0xc4, 0x0a,
        ],
    },
];

/// Signature bits flipped one at a time: in R (bytes 0..32) and in S (bytes 32..64), as
/// (byte, bit).
const SIGNATURE_FLIPS: [(usize, u8); 4] = [(0, 0), (31, 7), (32, 0), (63, 4)];

/// FIPS 180-2 appendix B.1 and B.2: (message, SHA-256).
const SHA256_VECTORS: [(&[u8], [u8; 32]); 2] = [
    (
        b"abc",
        [
            0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40, 0xde, 0x5d, 0xae,
            0x22, 0x23, 0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17, 0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61,
            0xf2, 0x00, 0x15, 0xad,
        ],
    ),
    (
        b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
        [
            0x24, 0x8d, 0x6a, 0x61, 0xd2, 0x06, 0x38, 0xb8, 0xe5, 0xc0, 0x26, 0x93, 0x0c, 0x3e,
            0x60, 0x39, 0xa3, 0x3c, 0xe4, 0x59, 0x64, 0xff, 0x21, 0x67, 0xf6, 0xec, 0xed, 0xd4,
            0x19, 0xdb, 0x06, 0xc1,
        ],
    ),
];

/// What `app/src/update/image.rs` does with a signature: parse the key, then strict
/// verification. `black_box` keeps the compiler from folding the constant inputs.
#[inline(never)]
fn verifies(public: &[u8; 32], message: &[u8], signature: &[u8; 64]) -> bool {
    let (public, message, signature) = black_box((public, message, signature));
    let Ok(key) = VerifyingKey::from_bytes(public) else {
        return false;
    };
    key.verify_strict(message, &Signature::from_bytes(signature))
        .is_ok()
}

/// SHA-256 of `data`, as `image::verify` hashes the payload.
#[inline(never)]
fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(black_box(data)).into()
}

/// Runs `f` on a fresh coroutine with a [`STACK`]-byte stack and returns its result and the
/// stack's high-water mark in bytes (the runtime's entry frame included).
fn on_coroutine<T: 'static>(
    name: &str,
    f: impl FnOnce() -> T + 'static,
) -> Result<(T, usize), String> {
    let handle = Builder::new(name).stack_size(STACK).spawn(f);
    let id = handle.id();
    while !handle.is_finished() {
        coroutine::yield_now();
    }
    let Some(high_water) = coroutine::coroutines()
        .into_iter()
        .find(|c| c.id == id)
        .map(|c| c.stack_high_water)
    else {
        return Err(format!("coroutine '{name}' has no record after finishing"));
    };
    let value = handle
        .join()
        .map_err(|e| format!("coroutine '{name}': {e}"))?;
    Ok((value, high_water))
}

/// The high-water mark of a coroutine that does nothing: the runtime's own share.
fn idle_high_water() -> Result<usize, String> {
    Ok(on_coroutine("idle", || black_box(0u32))?.1)
}

/// SHA-256 of FIPS 180-2's one- and two-block examples.
pub(crate) fn sha256_vectors() -> Result<String, String> {
    let (digests, high_water) = on_coroutine("sha256", || {
        SHA256_VECTORS.map(|(message, _)| sha256(message))
    })?;
    for ((message, expected), digest) in SHA256_VECTORS.iter().zip(digests) {
        if digest != *expected {
            return Err(format!(
                "SHA-256({:?}) = {digest:02x?}, expected {expected:02x?}",
                core::str::from_utf8(message).unwrap_or("?")
            ));
        }
    }
    let idle = idle_high_water()?;
    Ok(format!(
        "\"abc\" and the 56-byte example; stack high-water {high_water} B (idle coroutine {idle} B)"
    ))
}

/// RFC 8032 TEST 2 and TEST 3 verify with `verify_strict`; the same with one message bit or
/// one signature bit flipped does not.
pub(crate) fn verify_strict() -> Result<String, String> {
    let start = coroutine::now();
    let (outcome, high_water) = on_coroutine("ed25519", check_vectors)?;
    let elapsed = coroutine::now() - start;
    let verifications = outcome?;
    let idle = idle_high_water()?;
    Ok(format!(
        "{verifications} verifications; stack high-water {high_water} B (idle coroutine {idle} B); \
         {} ms under QEMU TCG (not the MCU's speed)",
        elapsed.as_millis()
    ))
}

/// The checks of [`verify_strict`], run on the measured coroutine: the number of
/// verifications done, or the first that went wrong.
fn check_vectors() -> Result<usize, String> {
    let mut count = 0;
    for v in &VECTORS {
        count += 1;
        if !verifies(&v.public, v.message, &v.signature) {
            return Err(format!("{}: a valid signature does not verify", v.name));
        }
        let mut buffer = [0u8; 64];
        let message = &mut buffer[..v.message.len()];
        message.copy_from_slice(v.message);
        for (byte, bit) in [(0, 0), (message.len() - 1, 7)] {
            message[byte] ^= 1 << bit;
            count += 1;
            if verifies(&v.public, message, &v.signature) {
                return Err(format!(
                    "{}: verifies with message byte {byte} bit {bit} flipped",
                    v.name
                ));
            }
            message[byte] ^= 1 << bit;
        }
        for (byte, bit) in SIGNATURE_FLIPS {
            let mut signature = v.signature;
            signature[byte] ^= 1 << bit;
            count += 1;
            if verifies(&v.public, v.message, &signature) {
                return Err(format!(
                    "{}: verifies with signature byte {byte} bit {bit} flipped",
                    v.name
                ));
            }
        }
    }
    Ok(count)
}
