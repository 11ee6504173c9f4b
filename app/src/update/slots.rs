//! The A/B slots of the sandbox and their state record, in `STATE_DIR/fw/`:
//!
//! | file | what |
//! |---|---|
//! | `state` | the state record ([`Record`]), replaced atomically (temporary file, fsync, rename, fsync of the directory) |
//! | `slot-a.img`, `slot-b.img` | the slots: signed images that passed verification at manifestation |
//! | `slot-X.img.part` | a download in progress (renamed to `slot-X.img` once verified) |
//! | `slot-X.exe` | slot X's payload as an executable, written at boot before it runs |
//!
//! The record decides what runs (see [`next_boot`]); a slot's image counts only while the
//! record refers to it.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::image::Version;

/// One of the two slots.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Slot {
    /// Slot A.
    A,
    /// Slot B.
    B,
}

impl Slot {
    /// Both slots.
    pub(crate) const ALL: [Slot; 2] = [Slot::A, Slot::B];

    /// `a` or `b`.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Slot::A => "a",
            Slot::B => "b",
        }
    }

    /// The slot called `name`.
    pub(crate) fn parse(name: &str) -> Option<Slot> {
        match name {
            "a" | "A" => Some(Slot::A),
            "b" | "B" => Some(Slot::B),
            _ => None,
        }
    }

    /// The other slot.
    pub(crate) fn other(self) -> Slot {
        match self {
            Slot::A => Slot::B,
            Slot::B => Slot::A,
        }
    }

    fn index(self) -> usize {
        match self {
            Slot::A => 0,
            Slot::B => 1,
        }
    }
}

impl fmt::Display for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The state record: which slot runs, which one is on trial, what the slots hold.
///
/// - `active`: the slot a start runs (`None`: the built-in program, the one started).
/// - `confirmed`: `active` confirmed itself (`fw confirm`). Unconfirmed means it is on
///   trial: it was started once, and the next start falls back to `previous`.
/// - `previous`: what a trial falls back to.
/// - `pending`: a slot that passed verification at manifestation, to be tried once at the
///   next start.
/// - `versions`: the version of each slot's image as verified at manifestation (shown by
///   `fw status`), `None` for an empty slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Record {
    /// Incremented by every write (diagnostics).
    pub(crate) sequence: u64,
    /// The slot that runs at a start, `None` for the built-in program.
    pub(crate) active: Option<Slot>,
    /// Whether `active` confirmed itself.
    pub(crate) confirmed: bool,
    /// What an unconfirmed `active` falls back to.
    pub(crate) previous: Option<Slot>,
    /// The slot to try once at the next start.
    pub(crate) pending: Option<Slot>,
    /// Each slot's image version.
    pub(crate) versions: [Option<Version>; 2],
}

impl Default for Record {
    fn default() -> Self {
        Record {
            sequence: 0,
            active: None,
            confirmed: true,
            previous: None,
            pending: None,
            versions: [None, None],
        }
    }
}

/// The first line of a state record.
const RECORD_MAGIC: &str = "lunbox-fw-state 1";

impl Record {
    /// The version `slot` holds.
    pub(crate) fn version(&self, slot: Slot) -> Option<Version> {
        self.versions[slot.index()]
    }

    /// Set the version `slot` holds.
    pub(crate) fn set_version(&mut self, slot: Slot, v: Option<Version>) {
        self.versions[slot.index()] = v;
    }

    /// Whether a trial is under way: the active slot has not confirmed itself.
    pub(crate) fn on_trial(&self) -> bool {
        self.active.is_some() && !self.confirmed
    }

    /// The text form.
    pub(crate) fn to_text(&self) -> String {
        let slot = |s: Option<Slot>| s.map_or("-", Slot::name);
        let version = |v: Option<Version>| v.map_or(String::from("-"), |v| v.to_string());
        format!(
            "{RECORD_MAGIC}\nsequence={}\nactive={}\nconfirmed={}\nprevious={}\npending={}\n\
             version.a={}\nversion.b={}\nend\n",
            self.sequence,
            slot(self.active),
            if self.confirmed { "yes" } else { "no" },
            slot(self.previous),
            slot(self.pending),
            version(self.versions[0]),
            version(self.versions[1]),
        )
    }

    /// Parse the text form: every key exactly once, in order, then `end`.
    pub(crate) fn parse(text: &str) -> Result<Record, String> {
        if !text.ends_with("\nend\n") {
            return Err(String::from("no end line (torn write?)"));
        }
        let mut lines = text.lines();
        if lines.next() != Some(RECORD_MAGIC) {
            return Err(String::from("not a firmware state record"));
        }
        let mut field = |key: &str| -> Result<&str, String> {
            let line = lines.next().ok_or_else(|| format!("no {key}"))?;
            line.strip_prefix(key)
                .and_then(|r| r.strip_prefix('='))
                .ok_or_else(|| format!("expected {key}=, found {line:?}"))
        };
        let slot = |v: &str| -> Result<Option<Slot>, String> {
            match v {
                "-" => Ok(None),
                v => Slot::parse(v)
                    .map(Some)
                    .ok_or_else(|| format!("no slot {v:?}")),
            }
        };
        let version = |v: &str| -> Result<Option<Version>, String> {
            match v {
                "-" => Ok(None),
                v => Version::parse(v)
                    .map(Some)
                    .ok_or_else(|| format!("bad version {v:?}")),
            }
        };
        let sequence = field("sequence")?
            .parse()
            .map_err(|_| String::from("bad sequence"))?;
        let active = slot(field("active")?)?;
        let confirmed = match field("confirmed")? {
            "yes" => true,
            "no" => false,
            v => return Err(format!("bad confirmed {v:?}")),
        };
        let previous = slot(field("previous")?)?;
        let pending = slot(field("pending")?)?;
        let a = version(field("version.a")?)?;
        let b = version(field("version.b")?)?;
        if lines.next() != Some("end") || lines.next().is_some() {
            return Err(String::from("no end line"));
        }
        Ok(Record {
            sequence,
            active,
            confirmed,
            previous,
            pending,
            versions: [a, b],
        })
    }
}

/// What a start runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Boot {
    /// The built-in program (the one started).
    BuiltIn,
    /// A slot's payload.
    Slot(Slot),
}

/// Why a start runs what it runs, for the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reason {
    /// The active slot (or the built-in program), confirmed.
    Normal,
    /// A pending slot, tried once.
    Trial(Slot),
    /// A slot on trial was started and never confirmed: back to what ran before.
    FellBack(Slot),
}

/// The boot decision for `rec`: the record to write before running (if different) and what
/// to run.
///
/// - a pending slot P: P becomes active, unconfirmed (on trial), with the confirmed active
///   slot as `previous`; P runs;
/// - an unconfirmed active slot (a trial that did not confirm): `previous` becomes active
///   again, confirmed, and runs;
/// - otherwise the active slot runs (the built-in program if none).
pub(crate) fn next_boot(rec: &Record) -> (Record, Boot, Reason) {
    let mut next = rec.clone();
    let reason = if let Some(p) = rec.pending {
        next.previous = if rec.confirmed {
            rec.active
        } else {
            rec.previous
        };
        next.active = Some(p);
        next.confirmed = false;
        next.pending = None;
        Reason::Trial(p)
    } else if let (Some(a), false) = (rec.active, rec.confirmed) {
        next.active = rec.previous;
        next.previous = None;
        next.confirmed = true;
        Reason::FellBack(a)
    } else {
        Reason::Normal
    };
    // A previous slot equal to the active one is meaningless: drop it.
    if next.previous == next.active {
        next.previous = None;
    }
    let boot = next.active.map_or(Boot::BuiltIn, Boot::Slot);
    (next, boot, reason)
}

/// `rec` after `slot`'s image was found invalid at a start: it is forgotten, and if it was
/// about to run, what runs instead is the previous slot of a trial, or the built-in program.
pub(crate) fn forget(rec: &Record, slot: Slot) -> Record {
    let mut next = rec.clone();
    next.set_version(slot, None);
    if next.pending == Some(slot) {
        next.pending = None;
    }
    if next.previous == Some(slot) {
        next.previous = None;
    }
    if next.active == Some(slot) {
        next.active = if next.confirmed { None } else { next.previous };
        next.previous = None;
        next.confirmed = true;
    }
    next
}

/// The slot files of a state directory.
#[derive(Debug, Clone)]
pub(crate) struct Store {
    dir: PathBuf,
}

impl Store {
    /// The slots of the state directory `state_dir` (in its `fw/` folder).
    pub(crate) fn new(state_dir: &Path) -> Store {
        Store {
            dir: state_dir.join("fw"),
        }
    }

    /// The `fw/` folder.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// The state record's path.
    pub(crate) fn record_path(&self) -> PathBuf {
        self.dir.join("state")
    }

    /// Slot `s`'s verified image.
    pub(crate) fn image_path(&self, s: Slot) -> PathBuf {
        self.dir.join(format!("slot-{s}.img"))
    }

    /// Slot `s`'s download in progress.
    pub(crate) fn part_path(&self, s: Slot) -> PathBuf {
        self.dir.join(format!("slot-{s}.img.part"))
    }

    /// Slot `s`'s payload as an executable.
    pub(crate) fn exe_path(&self, s: Slot) -> PathBuf {
        self.dir.join(format!("slot-{s}.exe"))
    }

    /// Create the `fw/` folder.
    pub(crate) fn create_dir(&self) -> io::Result<()> {
        fs::create_dir_all(&self.dir)
    }

    /// The record; the default (the built-in program, nothing pending) when there is none.
    pub(crate) fn load(&self) -> io::Result<Record> {
        match fs::read_to_string(self.record_path()) {
            Ok(text) => Record::parse(&text).map_err(|e| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{}: {e}", self.record_path().display()),
                )
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Record::default()),
            Err(e) => Err(e),
        }
    }

    /// Replace the record atomically (its sequence number is incremented): a crash leaves
    /// either the old record or the new one.
    pub(crate) fn save(&self, rec: &mut Record) -> io::Result<()> {
        self.create_dir()?;
        rec.sequence += 1;
        let tmp = self.dir.join("state.tmp");
        write_atomically(&tmp, &self.record_path(), rec.to_text().as_bytes(), false)
    }

    /// Remove what an interrupted write left behind: temporary files, and downloads in
    /// progress (no download survives a restart).
    pub(crate) fn clean(&self) {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return;
        };
        for e in entries.flatten() {
            let name = e.file_name();
            let name = name.to_string_lossy();
            if name.ends_with(".tmp") || name.ends_with(".part") {
                let _ = fs::remove_file(e.path());
            }
        }
    }
}

/// Write `bytes` to `tmp`, fsync it, rename it to `path` and fsync the directory: `path`
/// holds either its old contents or all of `bytes`. `exec`: make it executable.
pub(crate) fn write_atomically(
    tmp: &Path,
    path: &Path,
    bytes: &[u8],
    exec: bool,
) -> io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(if exec { 0o755 } else { 0o644 })
        .open(tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    fs::rename(tmp, path)?;
    sync_dir(path)
}

/// fsync the directory holding `path` (makes a rename in it durable).
pub(crate) fn sync_dir(path: &Path) -> io::Result<()> {
    match path.parent() {
        Some(dir) => File::open(dir)?.sync_all(),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Option<Version> {
        Version::parse(s)
    }

    #[test]
    fn records_round_trip_and_bad_ones_are_refused() {
        let rec = Record {
            sequence: 42,
            active: Some(Slot::B),
            confirmed: false,
            previous: Some(Slot::A),
            pending: None,
            versions: [v("0.1.0"), v("0.2.0")],
        };
        let text = rec.to_text();
        assert_eq!(Record::parse(&text), Ok(rec.clone()));
        assert_eq!(
            Record::parse(&Record::default().to_text()),
            Ok(Record::default())
        );
        // Any truncation is refused.
        for cut in 0..text.len() {
            assert!(Record::parse(&text[..cut]).is_err(), "cut at {cut}");
        }
        assert!(Record::parse(&text.replace("active=b", "active=c")).is_err());
        assert!(Record::parse(&text.replace("confirmed=no", "confirmed=maybe")).is_err());
        assert!(Record::parse(&format!("{text}junk\n")).is_err());
    }

    #[test]
    fn the_state_machine_tries_once_confirms_and_falls_back() {
        // Fresh: the built-in program runs.
        let rec = Record::default();
        let (next, boot, why) = next_boot(&rec);
        assert_eq!((boot, why), (Boot::BuiltIn, Reason::Normal));
        assert_eq!(next, rec);
        // A download to slot a: tried once.
        let mut rec = Record {
            pending: Some(Slot::A),
            versions: [v("0.2.0"), None],
            ..Record::default()
        };
        let (tried, boot, why) = next_boot(&rec);
        assert_eq!((boot, why), (Boot::Slot(Slot::A), Reason::Trial(Slot::A)));
        assert_eq!(
            (tried.active, tried.confirmed, tried.previous, tried.pending),
            (Some(Slot::A), false, None, None)
        );
        assert!(tried.on_trial());
        // Not confirmed: the next start falls back to the built-in program.
        let (back, boot, why) = next_boot(&tried);
        assert_eq!((boot, why), (Boot::BuiltIn, Reason::FellBack(Slot::A)));
        assert_eq!((back.active, back.confirmed), (None, true));
        // And stays there.
        assert_eq!(next_boot(&back).1, Boot::BuiltIn);
        // Confirmed (what `fw confirm` does): slot a runs from now on.
        rec = tried.clone();
        rec.confirmed = true;
        assert_eq!(next_boot(&rec).1, Boot::Slot(Slot::A));
        assert_eq!(next_boot(&rec).0, rec);
        // The next download goes to b; its trial falls back to a.
        rec.pending = Some(Slot::B);
        let (tried_b, boot, _) = next_boot(&rec);
        assert_eq!(boot, Boot::Slot(Slot::B));
        assert_eq!(tried_b.previous, Some(Slot::A));
        let (back, boot, why) = next_boot(&tried_b);
        assert_eq!(
            (boot, why),
            (Boot::Slot(Slot::A), Reason::FellBack(Slot::B))
        );
        assert_eq!(
            (back.active, back.confirmed, back.previous),
            (Some(Slot::A), true, None)
        );
    }

    #[test]
    fn invalid_images_are_forgotten() {
        let trial = Record {
            active: Some(Slot::B),
            confirmed: false,
            previous: Some(Slot::A),
            versions: [v("1.0.0"), v("1.1.0")],
            ..Record::default()
        };
        let r = forget(&trial, Slot::B);
        assert_eq!(
            (r.active, r.confirmed, r.versions[1]),
            (Some(Slot::A), true, None)
        );
        let confirmed = Record {
            active: Some(Slot::A),
            ..Record::default()
        };
        let r = forget(&confirmed, Slot::A);
        assert_eq!((r.active, r.confirmed), (None, true));
        let pending = Record {
            pending: Some(Slot::A),
            ..Record::default()
        };
        assert_eq!(forget(&pending, Slot::A).pending, None);
    }

    #[test]
    fn the_store_saves_atomically_and_cleans_up() {
        let dir = std::env::temp_dir().join(format!("lunbox-slots-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let store = Store::new(&dir);
        assert_eq!(store.load().unwrap(), Record::default());
        let mut rec = Record {
            pending: Some(Slot::B),
            ..Record::default()
        };
        store.save(&mut rec).unwrap();
        assert_eq!(rec.sequence, 1);
        assert_eq!(store.load().unwrap(), rec);
        fs::write(store.dir().join("state.tmp"), "torn").unwrap();
        fs::write(store.part_path(Slot::A), "half").unwrap();
        store.clean();
        assert!(!store.dir().join("state.tmp").exists());
        assert!(!store.part_path(Slot::A).exists());
        assert_eq!(store.load().unwrap(), rec);
        fs::write(store.record_path(), "garbage").unwrap();
        assert!(store.load().is_err());
        let _ = fs::remove_dir_all(&dir);
    }
}
