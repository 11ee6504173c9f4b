//! Where the slots, the scratch sector and the state sectors are in flash, and the Teensy
//! 4.1's layout ([`Layout::TEENSY41`]).
//!
//! All offsets are bytes from the start of the flash (not memory-mapped addresses: the
//! Teensy's flash appears at `0x6000_0000 + offset`). Every area is made of whole sectors
//! (the erase unit the layout is designed for, [`Layout::sector_size`]).

use core::fmt;

use embedded_storage::nor_flash::NorFlash;

/// The unit in which sectors are copied, in bytes: a NOR flash page. Sectors are a multiple
/// of it, and a flash's `READ_SIZE` and `WRITE_SIZE` must divide it.
pub const CHUNK: u32 = 256;

/// A run of whole sectors in flash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Region {
    /// Its first byte, from the start of the flash.
    pub offset: u32,
    /// Its length in bytes.
    pub size: u32,
}

impl Region {
    /// The region of `size` bytes at `offset`.
    pub const fn new(offset: u32, size: u32) -> Region {
        Region { offset, size }
    }

    /// One past its last byte (as `u64`: it may be 4 GiB).
    pub const fn end(&self) -> u64 {
        self.offset as u64 + self.size as u64
    }

    /// Whether it shares a byte with `other`.
    pub const fn overlaps(&self, other: &Region) -> bool {
        self.size != 0
            && other.size != 0
            && (self.offset as u64) < other.end()
            && (other.offset as u64) < self.end()
    }
}

/// The areas of a [`Layout`], to say which one a [`LayoutError`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Area {
    /// The primary slot.
    Primary,
    /// The secondary slot.
    Secondary,
    /// The scratch sector.
    Scratch,
    /// The first state sector.
    State0,
    /// The second state sector.
    State1,
}

impl fmt::Display for Area {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Area::Primary => "primary slot",
            Area::Secondary => "secondary slot",
            Area::Scratch => "scratch sector",
            Area::State0 => "state sector 0",
            Area::State1 => "state sector 1",
        })
    }
}

/// Why a [`Layout`] cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayoutError {
    /// The sector size is zero or not a multiple of [`CHUNK`].
    SectorSize {
        /// The layout's sector size.
        sector_size: u32,
    },
    /// An area does not start on a sector boundary.
    Unaligned {
        /// The area.
        area: Area,
        /// Its offset.
        offset: u32,
    },
    /// The slots are empty, not whole sectors, or not the same size.
    SlotSize {
        /// The primary slot's size.
        primary: u32,
        /// The secondary slot's size.
        secondary: u32,
    },
    /// Two areas share bytes.
    Overlap {
        /// One area.
        first: Area,
        /// The other.
        second: Area,
    },
    /// An area ends past the end of the flash (or of the 4 GiB a `u32` offset reaches).
    OutOfRange {
        /// The area.
        area: Area,
        /// One past its last byte.
        end: u64,
        /// The flash's capacity.
        capacity: u64,
    },
    /// The flash's geometry does not fit: its erase size does not divide the sector size, or
    /// its read or write size does not divide [`CHUNK`].
    Geometry {
        /// The flash's `ERASE_SIZE`.
        erase_size: usize,
        /// The flash's `WRITE_SIZE`.
        write_size: usize,
        /// The flash's `READ_SIZE`.
        read_size: usize,
    },
}

impl fmt::Display for LayoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LayoutError::SectorSize { sector_size } => write!(
                f,
                "sector size {sector_size} is not a non-zero multiple of {CHUNK} bytes"
            ),
            LayoutError::Unaligned { area, offset } => {
                write!(
                    f,
                    "{area} at {offset:#x} does not start on a sector boundary"
                )
            }
            LayoutError::SlotSize { primary, secondary } => write!(
                f,
                "slots of {primary:#x} and {secondary:#x} bytes: they must be the same \
                 non-zero number of whole sectors"
            ),
            LayoutError::Overlap { first, second } => write!(f, "{first} overlaps {second}"),
            LayoutError::OutOfRange {
                area,
                end,
                capacity,
            } => write!(
                f,
                "{area} ends at {end:#x}, past the flash's {capacity:#x} bytes"
            ),
            LayoutError::Geometry {
                erase_size,
                write_size,
                read_size,
            } => write!(
                f,
                "flash with erase size {erase_size}, write size {write_size} and read size \
                 {read_size} does not fit the layout's sectors and {CHUNK}-byte pages"
            ),
        }
    }
}

/// Where the areas of the swap scheme are in flash: two slots of the same size, one scratch
/// sector and two state sectors, all whole sectors and pairwise disjoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Layout {
    /// The sector size the layout uses, in bytes: the unit swapped and erased. A multiple of
    /// the flash's erase size and of [`CHUNK`].
    pub sector_size: u32,
    /// The primary slot: the image that runs, linked for this address.
    pub primary: Region,
    /// The secondary slot: where a new image is downloaded, and where the previous one goes.
    pub secondary: Region,
    /// The offset of the scratch sector.
    pub scratch: u32,
    /// The offsets of the two state sectors.
    pub state: [u32; 2],
}

/// The Teensy 4.1's flash: 8 MiB.
pub const TEENSY41_FLASH_SIZE: u32 = 0x80_0000;

/// The Teensy 4.1's boot stage, which is never updated: FlexSPI configuration block, image
/// vector table and boot data, and the boot loader that runs [`boot`](crate::boot).
pub const TEENSY41_BOOT_STAGE: Region = Region::new(0, 0x1_0000);

/// The Teensy 4.1's configuration store (`lunbox-config`'s two slots): not ours.
pub const TEENSY41_CONFIG: Region = Region::new(0x7B_E000, 0x2000);

/// The last 256 KiB of the Teensy 4.1's flash: PJRC's EEPROM emulation and restore program,
/// never touched.
pub const TEENSY41_PJRC: Region = Region::new(0x7C_0000, 0x4_0000);

impl Layout {
    /// The Teensy 4.1 (i.MX RT1062, 8 MiB QSPI NOR, 4 KiB sectors): primary slot at
    /// 0x01_0000 and secondary slot at 0x11_0000 (1 MiB each), scratch sector at 0x21_0000,
    /// state sectors at 0x7B_C000 and 0x7B_D000.
    pub const TEENSY41: Layout = Layout {
        sector_size: 0x1000,
        primary: Region::new(0x01_0000, 0x10_0000),
        secondary: Region::new(0x11_0000, 0x10_0000),
        scratch: 0x21_0000,
        state: [0x7B_C000, 0x7B_D000],
    };

    /// How many sectors a slot has.
    pub const fn slot_sectors(&self) -> u32 {
        self.primary.size / self.sector_size
    }

    /// The offset of sector `index` of the primary slot.
    pub const fn primary_sector(&self, index: u32) -> u32 {
        self.primary.offset + index * self.sector_size
    }

    /// The offset of sector `index` of the secondary slot.
    pub const fn secondary_sector(&self, index: u32) -> u32 {
        self.secondary.offset + index * self.sector_size
    }

    /// The areas with their regions.
    const fn areas(&self) -> [(Area, Region); 5] {
        [
            (Area::Primary, self.primary),
            (Area::Secondary, self.secondary),
            (Area::Scratch, Region::new(self.scratch, self.sector_size)),
            (Area::State0, Region::new(self.state[0], self.sector_size)),
            (Area::State1, Region::new(self.state[1], self.sector_size)),
        ]
    }

    /// Checks the layout on its own: sector size, alignment, slot sizes, no overlap, and
    /// every area within the 4 GiB a `u32` offset reaches.
    pub const fn validate(&self) -> Result<(), LayoutError> {
        let sector = self.sector_size;
        if sector == 0 || !sector.is_multiple_of(CHUNK) {
            return Err(LayoutError::SectorSize {
                sector_size: sector,
            });
        }
        let (primary, secondary) = (self.primary.size, self.secondary.size);
        if primary == 0 || primary != secondary || !primary.is_multiple_of(sector) {
            return Err(LayoutError::SlotSize { primary, secondary });
        }
        let areas = self.areas();
        let mut i = 0;
        while i < areas.len() {
            let (area, region) = areas[i];
            if !region.offset.is_multiple_of(sector) {
                return Err(LayoutError::Unaligned {
                    area,
                    offset: region.offset,
                });
            }
            if region.end() > u32::MAX as u64 + 1 {
                return Err(LayoutError::OutOfRange {
                    area,
                    end: region.end(),
                    capacity: u32::MAX as u64 + 1,
                });
            }
            let mut j = 0;
            while j < i {
                if region.overlaps(&areas[j].1) {
                    return Err(LayoutError::Overlap {
                        first: areas[j].0,
                        second: area,
                    });
                }
                j += 1;
            }
            i += 1;
        }
        Ok(())
    }

    /// Checks the layout ([`validate`](Layout::validate)) and that it fits `flash`: every
    /// area within its capacity, its erase size dividing the sector size, its read and write
    /// sizes dividing [`CHUNK`].
    pub fn validate_for<F: NorFlash>(&self, flash: &F) -> Result<(), LayoutError> {
        self.validate()?;
        let geometry = LayoutError::Geometry {
            erase_size: F::ERASE_SIZE,
            write_size: F::WRITE_SIZE,
            read_size: F::READ_SIZE,
        };
        let divides = |size: usize, of: u32| size != 0 && (of as usize).is_multiple_of(size);
        if !divides(F::ERASE_SIZE, self.sector_size)
            || !divides(F::WRITE_SIZE, CHUNK)
            || !divides(F::READ_SIZE, CHUNK)
        {
            return Err(geometry);
        }
        let capacity = flash.capacity() as u64;
        for (area, region) in self.areas() {
            if region.end() > capacity {
                return Err(LayoutError::OutOfRange {
                    area,
                    end: region.end(),
                    capacity,
                });
            }
        }
        Ok(())
    }
}

const _: () = {
    assert!(Layout::TEENSY41.validate().is_ok());
    let areas = Layout::TEENSY41.areas();
    let mut i = 0;
    while i < areas.len() {
        let region = areas[i].1;
        assert!(!region.overlaps(&TEENSY41_BOOT_STAGE));
        assert!(!region.overlaps(&TEENSY41_CONFIG));
        assert!(!region.overlaps(&TEENSY41_PJRC));
        assert!(region.end() <= TEENSY41_FLASH_SIZE as u64);
        i += 1;
    }
};

#[cfg(test)]
mod tests {
    use super::*;

    const SMALL: Layout = Layout {
        sector_size: 1024,
        primary: Region::new(1024, 4096),
        secondary: Region::new(5120, 4096),
        scratch: 9216,
        state: [10240, 11264],
    };

    #[test]
    fn teensy41() {
        let l = Layout::TEENSY41;
        assert_eq!(l.validate(), Ok(()));
        assert_eq!(l.slot_sectors(), 256);
        assert_eq!(l.primary.end(), l.secondary.offset as u64);
        assert_eq!(l.secondary.end(), l.scratch as u64);
        assert_eq!(l.state[1] + l.sector_size, TEENSY41_CONFIG.offset);
        assert_eq!(TEENSY41_CONFIG.end(), TEENSY41_PJRC.offset as u64);
        assert_eq!(TEENSY41_PJRC.end(), TEENSY41_FLASH_SIZE as u64);
        assert_eq!(TEENSY41_BOOT_STAGE.end(), l.primary.offset as u64);
    }

    #[test]
    fn bad_layouts() {
        assert_eq!(SMALL.validate(), Ok(()));
        let l = Layout {
            sector_size: 1000,
            ..SMALL
        };
        assert_eq!(
            l.validate(),
            Err(LayoutError::SectorSize { sector_size: 1000 })
        );
        let l = Layout {
            sector_size: 0,
            ..SMALL
        };
        assert!(matches!(l.validate(), Err(LayoutError::SectorSize { .. })));
        let l = Layout {
            secondary: Region::new(5120, 3072),
            ..SMALL
        };
        assert!(matches!(l.validate(), Err(LayoutError::SlotSize { .. })));
        let l = Layout {
            primary: Region::new(1024, 0),
            secondary: Region::new(5120, 0),
            ..SMALL
        };
        assert!(matches!(l.validate(), Err(LayoutError::SlotSize { .. })));
        let l = Layout {
            primary: Region::new(1024, 4000),
            secondary: Region::new(5120, 4000),
            ..SMALL
        };
        assert!(matches!(l.validate(), Err(LayoutError::SlotSize { .. })));
        let l = Layout {
            scratch: 9300,
            ..SMALL
        };
        assert_eq!(
            l.validate(),
            Err(LayoutError::Unaligned {
                area: Area::Scratch,
                offset: 9300
            })
        );
        let l = Layout {
            scratch: 8192,
            ..SMALL
        };
        assert_eq!(
            l.validate(),
            Err(LayoutError::Overlap {
                first: Area::Secondary,
                second: Area::Scratch
            })
        );
        let l = Layout {
            state: [10240, 10240],
            ..SMALL
        };
        assert_eq!(
            l.validate(),
            Err(LayoutError::Overlap {
                first: Area::State0,
                second: Area::State1
            })
        );
        let l = Layout {
            secondary: Region::new(2048, 4096),
            ..SMALL
        };
        assert!(matches!(l.validate(), Err(LayoutError::Overlap { .. })));
        let l = Layout {
            secondary: Region::new(0xFFFF_FC00, 4096),
            ..SMALL
        };
        assert!(matches!(l.validate(), Err(LayoutError::OutOfRange { .. })));
    }
}
