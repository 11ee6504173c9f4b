//! The `fw` console commands: `fw` / `fw status`, `fw confirm`, `fw allow-downgrade on|off`.

use super::slots::{Record, Slot, Store};
use super::{VERSION_STR, downgrades_allowed, keys, running, state_dir};

/// The `help fw` text.
pub(crate) const USAGE: &str = "fw | fw status            slots, versions, which runs, what is pending\n\
    fw confirm                keep the firmware on trial (else the next start falls back)\n\
    fw allow-downgrade on|off let the firmware target take older versions (until restart)\n\
    download with: dfu-util -a firmware -D IMAGE (made with lunbox image sign), then reset";

fn store() -> Result<Store, String> {
    state_dir()
        .map(Store::new)
        .ok_or_else(|| String::from("no state directory"))
}

/// Run `fw ARGS`.
pub(crate) fn fw(args: &[&str]) -> Result<String, String> {
    match args {
        [] | ["status"] => status(),
        ["confirm"] => confirm(),
        ["allow-downgrade", "on"] => {
            super::allow_downgrades(true);
            Ok(String::from(
                "downgrades allowed until the next start (the firmware target takes older versions)",
            ))
        }
        ["allow-downgrade", "off"] => {
            super::allow_downgrades(false);
            Ok(String::from("downgrades refused"))
        }
        _ => Err(format!("wrong arguments; usage:\n{USAGE}")),
    }
}

fn status() -> Result<String, String> {
    let store = store()?;
    let rec = store.load().map_err(|e| e.to_string())?;
    let running = running();
    let mut out = format!(
        "running: {VERSION_STR} from {}",
        match running {
            None => String::from("the built-in program"),
            Some(s) if rec.active == Some(s) && rec.on_trial() => {
                format!("slot {s}, on trial: fw confirm keeps it, else the next start falls back")
            }
            Some(s) if rec.active == Some(s) => format!("slot {s}, confirmed"),
            Some(s) => format!("slot {s} (not the active slot)"),
        }
    );
    for s in Slot::ALL {
        out.push_str(&format!("\nslot {s}: {}", slot_line(&store, &rec, s)));
    }
    out.push_str(&format!(
        "\nactive: {}{}",
        rec.active
            .map_or(String::from("built-in program"), |s| format!("slot {s}")),
        if rec.on_trial() {
            format!(
                " (on trial; falls back to {})",
                rec.previous
                    .map_or(String::from("the built-in program"), |s| format!(
                        "slot {s}"
                    ))
            )
        } else {
            String::from(" (confirmed)")
        }
    ));
    out.push_str(&format!(
        "\npending: {}",
        rec.pending.map_or(String::from("none"), |s| format!(
            "slot {s} (runs once at the next start)"
        ))
    ));
    out.push_str(&format!(
        "\ndowngrades: {}; key: {}",
        if downgrades_allowed() {
            "allowed"
        } else {
            "refused"
        },
        if keys::BUILTIN_IS_DEV {
            "the development key (app/keys/dev.pub: anyone can sign)"
        } else {
            "built in at build time"
        }
    ));
    Ok(out)
}

fn slot_line(store: &Store, rec: &Record, s: Slot) -> String {
    let Some(v) = rec.version(s) else {
        return String::from("empty");
    };
    let mut words = vec![v.to_string()];
    if rec.active == Some(s) {
        words.push(String::from(if rec.confirmed {
            "active, confirmed"
        } else {
            "active, on trial"
        }));
    }
    if rec.pending == Some(s) {
        words.push(String::from("pending"));
    }
    if running() == Some(s) {
        words.push(String::from("running"));
    }
    if !store.image_path(s).exists() {
        words.push(String::from("(image missing)"));
    }
    words.join(", ")
}

fn confirm() -> Result<String, String> {
    let store = store()?;
    let mut rec = store.load().map_err(|e| e.to_string())?;
    match running() {
        None => Err(String::from(
            "the built-in program is running: nothing to confirm",
        )),
        Some(s) if rec.active != Some(s) => Err(format!(
            "slot {s} is running but is not the active slot: nothing to confirm"
        )),
        Some(s) if rec.confirmed => Ok(format!("slot {s} is confirmed already")),
        Some(s) => {
            rec.confirmed = true;
            rec.previous = None;
            store.save(&mut rec).map_err(|e| e.to_string())?;
            Ok(format!(
                "slot {s} ({VERSION_STR}) confirmed: it runs at every start from now on"
            ))
        }
    }
}
