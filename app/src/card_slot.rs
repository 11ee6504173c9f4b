//! Card slots with card detection (the Teensy 4.1's built-in microSD slot): a watcher that
//! samples the slot and keeps a [`MediaSlot`] in step with it, so that the disk stays
//! registered (its LUN, its DFU target) while cards come and go. The UMS LUN on the slot sees
//! each change as a medium change (UNIT ATTENTION), an empty slot as no medium (NOT READY).

use alloc::boxed::Box;
use alloc::format;
use alloc::rc::Rc;
use alloc::string::String;
use core::fmt;
use core::time::Duration;

use lunbox_platform::coroutine::{self, Mutex};
use lunbox_storage::{BlockDevice, MediaSlot};

/// A slot a card can be put in and taken out of.
pub trait CardSlot {
    /// Whether a card is in the slot now (card detection).
    fn present(&mut self) -> bool;

    /// Bring up the card in the slot: its block device.
    fn open(&mut self) -> Result<Box<dyn BlockDevice>, String>;

    /// The card went away: forget its state (the next [`open`](CardSlot::open) starts over).
    fn removed(&mut self) {}
}

/// What changed in a slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SlotEvent {
    /// A card went in and is the medium now.
    Inserted {
        /// Its size in bytes.
        bytes: u64,
    },
    /// A card went in but could not be brought up; the slot stays empty until it is taken
    /// out and put in again.
    OpenFailed(String),
    /// The card was taken out.
    Removed,
}

impl fmt::Display for SlotEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SlotEvent::Inserted { bytes } => {
                write!(f, "card inserted ({})", crate::shell::size(*bytes))
            }
            SlotEvent::OpenFailed(e) => write!(f, "card inserted but not usable: {e}"),
            SlotEvent::Removed => f.write_str("card removed"),
        }
    }
}

/// What the watcher believes is in the slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Held {
    Empty,
    Open,
    /// A card is in but did not come up.
    Unusable,
}

/// Keeps a [`MediaSlot`] holding the card that is in a [`CardSlot`].
pub struct SlotWatcher<S> {
    slot: S,
    media: Rc<Mutex<MediaSlot>>,
    held: Held,
    /// A presence differing from `held`, seen at the last sample.
    pending: Option<bool>,
}

impl<S: CardSlot> SlotWatcher<S> {
    /// A watcher for `slot`, whose card goes into `media` (a medium already there counts as
    /// the card in the slot).
    pub fn new(slot: S, media: Rc<Mutex<MediaSlot>>) -> Self {
        let held = if media.lock().media_present() {
            Held::Open
        } else {
            Held::Empty
        };
        SlotWatcher {
            slot,
            media,
            held,
            pending: None,
        }
    }

    /// Look at the slot once. A card put in counts when two samples in a row see it
    /// (contacts bounce as it slides in; it is opened then, seated); a card taken out counts at
    /// once, so that a quick swap cannot pass for the same card.
    pub fn sample(&mut self) -> Option<SlotEvent> {
        let present = self.look();
        if present == (self.held != Held::Empty) {
            self.pending = None;
            return None;
        }
        if present && self.pending != Some(true) {
            self.pending = Some(true);
            return None;
        }
        self.pending = None;
        self.change(present)
    }

    /// Look at the slot and act on what is there now, without waiting for a second look (at
    /// start-up, when nobody is sliding a card in).
    pub fn check_now(&mut self) -> Option<SlotEvent> {
        let present = self.look();
        self.pending = None;
        if present == (self.held != Held::Empty) {
            return None;
        }
        self.change(present)
    }

    /// Card detection, under the medium's lock: no transfer to the card runs meanwhile.
    fn look(&mut self) -> bool {
        let _medium = self.media.lock();
        self.slot.present()
    }

    /// The card went in (`present`) or out.
    fn change(&mut self, present: bool) -> Option<SlotEvent> {
        if present {
            match self.slot.open() {
                Ok(card) => {
                    let bytes = card.num_blocks() * u64::from(card.block_size());
                    self.media.lock().insert(card);
                    self.held = Held::Open;
                    Some(SlotEvent::Inserted { bytes })
                }
                Err(e) => {
                    self.held = Held::Unusable;
                    Some(SlotEvent::OpenFailed(e))
                }
            }
        } else {
            // The card is gone: nothing to flush it to.
            self.media.lock().remove();
            self.slot.removed();
            self.held = Held::Empty;
            Some(SlotEvent::Removed)
        }
    }

    /// Sample every `period` until the coroutine is asked to stop, passing each event to
    /// `report`.
    pub fn run(mut self, period: Duration, name: &str, report: impl Fn(&str)) {
        while !coroutine::should_stop() {
            if let Some(event) = self.sample() {
                report(&format!("{name}: {event}"));
            }
            coroutine::sleep(period);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::collections::VecDeque;
    use alloc::string::ToString;
    use alloc::vec::Vec;
    use core::cell::RefCell;
    use lunbox_storage::RamDisk;

    /// A slot whose card detection reads from a script; `open` fails while `broken` is set.
    struct FakeSlot {
        script: VecDeque<bool>,
        broken: bool,
        log: Rc<RefCell<Vec<&'static str>>>,
    }

    impl CardSlot for FakeSlot {
        fn present(&mut self) -> bool {
            self.script.pop_front().expect("sampled past the script")
        }

        fn open(&mut self) -> Result<Box<dyn BlockDevice>, String> {
            self.log.borrow_mut().push("open");
            if self.broken {
                Err("CMD8 echo mismatch".to_string())
            } else {
                Ok(Box::new(RamDisk::new(2048).unwrap()))
            }
        }

        fn removed(&mut self) {
            self.log.borrow_mut().push("removed");
        }
    }

    fn watcher(
        script: &[bool],
        broken: bool,
        media: MediaSlot,
    ) -> (SlotWatcher<FakeSlot>, Rc<RefCell<Vec<&'static str>>>) {
        let log = Rc::new(RefCell::new(Vec::new()));
        let slot = FakeSlot {
            script: script.iter().copied().collect(),
            broken,
            log: log.clone(),
        };
        (SlotWatcher::new(slot, Rc::new(Mutex::new(media))), log)
    }

    fn samples(w: &mut SlotWatcher<FakeSlot>, n: usize) -> Vec<Option<SlotEvent>> {
        (0..n).map(|_| w.sample()).collect()
    }

    #[test]
    fn a_card_counts_once_two_samples_agree_and_goes_into_the_media_slot() {
        // Bouncing contacts: in, out, in, in (counts), in, out (counts at once), out.
        let (mut w, log) = watcher(
            &[true, false, true, true, true, false, false],
            false,
            MediaSlot::empty(),
        );
        let events = samples(&mut w, 7);
        assert_eq!(
            events,
            alloc::vec![
                None,
                None,
                None,
                Some(SlotEvent::Inserted { bytes: 1 << 20 }),
                None,
                Some(SlotEvent::Removed),
                None,
            ]
        );
        assert_eq!(*log.borrow(), ["open", "removed"]);
        assert!(!w.media.lock().media_present());
        assert_eq!(
            events[3].as_ref().unwrap().to_string(),
            "card inserted (1.0 MiB)"
        );
    }

    #[test]
    fn the_medium_is_there_between_insert_and_removal_and_each_change_reported() {
        let (mut w, _) = watcher(&[true, true, true, false, false], false, MediaSlot::empty());
        samples(&mut w, 2);
        {
            let mut m = w.media.lock();
            assert!(m.media_present());
            assert_eq!(m.num_blocks(), 2048);
            assert!(m.take_media_changed(), "the LUN sees a medium change");
        }
        samples(&mut w, 3);
        let mut m = w.media.lock();
        assert!(!m.media_present());
        assert!(m.take_media_changed());
    }

    #[test]
    fn a_card_that_does_not_come_up_is_tried_once_per_insertion() {
        let (mut w, log) = watcher(
            &[true, true, true, true, false, false, true, true],
            true,
            MediaSlot::empty(),
        );
        let events = samples(&mut w, 8);
        assert_eq!(
            events[1],
            Some(SlotEvent::OpenFailed("CMD8 echo mismatch".to_string()))
        );
        assert_eq!(events[2..4], [None, None], "not retried while it stays in");
        assert_eq!(events[4..6], [Some(SlotEvent::Removed), None]);
        assert!(matches!(events[7], Some(SlotEvent::OpenFailed(_))));
        assert_eq!(*log.borrow(), ["open", "removed", "open"]);
        assert!(!w.media.lock().media_present());
    }

    #[test]
    fn a_card_present_at_start_is_not_opened_again() {
        let (mut w, log) = watcher(
            &[true, true, false, false],
            false,
            MediaSlot::with(Box::new(RamDisk::new(8).unwrap())),
        );
        assert_eq!(samples(&mut w, 2), [None, None]);
        assert!(log.borrow().is_empty());
        assert_eq!(samples(&mut w, 2), [Some(SlotEvent::Removed), None]);
    }

    #[test]
    fn at_start_up_a_card_is_taken_at_the_first_look() {
        let (mut w, log) = watcher(&[true, true, true], false, MediaSlot::empty());
        assert_eq!(w.check_now(), Some(SlotEvent::Inserted { bytes: 1 << 20 }));
        assert_eq!(w.check_now(), None, "already open");
        assert_eq!(w.sample(), None);
        assert_eq!(*log.borrow(), ["open"]);
        // A card that fails at start-up is not tried again while it stays in.
        let (mut w, log) = watcher(&[true, true, true], true, MediaSlot::empty());
        assert!(matches!(w.check_now(), Some(SlotEvent::OpenFailed(_))));
        assert_eq!(samples(&mut w, 2), [None, None]);
        assert_eq!(*log.borrow(), ["open"]);
        // No card: nothing.
        let (mut w, _) = watcher(&[false], false, MediaSlot::empty());
        assert_eq!(w.check_now(), None);
    }
}
