//! The A/B build's firmware update (feature `teensy41-ab`): the `firmware` DFU target, which
//! writes a signed image into the secondary slot and asks the boot stage to swap it in
//! ([`lunbox_update::sink::FlashSlotSink`]), and the console's `fw` commands. The layout, the
//! boot stage and the state machine: docs/firmware-update.md.

use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use core::sync::atomic::{AtomicBool, Ordering};

use lunbox_gadget::dfu::ImageSink;
use lunbox_update::image::{Board, Version};
use lunbox_update::sink::FlashSlotSink;
use lunbox_update::{Layout, State, Stored, keys};

use crate::board::VERSION as VERSION_STR;
use crate::flash::SharedFlash;
const VERSION: Version = match Version::parse(VERSION_STR) {
    Some(v) => v,
    None => panic!("LUNBOX_FW_VERSION must be a version X.Y.Z"),
};
/// The board id images for this firmware carry (`lunbox image sign --board teensy41`).
const BOARD: Board = match Board::new("teensy41") {
    Some(b) => b,
    None => panic!("board id"),
};
const LAYOUT: Layout = Layout::TEENSY41;

/// The console's `fw allow-downgrade` switch (off at every start).
static ALLOW_DOWNGRADE: AtomicBool = AtomicBool::new(false);

fn downgrades_allowed() -> bool {
    ALLOW_DOWNGRADE.load(Ordering::Relaxed)
}

/// Firmware updates on this board.
pub(crate) struct Firmware {
    flash: SharedFlash,
}

/// The `help fw` text.
pub(crate) const USAGE: &str = "fw | fw status            the update state: confirmed, pending, on trial\n\
    fw confirm                keep the firmware on trial (else the next boot goes back)\n\
    fw allow-downgrade on|off let the firmware target take older versions (until reset)\n\
    download with: dfu-util -a firmware -D IMAGE (lunbox image sign --board teensy41), then reset";

impl Firmware {
    /// Updates through `flash` (writable from the secondary slot to the state sectors, see
    /// `crate::flash`; the primary slot this firmware runs from only the boot stage writes).
    pub(crate) fn new(flash: SharedFlash) -> Firmware {
        Firmware { flash }
    }

    /// The sink behind the `firmware` DFU target.
    pub(crate) fn sink(&self) -> Box<dyn ImageSink> {
        Box::new(FlashSlotSink::new(
            self.flash.clone(),
            LAYOUT,
            keys::BUILTIN,
            BOARD,
            VERSION,
            downgrades_allowed,
        ))
    }

    /// The console's `fw ARGS`.
    pub(crate) fn command(&self, args: &[&str]) -> Result<String, String> {
        let mut flash = self.flash.clone();
        match args {
            [] | ["status"] => {
                let stored = lunbox_update::status(&mut flash, &LAYOUT)
                    .map_err(|e| format!("the state record: {e:?}"))?;
                Ok(format!("running: {VERSION_STR}; {}", describe(&stored)))
            }
            ["confirm"] => {
                lunbox_update::confirm(&mut flash, &LAYOUT)
                    .map_err(|e| format!("confirm: {e:?}"))?;
                Ok(String::from("confirmed: this firmware stays"))
            }
            ["allow-downgrade", "on"] => {
                ALLOW_DOWNGRADE.store(true, Ordering::Relaxed);
                Ok(String::from("downgrades allowed until reset"))
            }
            ["allow-downgrade", "off"] => {
                ALLOW_DOWNGRADE.store(false, Ordering::Relaxed);
                Ok(String::from("downgrades refused"))
            }
            _ => Err(format!("usage:\n{USAGE}")),
        }
    }
}

/// What the state record says, for people.
fn describe(stored: &Stored) -> String {
    match stored {
        Stored::Blank => String::from("no update yet (the flashed firmware runs, confirmed)"),
        Stored::Damaged | Stored::Mismatch(_) => {
            String::from("the state record is unreadable: the primary slot runs as it is")
        }
        Stored::Valid(r) => match r.state {
            State::Confirmed => String::from("confirmed"),
            State::TestPending => String::from("a new firmware is downloaded: reset to try it"),
            State::OnTrial => String::from(
                "on trial: fw confirm keeps it, else the next boot goes back to the previous one",
            ),
            state => format!("{state} (the boot stage finishes it at the next reset)"),
        },
    }
}
