//! The configuration model: what lunbox exports over USB and how it identifies itself.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

/// At most this many UMS LUNs (the Bulk-Only Transport's limit).
pub const MAX_LUNS: usize = 16;

/// At most this many DFU targets (alternate settings of lunbox's DFU interface).
pub const MAX_DFU_TARGETS: usize = 16;

/// The DFU target that is the firmware itself, always valid in the `dfu` list.
pub const FIRMWARE: &str = "firmware";

/// pid.codes' vendor ID for open-source hardware (the default `vid`).
pub const DEFAULT_VID: u16 = 0x1209;

/// The default `pid` (pid.codes' test PID until lunbox has its own).
pub const DEFAULT_PID: u16 = 0x0001;

/// The default manufacturer string.
pub const DEFAULT_MANUFACTURER: &str = "lunbox";

/// The default product string.
pub const DEFAULT_PRODUCT: &str = "lunbox USB gadget";

/// Which list an entry belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum List {
    /// `ums`: the mass-storage LUNs, in LUN order.
    Ums,
    /// `dfu`: the DFU alternate settings, in alt-setting order.
    Dfu,
}

impl List {
    /// The key of the list in the text syntax (`ums`, `dfu`).
    pub fn key(self) -> &'static str {
        match self {
            List::Ums => "ums",
            List::Dfu => "dfu",
        }
    }

    /// The flags an entry of this list may carry, in their canonical order.
    pub fn allowed_flags(self) -> &'static [Flag] {
        match self {
            List::Ums => &[Flag::ReadOnly, Flag::Fixed],
            List::Dfu => &[Flag::Safe, Flag::Readback],
        }
    }

    /// What an entry of this list is called in messages (`LUN`, `alt`).
    pub fn entry_word(self) -> &'static str {
        match self {
            List::Ums => "LUN",
            List::Dfu => "alt",
        }
    }
}

impl fmt::Display for List {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

/// One flag of an entry. Which flags a list allows: [`List::allowed_flags`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Flag {
    /// UMS `ro`: the LUN refuses writes whatever the device allows.
    ReadOnly,
    /// UMS `fixed`: the LUN is not removable (the host cannot eject it, the console cannot
    /// swap its medium while attached).
    Fixed,
    /// DFU `s` (safe): a download is received completely and checked before anything is
    /// written.
    Safe,
    /// DFU `r` (readback): the host may upload (read back) the target.
    Readback,
}

impl Flag {
    /// Every flag, in canonical order.
    pub const ALL: [Flag; 4] = [Flag::ReadOnly, Flag::Fixed, Flag::Safe, Flag::Readback];

    /// How the flag is written in the text syntax.
    pub fn word(self) -> &'static str {
        match self {
            Flag::ReadOnly => "ro",
            Flag::Fixed => "fixed",
            Flag::Safe => "s",
            Flag::Readback => "r",
        }
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

impl fmt::Display for Flag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.word())
    }
}

/// A set of [`Flag`]s.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Flags(u8);

impl Flags {
    /// No flags.
    pub const EMPTY: Flags = Flags(0);

    /// Whether `flag` is in the set.
    pub fn contains(self, flag: Flag) -> bool {
        self.0 & flag.bit() != 0
    }

    /// Adds `flag`; false if it was there already.
    pub fn insert(&mut self, flag: Flag) -> bool {
        let new = !self.contains(flag);
        self.0 |= flag.bit();
        new
    }

    /// Removes `flag`; false if it was not there.
    pub fn remove(&mut self, flag: Flag) -> bool {
        let had = self.contains(flag);
        self.0 &= !flag.bit();
        had
    }

    /// The set with `flag` added.
    #[must_use]
    pub fn with(mut self, flag: Flag) -> Self {
        self.insert(flag);
        self
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The flags, in canonical order.
    pub fn iter(self) -> impl Iterator<Item = Flag> {
        Flag::ALL.into_iter().filter(move |f| self.contains(*f))
    }
}

impl FromIterator<Flag> for Flags {
    fn from_iter<I: IntoIterator<Item = Flag>>(iter: I) -> Self {
        let mut flags = Flags::EMPTY;
        for f in iter {
            flags.insert(f);
        }
        flags
    }
}

impl fmt::Debug for Flags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

/// Flags as written after an entry: their words one after another (`rofixed`, `sr`).
impl fmt::Display for Flags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.iter().try_for_each(|flag| f.write_str(flag.word()))
    }
}

/// One entry of the `ums` or `dfu` list: `DEVICE(NAME)FLAGS`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Entry {
    /// The registry's name of the device (`sd0.1`, `ram0`, `sd0.rootfs`) or, in `dfu`,
    /// [`FIRMWARE`].
    pub device: String,
    /// The entry's name (`None`: the device name is used). UMS: the LUN's name in the console;
    /// DFU: the alternate setting's name that `dfu-util -l` lists and `dfu-util -a` selects.
    pub name: Option<String>,
    /// Its flags.
    pub flags: Flags,
}

impl Entry {
    /// An entry for `device` without name or flags.
    pub fn new(device: impl Into<String>) -> Self {
        Entry {
            device: device.into(),
            name: None,
            flags: Flags::EMPTY,
        }
    }

    /// The entry with name `name`.
    #[must_use]
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// The entry with `flag` added.
    #[must_use]
    pub fn flag(mut self, flag: Flag) -> Self {
        self.flags.insert(flag);
        self
    }

    /// The entry with flags `flags` (replacing its flags).
    #[must_use]
    pub fn with_flags(mut self, flags: Flags) -> Self {
        self.flags = flags;
        self
    }

    /// The name the entry goes by: its name, or else its device's.
    pub fn name_or_device(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.device)
    }
}

/// The whole configuration. [`Config::default`] is what lunbox uses without a saved one.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Config {
    /// The mass-storage LUNs, in LUN order (at most [`MAX_LUNS`]). Empty: export the board's
    /// default devices (what lunbox does without a configuration).
    pub ums: Vec<Entry>,
    /// The DFU alternate settings, in order. Empty: no DFU function.
    pub dfu: Vec<Entry>,
    /// Whether the composite device carries the CDC-ACM serial console.
    pub acm: bool,
    /// Whether the gadget starts at boot (else it waits for the console).
    pub autostart: bool,
    /// USB vendor ID.
    pub vid: u16,
    /// USB product ID.
    pub pid: u16,
    /// USB manufacturer string.
    pub manufacturer: String,
    /// USB product string.
    pub product: String,
    /// USB serial number string (`None`: the board's unique ID).
    pub serial: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            ums: Vec::new(),
            dfu: Vec::new(),
            acm: true,
            autostart: true,
            vid: DEFAULT_VID,
            pid: DEFAULT_PID,
            manufacturer: String::from(DEFAULT_MANUFACTURER),
            product: String::from(DEFAULT_PRODUCT),
            serial: None,
        }
    }
}

impl Config {
    /// The entries of `list`.
    pub fn list(&self, list: List) -> &[Entry] {
        match list {
            List::Ums => &self.ums,
            List::Dfu => &self.dfu,
        }
    }

    /// The entries of `list`, to change.
    pub fn list_mut(&mut self, list: List) -> &mut Vec<Entry> {
        match list {
            List::Ums => &mut self.ums,
            List::Dfu => &mut self.dfu,
        }
    }
}
