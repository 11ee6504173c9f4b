//! The UMS function: a coroutine that serves one Bulk-Only command after another as
//! straight-line code (barebox `f_mass_storage.c` style): receive the CBW, decide the case,
//! move the data through double buffers while the storage works, send the CSW. It sleeps on
//! the pipe's completion whenever it waits for the bus.

use alloc::vec;
use alloc::vec::Vec;
use core::cmp::min;

use lunbox_platform::coroutine;
use lunbox_storage::{DeviceRef, StorageError};

use super::bot::{self, Cbw, Csw, CswStatus, Ending, Plan, Xfer};
use super::lun::Luns;
use super::pipe::{InXfer, OutXfer, Pipe};
use super::scsi::{self, Command, DecodeError, Sense, sense};
use alloc::rc::Rc;

/// Why the command in progress stopped.
enum Abort {
    /// Class reset, bus reset or reconfiguration: start again with the next CBW.
    Reset,
    /// The coroutine was asked to stop.
    Stop,
}

/// What a command needs after its checks.
enum Action {
    /// No data; the status.
    Status(Result<(), Sense>),
    /// Send these bytes (already cut to the allocation length).
    DataIn(Vec<u8>),
    /// Send blocks from the medium.
    Read {
        dev: DeviceRef,
        lba: u64,
        blocks: u64,
        bs: u32,
    },
    /// Receive blocks for the medium.
    Write {
        dev: DeviceRef,
        lba: u64,
        blocks: u64,
        bs: u32,
        fua: bool,
    },
    /// Receive blocks and compare them with the medium.
    Compare {
        dev: DeviceRef,
        lba: u64,
        blocks: u64,
        bs: u32,
    },
    /// Receive a MODE SELECT parameter list.
    ModeSelect { ten: bool, len: usize },
}

impl Action {
    fn device_xfer(&self) -> Xfer {
        match self {
            Action::Status(_) => Xfer::None,
            Action::DataIn(d) => Xfer::In(d.len() as u64),
            Action::Read { blocks, bs, .. } => Xfer::In(blocks * u64::from(*bs)),
            Action::Write { blocks, bs, .. } | Action::Compare { blocks, bs, .. } => {
                Xfer::Out(blocks * u64::from(*bs))
            }
            Action::ModeSelect { len, .. } => Xfer::Out(*len as u64),
        }
    }
}

/// The mass-storage function: run it as a coroutine with [`UmsFunction::run`].
pub struct UmsFunction {
    pipe: Rc<Pipe>,
    luns: Luns,
    /// Big buffers not posted.
    free: Vec<Vec<u8>>,
    buffer_size: usize,
    buffers: usize,
    mps: usize,
    epoch: u32,
}

impl UmsFunction {
    pub(crate) fn new(
        pipe: Rc<Pipe>,
        luns: Luns,
        buffer_size: usize,
        buffers: usize,
        mps: usize,
    ) -> Self {
        let free = (0..buffers).map(|_| vec![0u8; buffer_size]).collect();
        UmsFunction {
            pipe,
            luns,
            free,
            buffer_size,
            buffers,
            mps,
            epoch: 0,
        }
    }

    /// Serve commands until the coroutine is asked to stop
    /// ([`JoinHandle::request_stop`](lunbox_platform::coroutine::JoinHandle::request_stop)).
    pub fn run(mut self) {
        self.epoch = self.pipe.epoch.get();
        loop {
            match self.serve() {
                Ok(()) => {}
                Err(Abort::Reset) => self.recover(),
                Err(Abort::Stop) => return,
            }
        }
    }

    /// After an abort: take every buffer back, and after a bus reset raise POWER ON/RESET.
    fn recover(&mut self) {
        self.epoch = self.pipe.epoch.get();
        {
            let mut st = self.pipe.st.borrow_mut();
            let st = &mut *st;
            // pop loops, not drain: far less code in the firmware.
            let out_done = core::iter::from_fn(|| st.out_done.pop_front().map(|(b, _)| b));
            for b in core::mem::take(&mut st.in_done).into_iter().chain(out_done) {
                if b.len() == self.buffer_size && self.free.len() < self.buffers {
                    self.free.push(b);
                }
            }
        }
        if self.pipe.bus_reset.replace(false) {
            for lun in self.luns.borrow_mut().iter_mut() {
                lun.unit_attention = Some(sense::POWER_ON_RESET);
                lun.prevent = false;
            }
        }
    }

    /// Wait until `f` finds what it looks for in the pipe.
    fn wait<T>(&mut self, mut f: impl FnMut(&Pipe) -> Option<T>) -> Result<T, Abort> {
        let pipe = self.pipe.clone();
        loop {
            if coroutine::should_stop() {
                return Err(Abort::Stop);
            }
            if pipe.epoch.get() != self.epoch {
                return Err(Abort::Reset);
            }
            if let Some(v) = f(&pipe) {
                return Ok(v);
            }
            pipe.wake.wait_stoppable();
        }
    }

    /// Take sent buffers back into the pool.
    fn reclaim(&mut self) {
        let mut st = self.pipe.st.borrow_mut();
        while let Some(b) = st.in_done.pop() {
            if b.len() == self.buffer_size && self.free.len() < self.buffers {
                self.free.push(b);
            }
        }
    }

    /// A free big buffer, waiting for one to come back from the bus if needed.
    fn big_buffer(&mut self) -> Result<Vec<u8>, Abort> {
        self.reclaim();
        if let Some(b) = self.free.pop() {
            return Ok(b);
        }
        let size = self.buffer_size;
        let b = self.wait(|p| {
            let mut st = p.st.borrow_mut();
            let at = st.in_done.iter().position(|b| b.len() == size)?;
            Some(st.in_done.swap_remove(at))
        })?;
        Ok(b)
    }

    fn post_in(&self, buf: Vec<u8>, len: usize, zlp: bool) {
        self.pipe.st.borrow_mut().in_queue.push_back(InXfer {
            buf,
            len,
            pos: 0,
            zlp,
            stall: false,
        });
        self.pipe.wake_bus();
    }

    fn post_stall_in(&self) {
        let stall = InXfer {
            buf: Vec::new(),
            len: 0,
            pos: 0,
            zlp: false,
            stall: true,
        };
        self.pipe.st.borrow_mut().in_queue.push_back(stall);
        self.pipe.wake_bus();
    }

    fn stall_out(&self) {
        self.pipe.st.borrow_mut().stall_out = true;
        self.pipe.wake_bus();
    }

    fn post_out(&self, buf: Vec<u8>, want: usize) {
        self.pipe.st.borrow_mut().out_queue.push_back(OutXfer {
            buf,
            want,
            filled: 0,
        });
        self.pipe.wake_bus();
    }

    /// The next filled OUT buffer.
    fn take_out(&mut self) -> Result<(Vec<u8>, usize), Abort> {
        self.wait(|p| p.st.borrow_mut().out_done.pop_front())
    }

    /// Receive up to `want` bytes (one transfer) into a small buffer.
    fn receive_small(&mut self, want: usize) -> Result<Vec<u8>, Abort> {
        let room = want.max(1).next_multiple_of(self.mps);
        self.post_out(vec![0u8; room], want);
        let (mut buf, n) = self.take_out()?;
        buf.truncate(n);
        Ok(buf)
    }

    fn send_csw(&self, tag: u32, residue: u64, status: CswStatus) {
        let csw = Csw {
            tag,
            residue: u32::try_from(residue).unwrap_or(u32::MAX),
            status,
        };
        let bytes = csw.to_bytes();
        self.post_in(bytes.to_vec(), bytes.len(), false);
    }

    fn max_lun(&self) -> u8 {
        (self.luns.borrow().len().max(1) - 1) as u8
    }

    /// Serve one command: CBW, data, CSW.
    fn serve(&mut self) -> Result<(), Abort> {
        self.wait(|p| p.configured.get().then_some(()))?;
        let raw = self.receive_small(bot::CBW_LEN)?;
        let cbw = match Cbw::parse(&raw, self.max_lun()) {
            Ok(cbw) => cbw,
            Err(_) => {
                // Not valid or not meaningful: stall both endpoints until Reset Recovery.
                self.pipe.st.borrow_mut().wedged = true;
                self.pipe.wake_bus();
                let never: Result<(), Abort> = self.wait(|_| None);
                return never;
            }
        };
        let host = cbw.host();
        let lun = usize::from(cbw.lun);
        let action = match scsi::decode(&cbw.cb[..usize::from(cbw.cb_len)]) {
            Err(DecodeError::TooShort) => {
                // The command block is shorter than the command: a phase error.
                return self.refuse(&cbw, host);
            }
            Err(DecodeError::InvalidOpcode) => Action::Status(Err(sense::INVALID_OPCODE)),
            Err(DecodeError::InvalidField) => Action::Status(Err(sense::INVALID_FIELD_IN_CDB)),
            Ok(cmd) => self.prepare(lun, cmd)?,
        };
        let plan = bot::plan(host, action.device_xfer());
        let (moved, status) = match plan {
            Plan::Refuse => return self.refuse(&cbw, host),
            Plan::Run { moved, ending } => {
                let (done, result) = self.execute(lun, action, moved, false)?;
                self.finish_data(host, done, ending, result.is_err());
                let status = if result.is_ok() {
                    CswStatus::Passed
                } else {
                    CswStatus::Failed
                };
                self.set_sense(lun, result.err().unwrap_or(sense::NONE));
                (done, status)
            }
            Plan::Truncate { moved } => {
                let (done, _) = self.execute(lun, action, moved, true)?;
                (done, CswStatus::PhaseError)
            }
        };
        let expected = match host {
            Xfer::None => 0,
            Xfer::In(n) | Xfer::Out(n) => n,
        };
        self.send_csw(cbw.tag, expected - moved.min(expected), status);
        Ok(())
    }

    /// Cases 2, 3, 8, 10 (and a short command block): nothing moves, the host's data phase is
    /// ended with a stall, and the status is a phase error.
    fn refuse(&mut self, cbw: &Cbw, host: Xfer) -> Result<(), Abort> {
        let expected = match host {
            Xfer::In(n) => {
                self.post_stall_in();
                n
            }
            Xfer::Out(n) => {
                self.stall_out();
                n
            }
            Xfer::None => 0,
        };
        self.send_csw(cbw.tag, expected, CswStatus::PhaseError);
        Ok(())
    }

    /// End a data phase the command did not fill (`moved` bytes were moved).
    fn finish_data(&self, host: Xfer, moved: u64, ending: Ending, failed: bool) {
        match (host, ending) {
            (Xfer::In(h), _) if moved < h => {
                // A short packet already ended the transfer; otherwise stall Bulk-In.
                if failed || moved == 0 || moved.is_multiple_of(self.mps as u64) {
                    self.post_stall_in();
                }
            }
            (Xfer::Out(h), _) if moved < h => self.stall_out(),
            (_, Ending::ShortIn | Ending::ShortOut | Ending::Exact) => {}
        }
    }

    fn set_sense(&self, lun: usize, s: Sense) {
        if let Some(l) = self.luns.borrow_mut().get_mut(lun) {
            l.sense = s;
        }
    }

    /// Check a command against the LUN's state and decide what it needs.
    fn prepare(&mut self, lun: usize, cmd: Command) -> Result<Action, Abort> {
        use Action::*;
        // Medium changes the device itself reports (a card swapped behind a slot).
        let dev = self.luns.borrow()[lun].backend.clone();
        if let Some(d) = &dev
            && d.lock().take_media_changed()
        {
            self.luns.borrow_mut()[lun].unit_attention = Some(sense::MEDIUM_CHANGED);
        }
        // A pending unit attention fails every command but INQUIRY, REQUEST SENSE and
        // REPORT LUNS, once.
        if !matches!(
            cmd,
            Command::Inquiry { .. } | Command::RequestSense { .. } | Command::ReportLuns { .. }
        ) && let Some(ua) = self.luns.borrow_mut()[lun].unit_attention.take()
        {
            return Ok(Status(Err(ua)));
        }
        let (read_only_cfg, removable) = {
            let luns = self.luns.borrow();
            (luns[lun].read_only, luns[lun].removable)
        };
        // A device without a medium (an empty card slot) is no medium either.
        let geometry = dev.as_ref().and_then(|d| {
            let d = d.lock();
            d.media_present()
                .then(|| (d.num_blocks(), d.block_size(), d.is_read_only()))
        });
        let write_protected = read_only_cfg || geometry.is_some_and(|g| g.2);
        let medium = || match (&dev, geometry) {
            (Some(d), Some((blocks, bs, _))) => Ok((d.clone(), blocks, bs)),
            _ => Err(sense::MEDIUM_NOT_PRESENT),
        };
        let range = |lba: u64, n: u64, blocks: u64| match lba.checked_add(n) {
            Some(end) if end <= blocks => Ok(()),
            _ => Err(sense::LBA_OUT_OF_RANGE),
        };
        let cut = |mut v: Vec<u8>, alloc: usize| {
            v.truncate(alloc);
            DataIn(v)
        };
        Ok(match cmd {
            Command::TestUnitReady => Status(medium().map(|_| ())),
            Command::RequestSense { desc, alloc } => {
                let s = {
                    let mut luns = self.luns.borrow_mut();
                    let l = &mut luns[lun];
                    match l.unit_attention.take() {
                        Some(ua) => ua,
                        // Nothing reported yet: a LUN without a medium still says why it
                        // is not ready (SPC "pollable" sense).
                        None if geometry.is_none() && l.sense == sense::NONE => {
                            sense::MEDIUM_NOT_PRESENT
                        }
                        None => core::mem::take(&mut l.sense),
                    }
                };
                let data = if desc {
                    s.descriptor()
                } else {
                    s.fixed().to_vec()
                };
                cut(data, usize::from(alloc))
            }
            Command::Inquiry { evpd, page, alloc } => {
                let luns = self.luns.borrow();
                let l = &luns[lun];
                let data = if evpd {
                    match scsi::vpd(&l.identity, page) {
                        Some(d) => d,
                        None => return Ok(Status(Err(sense::INVALID_FIELD_IN_CDB))),
                    }
                } else {
                    scsi::inquiry(&l.identity, l.removable, true)
                };
                cut(data, usize::from(alloc))
            }
            Command::ModeSense {
                ten,
                pc,
                page,
                subpage,
                alloc,
            } => {
                if pc == 3 {
                    return Ok(Status(Err(sense::SAVING_NOT_SUPPORTED)));
                }
                match scsi::mode_sense(
                    ten,
                    page,
                    subpage,
                    write_protected,
                    !write_protected,
                    pc == 1,
                ) {
                    Some(d) => cut(d, usize::from(alloc)),
                    None => Status(Err(sense::INVALID_FIELD_IN_CDB)),
                }
            }
            Command::ModeSelect { save, .. } if save => Status(Err(sense::SAVING_NOT_SUPPORTED)),
            Command::ModeSelect { ten, len, .. } => ModeSelect {
                ten,
                len: usize::from(len),
            },
            Command::StartStop { loej, start } => {
                Status(self.start_stop(lun, loej, start, removable)?)
            }
            Command::PreventAllow { prevent } => {
                if removable {
                    self.luns.borrow_mut()[lun].prevent = prevent;
                    Status(Ok(()))
                } else if prevent {
                    Status(Err(sense::INVALID_FIELD_IN_CDB))
                } else {
                    Status(Ok(()))
                }
            }
            Command::ReadFormatCapacities { alloc } => {
                let (blocks, bs) = geometry.map_or((0, lunbox_storage::BLOCK_SIZE), |g| (g.0, g.1));
                cut(
                    scsi::read_format_capacities(blocks, bs, geometry.is_some()),
                    usize::from(alloc),
                )
            }
            Command::ReadCapacity10 => match medium() {
                Ok((_, blocks, bs)) => DataIn(scsi::read_capacity_10(blocks, bs)),
                Err(s) => Status(Err(s)),
            },
            Command::ReadCapacity16 { alloc } => match medium() {
                Ok((_, blocks, bs)) => cut(scsi::read_capacity_16(blocks, bs), alloc as usize),
                Err(s) => Status(Err(s)),
            },
            Command::Read { lba, blocks: n } => match medium() {
                Err(s) => Status(Err(s)),
                Ok((dev, blocks, bs)) => match range(lba, u64::from(n), blocks) {
                    Err(s) => Status(Err(s)),
                    Ok(()) if n == 0 => Status(Ok(())),
                    Ok(()) => Read {
                        dev,
                        lba,
                        blocks: u64::from(n),
                        bs,
                    },
                },
            },
            Command::Write {
                lba,
                blocks: n,
                fua,
            } => match medium() {
                Err(s) => Status(Err(s)),
                Ok(_) if write_protected => Status(Err(sense::WRITE_PROTECTED)),
                Ok((dev, blocks, bs)) => match range(lba, u64::from(n), blocks) {
                    Err(s) => Status(Err(s)),
                    Ok(()) if n == 0 => Status(Ok(())),
                    Ok(()) => Write {
                        dev,
                        lba,
                        blocks: u64::from(n),
                        bs,
                        fua,
                    },
                },
            },
            Command::Verify {
                lba,
                blocks: n,
                compare,
            } => match medium() {
                Err(s) => Status(Err(s)),
                Ok((dev, blocks, bs)) => match range(lba, u64::from(n), blocks) {
                    Err(s) => Status(Err(s)),
                    Ok(()) if n == 0 => Status(Ok(())),
                    Ok(()) if compare => Compare {
                        dev,
                        lba,
                        blocks: u64::from(n),
                        bs,
                    },
                    Ok(()) => Status(self.verify_readable(&dev, lba, u64::from(n), bs)),
                },
            },
            Command::SyncCache => match medium() {
                Err(s) => Status(Err(s)),
                Ok((dev, ..)) => Status(dev.lock().flush().map_err(|e| medium_error(e, 0))),
            },
            Command::ReportLuns { alloc } => {
                let count = self.luns.borrow().len() as u8;
                cut(scsi::report_luns(0..count), alloc as usize)
            }
        })
    }

    /// START STOP UNIT: eject (LoEj, !Start) and load (LoEj, Start) on removable LUNs.
    fn start_stop(
        &mut self,
        lun: usize,
        loej: bool,
        start: bool,
        removable: bool,
    ) -> Result<Result<(), Sense>, Abort> {
        if !loej {
            return Ok(Ok(()));
        }
        if !removable {
            return Ok(Err(sense::INVALID_FIELD_IN_CDB));
        }
        if start {
            let mut luns = self.luns.borrow_mut();
            let l = &mut luns[lun];
            if l.backend.is_none()
                && let Some((dev, name)) = l.ejected.take()
            {
                l.backend = Some(dev);
                l.name = name;
            }
            return Ok(if l.backend.is_some() {
                Ok(())
            } else {
                Err(sense::MEDIUM_NOT_PRESENT)
            });
        }
        let (dev, prevent) = {
            let luns = self.luns.borrow();
            (luns[lun].backend.clone(), luns[lun].prevent)
        };
        if prevent {
            return Ok(Err(sense::REMOVAL_PREVENTED));
        }
        if let Some(dev) = dev {
            // An empty card slot has nothing to flush: it comes out as it is.
            let flushed = {
                let mut d = dev.lock();
                if d.media_present() { d.flush() } else { Ok(()) }
            };
            if let Err(e) = flushed {
                return Ok(Err(medium_error(e, 0)));
            }
            let mut luns = self.luns.borrow_mut();
            let l = &mut luns[lun];
            let name = core::mem::take(&mut l.name);
            l.backend = None;
            l.ejected = Some((dev, name));
        }
        Ok(Ok(()))
    }

    /// VERIFY with BYTCHK 0: read the blocks, report the first one that cannot be read.
    fn verify_readable(&mut self, dev: &DeviceRef, lba: u64, n: u64, bs: u32) -> Result<(), Sense> {
        let per = (self.buffer_size / bs as usize).max(1) as u64;
        let mut buf = vec![0u8; per as usize * bs as usize];
        let mut at = lba;
        while at < lba + n {
            let k = min(per, lba + n - at);
            let bytes = &mut buf[..(k * u64::from(bs)) as usize];
            dev.lock()
                .read(at, bytes)
                .map_err(|e| medium_error(e, at))?;
            at += k;
        }
        Ok(())
    }

    /// Run `action`, moving at most `limit` bytes; `truncated` (cases 7 and 13): move the
    /// bytes without completing the command. Returns the bytes moved and the status.
    fn execute(
        &mut self,
        lun: usize,
        action: Action,
        limit: u64,
        truncated: bool,
    ) -> Result<(u64, Result<(), Sense>), Abort> {
        let _ = lun;
        match action {
            Action::Status(result) => Ok((0, result)),
            Action::DataIn(mut data) => {
                let n = min(data.len() as u64, limit) as usize;
                data.truncate(n);
                self.post_in(data, n, false);
                Ok((n as u64, Ok(())))
            }
            Action::Read { dev, lba, bs, .. } => self.read_blocks(&dev, lba, bs, limit),
            Action::Write {
                dev, lba, bs, fua, ..
            } => {
                if truncated {
                    return Ok((self.drain_out(limit)?, Ok(())));
                }
                self.write_blocks(&dev, lba, bs, limit, fua)
            }
            Action::Compare { dev, lba, bs, .. } => {
                if truncated {
                    return Ok((self.drain_out(limit)?, Ok(())));
                }
                self.compare_blocks(&dev, lba, bs, limit)
            }
            Action::ModeSelect { ten, len } => {
                let want = min(len as u64, limit) as usize;
                let data = self.receive_small(want)?;
                if truncated {
                    return Ok((data.len() as u64, Ok(())));
                }
                let got = data.len().min(want);
                Ok((got as u64, scsi::check_mode_select(ten, &data[..got])))
            }
        }
    }

    /// Stream `limit` bytes from blocks at `lba`, two (or more) buffers in flight: while one
    /// is on the bus the next is read from the medium.
    fn read_blocks(
        &mut self,
        dev: &DeviceRef,
        lba: u64,
        bs: u32,
        limit: u64,
    ) -> Result<(u64, Result<(), Sense>), Abort> {
        let per = (self.buffer_size / bs as usize) as u64;
        let mut sent = 0u64;
        let mut at = lba;
        while sent < limit {
            let mut buf = self.big_buffer()?;
            let bytes = min(limit - sent, per * u64::from(bs));
            let blocks = bytes.div_ceil(u64::from(bs));
            let whole = (blocks * u64::from(bs)) as usize;
            if let Err(e) = dev.lock().read(at, &mut buf[..whole]) {
                self.free.push(buf);
                return Ok((sent, Err(medium_error(e, at))));
            }
            self.post_in(buf, bytes as usize, false);
            sent += bytes;
            at += blocks;
        }
        Ok((sent, Ok(())))
    }

    /// Receive `limit` bytes for blocks at `lba`, with up to all buffers posted ahead so the
    /// host keeps sending while the medium writes.
    fn write_blocks(
        &mut self,
        dev: &DeviceRef,
        lba: u64,
        bs: u32,
        limit: u64,
        fua: bool,
    ) -> Result<(u64, Result<(), Sense>), Abort> {
        let chunk = ((self.buffer_size / bs as usize) * bs as usize) as u64;
        let mut posted = 0u64;
        let mut done = 0u64;
        let mut at = lba;
        let mut error = None;
        while done < limit {
            // Keep the host busy: post every free buffer for what is still to come.
            self.reclaim();
            while posted < limit && error.is_none() {
                let Some(buf) = self.free.pop() else { break };
                let want = min(chunk, limit - posted);
                self.post_out(buf, want as usize);
                posted += want;
            }
            let (buf, got) = self.take_out()?;
            let want = min(chunk, limit - done) as usize;
            let got = got.min(want);
            if error.is_none() {
                // Whole blocks only (a short final packet cannot be written).
                let whole = got / bs as usize * bs as usize;
                if whole > 0
                    && let Err(e) = dev.lock().write(at, &buf[..whole])
                {
                    error = Some(medium_error(e, at));
                }
                at += (whole / bs as usize) as u64;
            }
            self.free.push(buf);
            done += got as u64;
            if got < want {
                break; // the host sent a short packet: it has no more
            }
            if error.is_some() && posted <= done {
                break;
            }
        }
        // Buffers still posted (after an error or a short transfer) come back unfilled.
        self.cancel_out();
        if error.is_none()
            && fua
            && let Err(e) = dev.lock().flush()
        {
            error = Some(medium_error(e, lba));
        }
        Ok((done, error.map_or(Ok(()), Err)))
    }

    /// Receive `limit` bytes and compare them with the blocks at `lba` (VERIFY, BYTCHK 1).
    fn compare_blocks(
        &mut self,
        dev: &DeviceRef,
        lba: u64,
        bs: u32,
        limit: u64,
    ) -> Result<(u64, Result<(), Sense>), Abort> {
        let chunk = ((self.buffer_size / bs as usize) * bs as usize) as u64;
        let mut done = 0u64;
        let mut at = lba;
        let mut result = Ok(());
        let mut medium = vec![0u8; chunk as usize];
        while done < limit {
            let buf = self.big_buffer()?;
            let want = min(chunk, limit - done) as usize;
            self.post_out(buf, want);
            let (buf, got) = self.take_out()?;
            let got = got.min(want);
            let whole = got / bs as usize * bs as usize;
            if result.is_ok() && whole > 0 {
                match dev.lock().read(at, &mut medium[..whole]) {
                    Err(e) => result = Err(medium_error(e, at)),
                    Ok(()) => {
                        if let Some(i) = (0..whole).find(|&i| medium[i] != buf[i]) {
                            // SBC: the information field holds the offset in the Data-Out
                            // buffer of the first byte that differs.
                            result = Err(sense::MISCOMPARE.at(done + i as u64));
                        }
                    }
                }
            }
            self.free.push(buf);
            at += (whole / bs as usize) as u64;
            done += got as u64;
            if got < want {
                break;
            }
        }
        Ok((done, result))
    }

    /// Receive and drop `limit` bytes (case 13).
    fn drain_out(&mut self, limit: u64) -> Result<u64, Abort> {
        let mut done = 0u64;
        while done < limit {
            let buf = self.big_buffer()?;
            let want = min(self.buffer_size as u64, limit - done) as usize;
            self.post_out(buf, want);
            let (buf, got) = self.take_out()?;
            self.free.push(buf);
            done += got.min(want) as u64;
            if got < want {
                break;
            }
        }
        Ok(done)
    }

    /// Take back OUT buffers posted but not needed any more.
    fn cancel_out(&mut self) {
        let mut st = self.pipe.st.borrow_mut();
        let st = &mut *st;
        while let Some(x) = st.out_queue.pop_front() {
            self.free.push(x.buf);
        }
        while let Some((b, _)) = st.out_done.pop_front() {
            self.free.push(b);
        }
    }
}

/// MEDIUM ERROR sense for a storage failure, with the failing block in the information field.
fn medium_error(e: StorageError, fallback_lba: u64) -> Sense {
    match e {
        StorageError::Io {
            lba,
            op: lunbox_storage::IoOp::Read,
            ..
        } => sense::READ_ERROR.at(lba),
        StorageError::Io { lba, .. } => sense::WRITE_ERROR.at(lba),
        StorageError::NoMedia => sense::MEDIUM_NOT_PRESENT,
        StorageError::ReadOnly => sense::WRITE_PROTECTED,
        StorageError::OutOfRange { .. } | StorageError::BadLength { .. } => {
            sense::LBA_OUT_OF_RANGE.at(fallback_lba)
        }
    }
}
