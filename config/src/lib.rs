//! lunbox configuration: the model, its text syntax, validation and atomic persistence.
//!
//! - [`Config`], [`Entry`], [`Flags`]: what lunbox exports over USB (mass-storage LUNs, DFU
//!   targets, the serial console) and how it identifies itself; [`Config::default`] is what
//!   it does without a saved configuration.
//! - [`text`]: the syntax, one `key=value` per line with barebox-style `DEVICE(NAME)FLAGS`
//!   lists (`ums=sd0.1(data),ram0(scratch)ro`). [`parse`] reports errors with line, column,
//!   what was expected and what was found; [`Config::to_text`] prints the canonical text,
//!   which parses back to the same configuration.
//! - [`validate()`]: checks against the device registry and the rules (unknown devices,
//!   duplicate names, more than 16 LUNs, flags a list does not have, …).
//! - [`store`]: two slots with a sequence number and a CRC each, so a torn write leaves the
//!   previous configuration in force ([`save`], [`load`]); [`boot`] picks the configuration
//!   at boot and says whether to start the gadget. [`MemStore`] for tests, `FileStore`
//!   (feature `std`) for the sandbox's state directory, [`NorStore`] for two sectors of a
//!   NOR flash (embedded-storage's `NorFlash`: the Teensy 4.1's program flash).
//!
//! ```
//! use lunbox_config::{MemStore, load, parse, save, validate};
//!
//! let config = parse("ums=sd0.1(data),ram0(scratch)ro\ndfu=sd0.2(rootfs)s,firmware(fw)r\n")?;
//! validate(&config, |device| ["sd0.1", "sd0.2", "ram0"].contains(&device)).unwrap();
//! assert_eq!(parse(&config.to_text())?, config);
//! let mut store = MemStore::new(4096);
//! save(&mut store, &config).unwrap();
//! assert_eq!(load(&mut store).unwrap(), Some(config));
//! # Ok::<(), lunbox_config::ParseError>(())
//! ```
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

mod model;
pub mod nor;
pub mod store;
pub mod text;
mod validate;

pub use model::{
    Config, DEFAULT_MANUFACTURER, DEFAULT_PID, DEFAULT_PRODUCT, DEFAULT_VID, Entry, FIRMWARE, Flag,
    Flags, List, MAX_DFU_TARGETS, MAX_LUNS,
};
pub use nor::{NorError, NorStore};
#[cfg(feature = "std")]
pub use store::FileStore;
pub use store::{
    Boot, BootProblem, LoadError, Loaded, MemError, MemStore, SaveError, SlotFault, SlotState,
    Store, TornTail, Written, boot, load, load_saved, save, scan,
};
pub use text::{Expected, ParseError, format_list, parse, parse_bytes, parse_list};
pub use validate::{MAX_NAME, MAX_STRING_UNITS, ValidationError, overlap, validate};
