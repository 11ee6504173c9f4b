//! The program flash as the firmware uses it: the configuration store behind `config save`
//! (two sectors below PJRC's reserved area) and, in the A/B build, the firmware slots. One
//! [`Flash`] per boot, shared by both ([`SharedFlash`]).

use alloc::rc::Rc;
use core::cell::RefCell;
use core::fmt;
use core::ops::Range;

use embedded_storage::nor_flash::{ErrorType, NorFlash, ReadNorFlash};
use lunbox_config::{NorError, NorStore, Store};
use lunbox_platform::imxrt::flash::{CONFIG_REGION, CONFIG_SLOT_OFFSETS, Flash, FlashError};
#[cfg(feature = "teensy41-ab")]
use lunbox_update::Layout;
#[cfg(feature = "teensy41-ab")]
use lunbox_update::layout::TEENSY41_CONFIG;

#[cfg(feature = "teensy41-ab")]
const LAYOUT: Layout = Layout::TEENSY41;
// The configuration sectors follow the state sectors, so one writable region holds both.
#[cfg(feature = "teensy41-ab")]
const _: () = assert!(
    TEENSY41_CONFIG.offset == CONFIG_REGION.start
        && LAYOUT.state[1] + LAYOUT.sector_size == CONFIG_REGION.start
        && LAYOUT.secondary.offset > LAYOUT.primary.offset
);

/// The flash offsets the A/B firmware erases and programs: the secondary slot, the scratch
/// sector, the state sectors and the configuration sectors. Never the boot stage nor the
/// primary slot this firmware runs from (only the boot stage writes it).
#[cfg(feature = "teensy41-ab")]
const WRITABLE: Range<u32> = LAYOUT.secondary.offset..CONFIG_REGION.end;
/// The flash offsets the plain firmware erases and programs: the configuration sectors only.
#[cfg(not(feature = "teensy41-ab"))]
const WRITABLE: Range<u32> = CONFIG_REGION;

/// The program flash, shared by the configuration store and the firmware target.
#[derive(Clone)]
pub(crate) struct SharedFlash(Rc<RefCell<Flash>>);

impl SharedFlash {
    /// The flash, writable in [`WRITABLE`].
    pub(crate) fn take() -> Result<SharedFlash, FlashError> {
        Flash::take(WRITABLE).map(|f| SharedFlash(Rc::new(RefCell::new(f))))
    }
}

impl ErrorType for SharedFlash {
    type Error = FlashError;
}

impl ReadNorFlash for SharedFlash {
    const READ_SIZE: usize = Flash::READ_SIZE;

    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), FlashError> {
        self.0.borrow_mut().read(offset, bytes)
    }

    fn capacity(&self) -> usize {
        self.0.borrow().capacity()
    }
}

impl NorFlash for SharedFlash {
    const WRITE_SIZE: usize = Flash::WRITE_SIZE;
    const ERASE_SIZE: usize = Flash::ERASE_SIZE;

    fn erase(&mut self, from: u32, to: u32) -> Result<(), FlashError> {
        self.0.borrow_mut().erase(from, to)
    }

    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), FlashError> {
        self.0.borrow_mut().write(offset, bytes)
    }
}

/// Where `config save` keeps the configuration: `lunbox_config`'s two slots in the flash
/// sectors at 0x607B_E000 and 0x607B_F000, or nothing when the flash could not be had.
pub(crate) struct ConfigStore(Result<NorStore<SharedFlash>, FlashError>);

impl ConfigStore {
    /// The store on `flash` (or the reason there is no flash).
    pub(crate) fn new(flash: Result<SharedFlash, FlashError>) -> Self {
        ConfigStore(flash.map(|f| NorStore::new(f, CONFIG_SLOT_OFFSETS)))
    }

    fn store(&mut self) -> Result<&mut NorStore<SharedFlash>, ConfigStoreError> {
        self.0.as_mut().map_err(|e| ConfigStoreError::NoFlash(*e))
    }
}

/// Why the configuration could not be read or written.
#[derive(Debug)]
pub(crate) enum ConfigStoreError {
    /// The flash was not available at boot.
    NoFlash(FlashError),
    /// Reading, erasing or programming a slot failed.
    Flash(NorError<FlashError>),
}

impl fmt::Display for ConfigStoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigStoreError::NoFlash(e) => write!(f, "the program flash is not available: {e}"),
            // The flash's own message, not NorError's `Debug` of it.
            ConfigStoreError::Flash(NorError::Flash(e)) => write!(f, "flash: {e}"),
            ConfigStoreError::Flash(e) => write!(f, "{e}"),
        }
    }
}

impl Store for ConfigStore {
    type Error = ConfigStoreError;

    fn capacity(&self) -> usize {
        match &self.0 {
            Ok(s) => s.capacity(),
            Err(_) => 0,
        }
    }

    fn read_slot(&mut self, slot: usize) -> Result<alloc::vec::Vec<u8>, ConfigStoreError> {
        self.store()?
            .read_slot(slot)
            .map_err(ConfigStoreError::Flash)
    }

    fn write_slot(&mut self, slot: usize, data: &[u8]) -> Result<(), ConfigStoreError> {
        self.store()?
            .write_slot(slot, data)
            .map_err(ConfigStoreError::Flash)
    }
}
