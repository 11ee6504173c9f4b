//! Checking a configuration against the rules and the device registry.
//!
//! | check | error |
//! |-------|-------|
//! | at most [`MAX_LUNS`] UMS entries | [`ValidationError::TooManyLuns`] |
//! | at most [`MAX_DFU_TARGETS`] DFU entries | [`ValidationError::TooManyTargets`] |
//! | device names well formed (disk 1–32 of `a-z 0-9 _ -` from a letter, partition 1–36 of `A-Z a-z 0-9 _ -`) | [`ValidationError::BadDevice`] |
//! | devices in the registry (`firmware` always, in `dfu` only) | [`ValidationError::UnknownDevice`] |
//! | names 1–32 of `A-Z a-z 0-9 _ - .`, not all digits | [`ValidationError::EmptyName`], [`ValidationError::BadName`] |
//! | only the list's flags | [`ValidationError::FlagNotAllowed`] |
//! | names (or devices, for entries without one) unique within a list | [`ValidationError::DuplicateName`] |
//! | no device on two UMS LUNs (nor a disk and its partition) unless all are `ro` | [`ValidationError::Overlap`] |
//! | USB strings of at most 126 UTF-16 units, `serial` not empty | [`ValidationError::StringTooLong`], [`ValidationError::EmptySerial`] |
//!
//! Aliases are not resolved: `sd0.1` and `sd0.rootfs` naming the same partition are not
//! reported as overlapping.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use crate::model::{Config, Entry, FIRMWARE, Flag, List, MAX_DFU_TARGETS, MAX_LUNS};
use crate::text::{device_syntax_ok, is_name_char, split_flags};

/// Longest entry name.
pub const MAX_NAME: usize = 32;

/// Longest USB string, in UTF-16 code units (a string descriptor has at most 255 bytes).
pub const MAX_STRING_UNITS: usize = 126;

/// One thing wrong with a configuration. `index` is the entry's place in its list: the LUN
/// number for `ums`, the alternate setting for `dfu` (both from 0).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValidationError {
    /// More UMS entries than LUNs.
    TooManyLuns {
        /// How many there are.
        count: usize,
    },
    /// More DFU entries than alternate settings.
    TooManyTargets {
        /// How many there are.
        count: usize,
    },
    /// A device name that is not a registry name.
    BadDevice {
        /// The list.
        list: List,
        /// The entry.
        index: usize,
        /// The device as given.
        device: String,
        /// The rule it breaks.
        why: &'static str,
    },
    /// A device the registry does not have.
    UnknownDevice {
        /// The list.
        list: List,
        /// The entry.
        index: usize,
        /// The device.
        device: String,
        /// What was probably meant, if anything.
        hint: Option<String>,
    },
    /// `Some("")` as a name.
    EmptyName {
        /// The list.
        list: List,
        /// The entry.
        index: usize,
    },
    /// A name breaking the naming rules.
    BadName {
        /// The list.
        list: List,
        /// The entry.
        index: usize,
        /// The name.
        name: String,
        /// The rule it breaks.
        why: &'static str,
    },
    /// A flag the list does not have.
    FlagNotAllowed {
        /// The list.
        list: List,
        /// The entry.
        index: usize,
        /// The flag.
        flag: Flag,
    },
    /// Two entries of a list with the same name.
    DuplicateName {
        /// The list.
        list: List,
        /// The earlier entry.
        first: usize,
        /// The later entry.
        second: usize,
        /// The name they share.
        name: String,
    },
    /// Two UMS LUNs on the same device, or on a disk and its partition, not both read-only.
    Overlap {
        /// The earlier LUN.
        first: usize,
        /// Its device.
        first_device: String,
        /// The later LUN.
        second: usize,
        /// Its device.
        second_device: String,
    },
    /// A USB string longer than a string descriptor holds.
    StringTooLong {
        /// The key.
        key: &'static str,
        /// Its length in UTF-16 code units.
        units: usize,
    },
    /// `serial` set to the empty string.
    EmptySerial,
}

/// `ums LUN 2 (sd0.9)`, `dfu alt 0 (firmware)`.
struct At<'a>(List, usize, &'a str);

impl fmt::Display for At<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {} ({})",
            self.0,
            self.0.entry_word(),
            self.1,
            self.2
        )
    }
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ValidationError::TooManyLuns { count } => write!(
                f,
                "ums: {count} LUNs, at most {MAX_LUNS}: remove {}",
                count - MAX_LUNS
            ),
            ValidationError::TooManyTargets { count } => write!(
                f,
                "dfu: {count} targets, at most {MAX_DFU_TARGETS}: remove {}",
                count - MAX_DFU_TARGETS
            ),
            ValidationError::BadDevice {
                list,
                index,
                device,
                why,
            } => write!(
                f,
                "{}: '{device}' is not a device name: {why}",
                At(*list, *index, device)
            ),
            ValidationError::UnknownDevice {
                list,
                index,
                device,
                hint,
            } => {
                write!(
                    f,
                    "{}: no device '{device}' (devinfo lists the devices)",
                    At(*list, *index, device)
                )?;
                match hint {
                    Some(hint) => write!(f, "; did you mean {hint}?"),
                    None => Ok(()),
                }
            }
            ValidationError::EmptyName { list, index } => write!(
                f,
                "{list} {} {index}: empty name: give a name or leave the name out",
                list.entry_word()
            ),
            ValidationError::BadName {
                list,
                index,
                name,
                why,
            } => write!(
                f,
                "{list} {} {index}: bad name '{name}': {why}",
                list.entry_word()
            ),
            ValidationError::FlagNotAllowed { list, index, flag } => {
                write!(
                    f,
                    "{list} {} {index}: flag '{flag}' is not a {list} flag (use ",
                    list.entry_word()
                )?;
                for (i, allowed) in list.allowed_flags().iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    f.write_str(allowed.word())?;
                }
                f.write_str(")")
            }
            ValidationError::DuplicateName {
                list,
                first,
                second,
                name,
            } => {
                let word = list.entry_word();
                write!(
                    f,
                    "{list}: {word}s {first} and {second} are both called '{name}': \
                     give one of them another (NAME)"
                )
            }
            ValidationError::Overlap {
                first,
                first_device,
                second,
                second_device,
            } => {
                if first_device == second_device {
                    write!(
                        f,
                        "ums: LUNs {first} and {second} both export {first_device}"
                    )?;
                } else {
                    write!(
                        f,
                        "ums: LUNs {first} ({first_device}) and {second} ({second_device}) \
                         overlap"
                    )?;
                }
                f.write_str(": export it once, or make both read-only (ro)")
            }
            ValidationError::StringTooLong { key, units } => write!(
                f,
                "{key}: {units} UTF-16 units, at most {MAX_STRING_UNITS} fit a USB string"
            ),
            ValidationError::EmptySerial => {
                f.write_str("serial: empty: leave it out to use the board's serial number")
            }
        }
    }
}

impl core::error::Error for ValidationError {}

/// Why `device` is not a well-formed registry name.
fn device_problem(device: &str) -> Option<&'static str> {
    let (disk, part) = match device.split_once('.') {
        Some((disk, part)) => (disk, Some(part)),
        None => (device, None),
    };
    if disk.is_empty() || disk.len() > 32 {
        return Some("a disk name has 1 to 32 characters");
    }
    if !disk.starts_with(|c: char| c.is_ascii_lowercase()) {
        return Some("a disk name starts with a lower-case letter");
    }
    if !disk
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
    {
        return Some("a disk name has only a-z, 0-9, '_' and '-'");
    }
    if let Some(part) = part {
        if part.is_empty() || part.len() > 36 {
            return Some("a partition (after the '.') has 1 to 36 characters");
        }
        if !part
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Some("a partition (after the '.') has only A-Z, a-z, 0-9, '_' and '-'");
        }
    }
    debug_assert!(device_syntax_ok(device));
    None
}

/// Why `name` is not a good entry name (`Some("")` is reported separately).
fn name_problem(name: &str) -> Option<&'static str> {
    if name.chars().count() > MAX_NAME {
        return Some("use at most 32 characters");
    }
    if !name.chars().all(is_name_char) {
        return Some("use only A-Z, a-z, 0-9, '_', '-' and '.'");
    }
    if name.bytes().all(|b| b.is_ascii_digit()) {
        return Some("a name of only digits would read as a number");
    }
    None
}

/// Whether `device` may be in `list`: the registry has it, or it is the firmware in `dfu`.
fn is_known(list: List, device: &str, known: &dyn Fn(&str) -> bool) -> bool {
    (list == List::Dfu && device == FIRMWARE) || known(device)
}

/// `DEV()FLAGS` when `device` is a known device with flags stuck to it (`ram0ro`).
fn flags_hint(list: List, device: &str, known: &dyn Fn(&str) -> bool) -> Option<String> {
    let chars: Vec<char> = device.chars().collect();
    (1..chars.len()).find_map(|split| {
        let prefix: String = chars[..split].iter().collect();
        let flags = split_flags(list, &chars[split..]).ok()?;
        is_known(list, &prefix, known)
            .then(|| alloc::format!("{}", Entry::new(prefix).with_flags(flags)))
    })
}

/// Checks `config`; `known` says whether the device registry has a device of that name.
/// Returns every problem found, in order.
pub fn validate(config: &Config, known: impl Fn(&str) -> bool) -> Result<(), Vec<ValidationError>> {
    check(config, &known)
}

/// [`validate`] through a `dyn` callback: one copy of the checks in the firmware, whatever
/// closures its callers pass.
fn check(config: &Config, known: &dyn Fn(&str) -> bool) -> Result<(), Vec<ValidationError>> {
    let mut errors = Vec::new();
    if config.ums.len() > MAX_LUNS {
        errors.push(ValidationError::TooManyLuns {
            count: config.ums.len(),
        });
    }
    if config.dfu.len() > MAX_DFU_TARGETS {
        errors.push(ValidationError::TooManyTargets {
            count: config.dfu.len(),
        });
    }
    for list in [List::Ums, List::Dfu] {
        let entries = config.list(list);
        for (index, e) in entries.iter().enumerate() {
            let device = e.device.clone();
            if let Some(why) = device_problem(&e.device) {
                errors.push(ValidationError::BadDevice {
                    list,
                    index,
                    device,
                    why,
                });
            } else if !is_known(list, &e.device, known) {
                let hint = flags_hint(list, &e.device, known).or_else(|| {
                    (list == List::Ums && e.device == FIRMWARE)
                        .then(|| String::from("a dfu entry (firmware is a DFU target)"))
                });
                errors.push(ValidationError::UnknownDevice {
                    list,
                    index,
                    device,
                    hint,
                });
            }
            match e.name.as_deref() {
                Some("") => errors.push(ValidationError::EmptyName { list, index }),
                Some(name) => {
                    if let Some(why) = name_problem(name) {
                        errors.push(ValidationError::BadName {
                            list,
                            index,
                            name: String::from(name),
                            why,
                        });
                    }
                }
                None => {}
            }
            for flag in e.flags.iter() {
                if !list.allowed_flags().contains(&flag) {
                    errors.push(ValidationError::FlagNotAllowed { list, index, flag });
                }
            }
            if let Some(first) = entries[..index]
                .iter()
                .position(|other| other.name_or_device() == e.name_or_device())
            {
                errors.push(ValidationError::DuplicateName {
                    list,
                    first,
                    second: index,
                    name: String::from(e.name_or_device()),
                });
            }
        }
    }
    for (second, b) in config.ums.iter().enumerate() {
        let overlapping = config.ums[..second].iter().position(|a| {
            let writable = !a.flags.contains(Flag::ReadOnly) || !b.flags.contains(Flag::ReadOnly);
            writable && overlap(&a.device, &b.device)
        });
        if let Some(first) = overlapping {
            errors.push(ValidationError::Overlap {
                first,
                first_device: config.ums[first].device.clone(),
                second,
                second_device: b.device.clone(),
            });
        }
    }
    let strings = [
        ("manufacturer", Some(&config.manufacturer)),
        ("product", Some(&config.product)),
        ("serial", config.serial.as_ref()),
    ];
    for (key, value) in strings {
        let Some(value) = value else { continue };
        let units = value.encode_utf16().count();
        if units > MAX_STRING_UNITS {
            errors.push(ValidationError::StringTooLong { key, units });
        }
    }
    if config.serial.as_deref() == Some("") {
        errors.push(ValidationError::EmptySerial);
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// Whether devices `a` and `b` share blocks: the same device, or a disk and one of its
/// partitions (`sd0` and `sd0.1`). Aliases are not resolved. Two LUNs on overlapping devices
/// are allowed only when both are read-only.
pub fn overlap(a: &str, b: &str) -> bool {
    fn disk(d: &str) -> &str {
        d.split_once('.').map_or(d, |(disk, _)| disk)
    }
    a == b || (disk(a) == disk(b) && (!a.contains('.') || !b.contains('.')))
}
