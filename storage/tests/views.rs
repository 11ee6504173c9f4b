//! Views (partitions) never touch blocks outside their range, and read-only views refuse
//! writes; property-tested against a device that records every block it is asked for.

use std::cell::RefCell;
use std::rc::Rc;

use lunbox_platform::coroutine::Mutex;
use lunbox_storage::{BlockDevice, DeviceRef, RamDisk, StorageError, View, check_io, check_write};
use proptest::prelude::*;

/// A RAM disk that logs the blocks it reads and writes.
struct Recorder {
    inner: RamDisk,
    touched: Rc<RefCell<Vec<u64>>>,
}

impl BlockDevice for Recorder {
    fn block_size(&self) -> u32 {
        512
    }
    fn num_blocks(&self) -> u64 {
        self.inner.num_blocks()
    }
    fn read(&mut self, lba: u64, buf: &mut [u8]) -> Result<(), StorageError> {
        let n = check_io(lba, buf.len(), 512, self.num_blocks())?;
        self.touched.borrow_mut().extend(lba..lba + n);
        self.inner.read(lba, buf)
    }
    fn write(&mut self, lba: u64, buf: &[u8]) -> Result<(), StorageError> {
        let n = check_write(lba, buf.len(), 512, self.num_blocks(), false)?;
        self.touched.borrow_mut().extend(lba..lba + n);
        self.inner.write(lba, buf)
    }
    fn flush(&mut self) -> Result<(), StorageError> {
        Ok(())
    }
    fn is_read_only(&self) -> bool {
        false
    }
}

fn recorder(blocks: u64) -> (DeviceRef, Rc<RefCell<Vec<u64>>>) {
    let touched = Rc::new(RefCell::new(Vec::new()));
    let dev = Recorder {
        inner: RamDisk::new(blocks).unwrap(),
        touched: touched.clone(),
    };
    (Rc::new(Mutex::new(dev)), touched)
}

#[derive(Debug, Clone)]
enum Op {
    Read { lba: u64, count: u64 },
    Write { lba: u64, count: u64, fill: u8 },
}

fn op() -> impl Strategy<Value = Op> {
    let lba = prop_oneof![
        0u64..80,
        Just(u64::MAX),
        Just(u64::MAX - 1),
        (1u64 << 40)..(1u64 << 41)
    ];
    prop_oneof![
        (lba.clone(), 0u64..6).prop_map(|(lba, count)| Op::Read { lba, count }),
        (lba, 0u64..6, any::<u8>()).prop_map(|(lba, count, fill)| Op::Write { lba, count, fill }),
    ]
}

proptest! {
    #[test]
    fn views_stay_inside_their_range(
        disk in 1u64..64,
        start_frac in 0.0f64..1.0,
        len_frac in 0.0f64..1.0,
        read_only in any::<bool>(),
        ops in proptest::collection::vec(op(), 1..24),
    ) {
        let (parent, touched) = recorder(disk);
        let start = ((disk as f64) * start_frac) as u64;
        let len = (((disk - start) as f64) * len_frac) as u64;
        let mut view = View::new(parent.clone(), start, len, read_only).unwrap();
        prop_assert_eq!(view.num_blocks(), len);
        let before = {
            let mut all = vec![0u8; disk as usize * 512];
            parent.lock().read(0, &mut all).unwrap();
            all
        };
        touched.borrow_mut().clear();
        for op in ops {
            match op {
                Op::Read { lba, count } => {
                    let mut buf = vec![0u8; count as usize * 512];
                    let r = view.read(lba, &mut buf);
                    let inside = lba.checked_add(count).is_some_and(|e| e <= len);
                    prop_assert_eq!(r.is_ok(), inside, "read {} +{} of {}", lba, count, len);
                    if !inside {
                        prop_assert!(
                            matches!(r, Err(StorageError::OutOfRange { .. })),
                            "out-of-range read must fail as such: {:?}", r
                        );
                    }
                }
                Op::Write { lba, count, fill } => {
                    let buf = vec![fill; count as usize * 512];
                    let r = view.write(lba, &buf);
                    let inside = lba.checked_add(count).is_some_and(|e| e <= len);
                    if read_only {
                        prop_assert_eq!(r, Err(StorageError::ReadOnly));
                    } else {
                        prop_assert_eq!(r.is_ok(), inside);
                    }
                }
            }
        }
        for &b in touched.borrow().iter() {
            prop_assert!(b >= start && b < start + len, "block {} outside {}..{}", b, start, start + len);
        }
        // Outside the view nothing changed; a read-only view changed nothing at all.
        let mut after = vec![0u8; disk as usize * 512];
        parent.lock().read(0, &mut after).unwrap();
        let (s, e) = (start as usize * 512, (start + len) as usize * 512);
        prop_assert!(before[..s] == after[..s] && before[e..] == after[e..]);
        if read_only {
            prop_assert!(before == after);
        }
    }
}

#[test]
fn views_that_do_not_fit_the_parent_are_refused() {
    let (parent, _) = recorder(10);
    assert!(View::new(parent.clone(), 0, 10, false).is_some());
    assert!(View::new(parent.clone(), 10, 0, false).is_some());
    assert!(View::new(parent.clone(), 5, 6, false).is_none());
    assert!(View::new(parent.clone(), u64::MAX, 2, false).is_none());
    assert!(View::new(parent, 11, 0, false).is_none());
}

#[test]
fn a_view_of_a_read_only_device_is_read_only() {
    let mut ram = RamDisk::new(8).unwrap();
    ram.set_read_only(true);
    let parent: DeviceRef = Rc::new(Mutex::new(ram));
    let mut view = View::new(parent, 2, 4, false).unwrap();
    assert!(view.is_read_only());
    assert_eq!(view.write(0, &[0; 512]), Err(StorageError::ReadOnly));
    let mut buf = [1u8; 512];
    view.read(3, &mut buf).unwrap();
    assert_eq!(buf, [0; 512]);
}

#[test]
fn partial_blocks_are_refused() {
    let (parent, touched) = recorder(8);
    let mut view = View::new(parent, 0, 8, false).unwrap();
    let mut buf = [0u8; 100];
    assert_eq!(
        view.read(0, &mut buf),
        Err(StorageError::BadLength {
            len: 100,
            block_size: 512
        })
    );
    assert!(touched.borrow().is_empty());
}
