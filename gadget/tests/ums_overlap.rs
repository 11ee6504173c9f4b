//! Double buffering: while one buffer is on the bus the next is read from (or written to) the
//! medium. The medium here yields while it works, as an SD card does; the host keeps taking
//! (or giving) packets meanwhile.

mod common;

use std::cell::RefCell;
use std::rc::Rc;

use common::*;
use lunbox_gadget::testing::{DataPhase, HostPort};
use lunbox_gadget::ums::{CswStatus, LunConfig, UmsConfig};
use lunbox_platform::coroutine;
use lunbox_storage::{BlockDevice, StorageError, share};

/// A RAM disk that yields a few times inside every read and write, and records how many
/// packets crossed the bus while it was busy.
struct SlowDisk {
    data: Vec<u8>,
    port: Rc<RefCell<Option<HostPort>>>,
    /// Packets moved by the host during each call.
    during: Rc<RefCell<Vec<u64>>>,
}

impl SlowDisk {
    fn busy(&self) {
        let port = self.port.borrow().clone();
        let before = port.as_ref().map(|p| p.stats());
        for _ in 0..20 {
            coroutine::yield_now();
        }
        if let (Some(p), Some(b)) = (port, before) {
            let a = p.stats();
            self.during
                .borrow_mut()
                .push(a.packets_in + a.packets_out - b.packets_in - b.packets_out);
        }
    }
}

impl BlockDevice for SlowDisk {
    fn block_size(&self) -> u32 {
        512
    }
    fn num_blocks(&self) -> u64 {
        (self.data.len() / 512) as u64
    }
    fn read(&mut self, lba: u64, buf: &mut [u8]) -> Result<(), StorageError> {
        lunbox_storage::check_io(lba, buf.len(), 512, self.num_blocks())?;
        self.busy();
        let at = lba as usize * 512;
        buf.copy_from_slice(&self.data[at..at + buf.len()]);
        Ok(())
    }
    fn write(&mut self, lba: u64, buf: &[u8]) -> Result<(), StorageError> {
        lunbox_storage::check_io(lba, buf.len(), 512, self.num_blocks())?;
        self.busy();
        let at = lba as usize * 512;
        self.data[at..at + buf.len()].copy_from_slice(buf);
        Ok(())
    }
    fn flush(&mut self) -> Result<(), StorageError> {
        Ok(())
    }
    fn is_read_only(&self) -> bool {
        false
    }
}

#[test]
fn the_bus_moves_one_buffer_while_the_medium_works_on_the_next() {
    let port = Rc::new(RefCell::new(None));
    let during = Rc::new(RefCell::new(Vec::new()));
    let disk = SlowDisk {
        data: vec![0x42; 256 * 512],
        port: port.clone(),
        during: during.clone(),
    };
    let mut config = UmsConfig::new(vec![LunConfig::new(Some(share(disk)), "slow")]);
    config.buffer_size = 8192;
    config.max_packet = 512;
    with_ums(config, |r| {
        r.settle(0);
        *port.borrow_mut() = Some(r.host.port().clone());
        during.borrow_mut().clear();
        let read = r.cmd(0, &rw10(0x28, 0, 128), DataPhase::In(128 * 512));
        assert_eq!(read.csw.status, CswStatus::Passed);
        assert!(read.data.iter().all(|&b| b == 0x42));
        let reads = during.borrow().clone();
        assert_eq!(reads.len(), 8, "64 KiB in 8 KiB buffers");
        assert_eq!(
            reads[0], 0,
            "nothing to send before the first buffer is read"
        );
        assert!(
            reads[1..].iter().all(|&n| n > 0),
            "packets flowed during every later read: {reads:?}"
        );

        during.borrow_mut().clear();
        let data = vec![0x17u8; 64 * 512];
        let write = r.cmd(0, &rw10(0x2A, 0, 64), DataPhase::Out(&data));
        assert_eq!(write.csw.status, CswStatus::Passed);
        let writes = during.borrow().clone();
        assert_eq!(writes.len(), 4);
        assert!(
            writes[..3].iter().all(|&n| n > 0),
            "the host kept sending while the medium wrote: {writes:?}"
        );
        let back = r.cmd(0, &rw10(0x28, 0, 64), DataPhase::In(64 * 512));
        assert_eq!(back.data, data);
    });
}
