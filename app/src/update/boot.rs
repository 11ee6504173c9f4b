//! The sandbox's boot step, first thing in `main`: it plays the boot loader. The program
//! the user starts is the built-in firmware and the boot loader; a slot's payload is
//! another lunbox executable, which it runs with `exec` (same process, same arguments,
//! same stdin/stdout) and the environment variable [`SLOT_ENV`] naming the slot.
//!
//! 1. Started with [`SLOT_ENV`] set: this is a slot's payload, started by a boot loader.
//!    It runs as is (never boots another slot: no exec loops). The variable is removed from
//!    the environment, so `reset`, which re-executes the program, comes back here as a fresh
//!    start.
//! 2. Started with [`BOOT_EXE_ENV`] (and no [`SLOT_ENV`]): a slot's payload was reset. It
//!    hands over to the boot loader named there, the program the user started, which goes
//!    on with 3.
//! 3. Otherwise the state record decides ([`slots::next_boot`]): a pending slot is marked
//!    tried (the record is written, durably, before the slot runs) and runs once; a trial
//!    that was never confirmed falls back; else the active slot runs. The chosen slot's image
//!    is verified again (length, hash, signature with the key built into the boot loader,
//!    board): a slot that fails is forgotten and the decision taken again. The payload is
//!    written out as `fw/slot-X.exe` and executed. The built-in program just goes on.

use std::ffi::OsString;
use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::image;
use super::slots::{self, Boot, Reason, Record, Slot, Store};
use super::{BOARD, RUNNING, STATE_DIR, VERSION_STR, keys, log};

/// Set for a slot's payload by the boot loader: the slot it runs from (`a` or `b`).
pub(crate) const SLOT_ENV: &str = "LUNBOX_SLOT";
/// Set for a slot's payload by the boot loader: the boot loader's executable, which a
/// `reset` goes back to.
pub(crate) const BOOT_EXE_ENV: &str = "LUNBOX_BOOT_EXE";

/// Decide what runs, for a program with the state directory `state_dir`: returns when this
/// program is what runs (the built-in program, or a slot's payload already running), after
/// recording which one it is; otherwise executes a slot's payload and does not return.
pub(crate) fn start(state_dir: &Path) {
    let _ = STATE_DIR.set(state_dir.to_path_buf());
    let slot_env = std::env::var_os(SLOT_ENV);
    let boot_exe = std::env::var_os(BOOT_EXE_ENV);
    if let Some(name) = slot_env {
        remove_env(SLOT_ENV);
        let slot = name.to_str().and_then(Slot::parse);
        match slot {
            Some(s) => log(&format!("firmware {VERSION_STR} running from slot {s}")),
            None => log(&format!("ignoring {SLOT_ENV}={name:?}")),
        }
        let _ = RUNNING.set(slot);
        return;
    }
    if let Some(exe) = boot_exe {
        remove_env(BOOT_EXE_ENV);
        let exe = PathBuf::from(exe);
        let current = std::env::current_exe().ok();
        if current.as_deref() != Some(exe.as_path()) {
            let e = Command::new(&exe).args(std::env::args_os().skip(1)).exec();
            log(&format!(
                "cannot go back to the boot loader {}: {e}; booting from here",
                exe.display()
            ));
        }
    }
    let slot = choose(state_dir);
    let _ = RUNNING.set(None);
    if let Some((slot, exe)) = slot {
        let mut cmd = Command::new(&exe);
        cmd.args(std::env::args_os().skip(1))
            .env(SLOT_ENV, slot.name());
        if let Ok(me) = std::env::current_exe() {
            cmd.env(BOOT_EXE_ENV, me);
        }
        let e = cmd.exec();
        log(&format!(
            "cannot run slot {slot} ({}): {e}; running the built-in program",
            exe.display()
        ));
    }
}

/// Remove an environment variable.
fn remove_env(name: &str) {
    // SAFETY: called first thing in `main`, before the program starts any thread, so
    // nothing reads the environment concurrently.
    unsafe { std::env::remove_var(name) };
}

/// Take the boot decision: update the record, and return the slot to run and its
/// executable (`None`: the built-in program).
fn choose(state_dir: &Path) -> Option<(Slot, PathBuf)> {
    let store = Store::new(state_dir);
    if !store.dir().exists() {
        return None;
    }
    store.clean();
    let mut rec = match store.load() {
        Ok(rec) => rec,
        Err(e) => {
            log(&format!(
                "firmware state unreadable ({e}): running the built-in program"
            ));
            return None;
        }
    };
    let original = rec.clone();
    // Each round forgets a slot or ends: at most three.
    for _ in 0..3 {
        let (mut next, boot, reason) = next_boot(&rec);
        match reason {
            Reason::Normal => {}
            Reason::Trial(s) => log(&format!(
                "trying slot {s} once: it must confirm itself (fw confirm), or the next start \
                 falls back"
            )),
            Reason::FellBack(s) => log(&format!(
                "slot {s} did not confirm itself: falling back to {}",
                describe(next.active)
            )),
        }
        let Boot::Slot(slot) = boot else {
            save_if_changed(&store, &original, &mut next);
            return None;
        };
        match prepare(&store, slot) {
            Ok(exe) => {
                if !save_if_changed(&store, &original, &mut next) && next.on_trial() {
                    // The try-once mark did not stick: never run a trial without it.
                    return None;
                }
                return Some((slot, exe));
            }
            Err(e) => {
                log(&format!("slot {slot} is not bootable: {e}"));
                rec = slots::forget(&next, slot);
            }
        }
    }
    save_if_changed(&store, &original, &mut rec);
    None
}

fn next_boot(rec: &Record) -> (Record, Boot, Reason) {
    slots::next_boot(rec)
}

/// Write `rec` unless it is `original`; returns whether the record on disk is `rec`.
fn save_if_changed(store: &Store, original: &Record, rec: &mut Record) -> bool {
    if rec == original {
        return true;
    }
    match store.save(rec) {
        Ok(()) => true,
        Err(e) => {
            log(&format!("cannot write the firmware state: {e}"));
            false
        }
    }
}

fn describe(slot: Option<Slot>) -> String {
    match slot {
        Some(s) => format!("slot {s}"),
        None => String::from("the built-in program"),
    }
}

/// Verify `slot`'s image and write its payload out as an executable (unless it is there
/// already); returns the executable's path.
fn prepare(store: &Store, slot: Slot) -> Result<PathBuf, String> {
    let path = store.image_path(slot);
    let bytes = fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let verified = image::verify(&bytes, &keys::BUILTIN).map_err(|e| e.to_string())?;
    image::check_board(&verified.header, &BOARD).map_err(|e| e.to_string())?;
    let exe = store.exe_path(slot);
    let current = fs::read(&exe).ok();
    if current.as_deref() != Some(verified.payload) {
        let mut tmp = OsString::from(exe.as_os_str());
        tmp.push(".tmp");
        slots::write_atomically(Path::new(&tmp), &exe, verified.payload, true)
            .map_err(|e| format!("{}: {e}", exe.display()))?;
    }
    Ok(exe)
}
