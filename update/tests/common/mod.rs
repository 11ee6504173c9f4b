//! A RAM NOR flash for the integration tests: NOR semantics (erase sets `0xff`, programming
//! only clears bits, no word programmed twice) and power cuts at a chosen operation.

use embedded_storage::nor_flash::{
    ErrorType, NorFlash, NorFlashError, NorFlashErrorKind, ReadNorFlash, check_erase, check_read,
    check_write,
};

/// What a power cut leaves of the operation it interrupts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Torn {
    /// Nothing: the cut came just before it.
    Nothing,
    /// Its first half.
    Half,
    /// All but its last byte.
    AllButLast,
    /// Random bits of it (an erase sets some bits, a program clears some of the bits it
    /// should), from this seed.
    Random(u64),
}

/// Every kind of tear, one random.
pub(crate) const MODES: [Torn; 4] = [
    Torn::Nothing,
    Torn::Half,
    Torn::AllButLast,
    Torn::Random(0x9E37_79B9),
];

/// The fake's errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FakeError {
    /// The power went in this operation, or is off.
    PowerLost,
    /// An operation embedded-storage's checks refuse.
    Bad(NorFlashErrorKind),
}

impl NorFlashError for FakeError {
    fn kind(&self) -> NorFlashErrorKind {
        match self {
            FakeError::PowerLost => NorFlashErrorKind::Other,
            FakeError::Bad(k) => *k,
        }
    }
}

/// A RAM NOR flash with `ERASE`-byte sectors and `W`-byte program words: erase sets a sector
/// to `0xff`, program only clears bits and refuses (panics on) a word that is not erased.
/// Every erase and program counts as an operation; with a cut armed, the operation with that
/// number is torn and the power is off until [`Flash::power_on`].
#[derive(Clone)]
pub(crate) struct Flash<const W: usize> {
    /// The flash's bytes.
    pub(crate) mem: Vec<u8>,
    /// Erases and programs so far.
    pub(crate) ops: u64,
    cut: Option<(u64, Torn)>,
    off: bool,
}

/// The erase size of [`Flash`].
pub(crate) const ERASE: usize = 1024;

/// A xorshift step: the next pseudo-random byte from `seed`.
pub(crate) fn rng(seed: &mut u64) -> u8 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    (*seed >> 24) as u8
}

impl<const W: usize> Flash<W> {
    pub(crate) fn new(capacity: usize) -> Self {
        Flash {
            mem: vec![0xff; capacity],
            ops: 0,
            cut: None,
            off: false,
        }
    }

    /// Loses power in the `n`th operation from now (0: the next one).
    pub(crate) fn arm(&mut self, n: u64, torn: Torn) {
        self.cut = Some((self.ops + n, torn));
    }

    pub(crate) fn power_on(&mut self) {
        self.off = false;
        self.cut = None;
    }

    /// Counts an operation; the tear mode if power goes now.
    fn tick(&mut self) -> Option<Torn> {
        let n = self.ops;
        self.ops += 1;
        match self.cut {
            Some((at, torn)) if at == n => {
                self.off = true;
                Some(torn)
            }
            _ => None,
        }
    }
}

impl<const W: usize> ErrorType for Flash<W> {
    type Error = FakeError;
}

impl<const W: usize> ReadNorFlash for Flash<W> {
    const READ_SIZE: usize = 1;

    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), FakeError> {
        if self.off {
            return Err(FakeError::PowerLost);
        }
        check_read(self, offset, bytes.len()).map_err(FakeError::Bad)?;
        let o = offset as usize;
        bytes.copy_from_slice(&self.mem[o..o + bytes.len()]);
        Ok(())
    }

    fn capacity(&self) -> usize {
        self.mem.len()
    }
}

impl<const W: usize> NorFlash for Flash<W> {
    const WRITE_SIZE: usize = W;
    const ERASE_SIZE: usize = ERASE;

    fn erase(&mut self, from: u32, to: u32) -> Result<(), FakeError> {
        if self.off {
            return Err(FakeError::PowerLost);
        }
        check_erase(self, from, to).map_err(FakeError::Bad)?;
        let torn = self.tick();
        let range = &mut self.mem[from as usize..to as usize];
        let len = range.len();
        match torn {
            None => {
                range.fill(0xff);
                Ok(())
            }
            Some(torn) => {
                match torn {
                    Torn::Nothing => {}
                    Torn::Half => range[..len / 2].fill(0xff),
                    Torn::AllButLast => range[..len - 1].fill(0xff),
                    Torn::Random(mut seed) => {
                        for b in range.iter_mut() {
                            *b |= rng(&mut seed);
                        }
                    }
                }
                Err(FakeError::PowerLost)
            }
        }
    }

    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), FakeError> {
        if self.off {
            return Err(FakeError::PowerLost);
        }
        check_write(self, offset, bytes.len()).map_err(FakeError::Bad)?;
        let o = offset as usize;
        for (i, word) in self.mem[o..o + bytes.len()].chunks(W).enumerate() {
            assert!(
                word.iter().all(|&b| b == 0xff),
                "program of a word that is not erased at {:#x}",
                o + i * W
            );
        }
        let torn = self.tick();
        let dst = &mut self.mem[o..o + bytes.len()];
        let done = match torn {
            None => bytes.len(),
            Some(Torn::Nothing) => 0,
            Some(Torn::Half) => bytes.len() / 2,
            Some(Torn::AllButLast) => bytes.len() - 1,
            Some(Torn::Random(mut seed)) => {
                for (d, s) in dst.iter_mut().zip(bytes) {
                    *d &= s | rng(&mut seed);
                }
                0
            }
        };
        for (d, s) in dst[..done].iter_mut().zip(bytes) {
            *d &= s;
        }
        match torn {
            None => Ok(()),
            Some(_) => Err(FakeError::PowerLost),
        }
    }
}
