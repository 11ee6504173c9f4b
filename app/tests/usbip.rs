//! lunbox as a program, driven over USB/IP on 127.0.0.1 by a client written here from the
//! protocol description (independently of lunbox's own codec): list, import, enumerate, SCSI
//! reads and writes with the data checked, malformed input, a busy second import, reconnects.

mod common;

use common::{Host, be32, op_header, read_exact};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::Duration;

/// A lunbox process with a fresh state directory.
struct Lunbox {
    child: Child,
    stdin: ChildStdin,
    addr: SocketAddr,
    _dir: TempDir,
}

struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        if !self.0.as_os_str().is_empty() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

impl Lunbox {
    fn start(name: &str) -> Lunbox {
        let dir = std::env::temp_dir().join(format!("lunbox-usbip-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        Lunbox::start_in(dir)
    }

    fn start_in(dir: std::path::PathBuf) -> Lunbox {
        let mut child = Command::new(env!("CARGO_BIN_EXE_lunbox"))
            .args(["--listen", "127.0.0.1:0", "--ram-mib", "4", "--state-dir"])
            .arg(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut addr = None;
        for _ in 0..20 {
            let mut line = String::new();
            if out.read_line(&mut line).unwrap() == 0 {
                break;
            }
            if let Some(rest) = line.strip_prefix("USB/IP server on ") {
                addr = Some(rest.split(',').next().unwrap().parse().unwrap());
                break;
            }
        }
        // Keep draining stdout so lunbox never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut sink = Vec::new();
            let _ = out.read_to_end(&mut sink);
        });
        Lunbox {
            child,
            stdin,
            addr: addr.expect("lunbox printed its address"),
            _dir: TempDir(dir),
        }
    }

    fn console(&mut self, line: &str) {
        writeln!(self.stdin, "{line}").unwrap();
        self.stdin.flush().unwrap();
    }

    /// Exit and wait for the process; keeps the state directory.
    fn finish(mut self) -> std::path::PathBuf {
        let _ = writeln!(self.stdin, "exit");
        let _ = self.stdin.flush();
        let _ = self.child.wait();
        std::mem::replace(&mut self._dir.0, std::path::PathBuf::new())
    }

    fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(self.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.set_nodelay(true).unwrap();
        s
    }
}

impl Drop for Lunbox {
    fn drop(&mut self) {
        let _ = writeln!(self.stdin, "exit");
        let _ = self.stdin.flush();
        for _ in 0..50 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn devlist(lb: &Lunbox) -> Vec<u8> {
    let mut s = lb.connect();
    s.write_all(&op_header(0x8005)).unwrap();
    let mut all = Vec::new();
    s.read_to_end(&mut all).unwrap();
    all
}

/// Import 1-1; returns the stream in URB phase, or the import status.
fn import(lb: &Lunbox, busid: &str) -> Result<TcpStream, u32> {
    let mut s = lb.connect();
    let mut req = op_header(0x8003);
    let mut id = [0u8; 32];
    id[..busid.len()].copy_from_slice(busid.as_bytes());
    req.extend_from_slice(&id);
    s.write_all(&req).unwrap();
    let head = read_exact(&mut s, 8);
    assert_eq!(&head[..4], &[0x01, 0x11, 0x00, 0x03]);
    let status = be32(&head, 4);
    if status != 0 {
        return Err(status);
    }
    let dev = read_exact(&mut s, 0x138);
    assert_eq!(&dev[0x100..0x103], b"1-1");
    assert_eq!(be32(&dev, 0x128), 3, "high speed");
    Ok(s)
}

/// Bulk-Only on top of [`Host`].
struct Bot {
    host: Host,
    ep_in: u32,
    ep_out: u32,
    tag: u32,
}

#[derive(Debug)]
struct Reply {
    data: Vec<u8>,
    status: u8,
    residue: u32,
}

impl Bot {
    fn enumerate(mut host: Host) -> Bot {
        let dev = host.control_in([0x80, 6, 0, 1, 0, 0, 64, 0]).unwrap();
        assert_eq!((dev[0], dev[1]), (18, 1));
        assert_eq!(dev[7], 64);
        let head = host.control_in([0x80, 6, 0, 2, 0, 0, 9, 0]).unwrap();
        let total = u16::from_le_bytes([head[2], head[3]]);
        let t = total.to_le_bytes();
        let config = host.control_in([0x80, 6, 0, 2, 0, 0, t[0], t[1]]).unwrap();
        assert_eq!(config.len(), usize::from(total));
        let (mut ep_in, mut ep_out) = (0, 0);
        let mut at = 0;
        let mut in_msc = false;
        while at < config.len() {
            let d = &config[at..at + usize::from(config[at])];
            if d[1] == 4 {
                in_msc = d[5..8] == [8, 6, 0x50];
            }
            if d[1] == 5 && in_msc {
                assert_eq!(u16::from_le_bytes([d[4], d[5]]), 512, "high-speed bulk");
                if d[2] & 0x80 != 0 {
                    ep_in = u32::from(d[2] & 0x0F)
                } else {
                    ep_out = u32::from(d[2])
                }
            }
            at += usize::from(config[at]);
        }
        assert!(
            ep_in != 0 && ep_out != 0,
            "a Bulk-Only mass-storage interface"
        );
        host.control_out([0, 9, 1, 0, 0, 0, 0, 0]).unwrap();
        let max_lun = host.control_in([0xA1, 0xFE, 0, 0, 0, 0, 1, 0]).unwrap();
        assert_eq!(max_lun, [1], "two LUNs");
        Bot {
            host,
            ep_in,
            ep_out,
            tag: 0,
        }
    }

    fn clear_halt(&mut self, ep: u32) {
        self.host
            .control_out([0x02, 1, 0, 0, ep as u8, 0, 0, 0])
            .unwrap();
    }

    fn command(&mut self, lun: u8, cdb: &[u8], data_in: Option<u32>, out: &[u8]) -> Reply {
        self.tag += 1;
        let len = data_in.unwrap_or(out.len() as u32);
        let mut cbw = b"USBC".to_vec();
        cbw.extend_from_slice(&self.tag.to_le_bytes());
        cbw.extend_from_slice(&len.to_le_bytes());
        cbw.push(if data_in.is_some() { 0x80 } else { 0 });
        cbw.push(lun);
        cbw.push(cdb.len() as u8);
        let mut cb = [0u8; 16];
        cb[..cdb.len()].copy_from_slice(cdb);
        cbw.extend_from_slice(&cb);
        let (st, actual, _) = self.host.submit(self.ep_out, false, [0; 8], 31, &cbw);
        assert_eq!((st, actual), (0, 31), "CBW accepted");
        let mut data = Vec::new();
        if let Some(n) = data_in {
            let (st, _, d) = self.host.submit(self.ep_in, true, [0; 8], n, &[]);
            data = d;
            if st == -32 {
                self.clear_halt(0x80 | self.ep_in);
            }
        } else if !out.is_empty() {
            let (st, _, _) = self
                .host
                .submit(self.ep_out, false, [0; 8], out.len() as u32, out);
            if st == -32 {
                self.clear_halt(self.ep_out);
            }
        }
        let (mut st, _, mut csw) = self.host.submit(self.ep_in, true, [0; 8], 13, &[]);
        if st == -32 {
            self.clear_halt(0x80 | self.ep_in);
            (st, _, csw) = self.host.submit(self.ep_in, true, [0; 8], 13, &[]);
        }
        assert_eq!(st, 0);
        assert_eq!(&csw[..4], b"USBS");
        assert_eq!(u32::from_le_bytes(csw[4..8].try_into().unwrap()), self.tag);
        Reply {
            data,
            status: csw[12],
            residue: u32::from_le_bytes(csw[8..12].try_into().unwrap()),
        }
    }
}

fn rw10(op: u8, lba: u32, blocks: u16) -> [u8; 10] {
    let l = lba.to_be_bytes();
    let n = blocks.to_be_bytes();
    [op, 0, l[0], l[1], l[2], l[3], 0, n[0], n[1], 0]
}

#[test]
fn list_import_enumerate_and_move_data() {
    let lb = Lunbox::start("data");
    let list = devlist(&lb);
    assert_eq!(&list[..8], &[0x01, 0x11, 0x00, 0x05, 0, 0, 0, 0]);
    assert_eq!(be32(&list, 8), 1, "one device");
    assert_eq!(&list[12 + 0x100..12 + 0x103], b"1-1");
    assert_eq!(
        list[12 + 0x137],
        4,
        "interfaces: mass storage, ACM control, ACM data, DFU"
    );
    assert_eq!(&list[12 + 0x138..12 + 0x138 + 3], &[8, 6, 0x50]);
    assert_eq!(&list[12 + 0x13C..12 + 0x13C + 3], &[2, 2, 0]);
    assert_eq!(&list[12 + 0x144..12 + 0x144 + 3], &[0xFE, 1, 2]);
    assert_eq!(&list[12 + 0x144..12 + 0x144 + 3], &[0xFE, 1, 2]);

    let s = import(&lb, "1-1").expect("import");
    let mut bot = Bot::enumerate(Host { s, seq: 100 });
    // Power-on unit attention, then ready.
    assert_eq!(bot.command(0, &[0; 6], None, &[]).status, 1);
    assert_eq!(bot.command(0, &[0; 6], None, &[]).status, 0);
    let inq = bot.command(0, &[0x12, 0, 0, 0, 36, 0], Some(36), &[]);
    assert_eq!(&inq.data[8..14], b"lunbox");
    let cap = bot.command(0, &[0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0], Some(8), &[]);
    assert_eq!(
        u32::from_be_bytes(cap.data[..4].try_into().unwrap()),
        (64 << 11) - 1
    );
    // The default image: MBR, and a FAT32 boot sector at block 2048.
    let mbr = bot.command(0, &rw10(0x28, 0, 1), Some(512), &[]);
    assert_eq!(
        (mbr.data[510], mbr.data[511], mbr.data[446 + 4]),
        (0x55, 0xAA, 0x0C)
    );
    let vbr = bot.command(0, &rw10(0x28, 2048, 1), Some(512), &[]);
    assert_eq!(&vbr.data[82..90], b"FAT32   ");
    // Write and read back 300 KiB on the RAM LUN (many URB packets, several buffers).
    bot.command(1, &[0; 6], None, &[]);
    let data: Vec<u8> = (0..600 * 512).map(|i| (i * 31 % 251) as u8).collect();
    let w = bot.command(1, &rw10(0x2A, 100, 600), None, &data);
    assert_eq!((w.status, w.residue), (0, 0));
    let r = bot.command(1, &rw10(0x28, 100, 600), Some(600 * 512), &[]);
    assert_eq!((r.status, r.residue), (0, 0));
    assert!(r.data == data, "data read back over USB/IP");
    // The server reuses payload buffers from URB to URB: transfers of other sizes and contents
    // after those carry exactly their own bytes, both ways.
    for (i, blocks) in [240u16, 100, 7, 240, 1, 120].into_iter().enumerate() {
        let data: Vec<u8> = (0..usize::from(blocks) * 512)
            .map(|j| (j * 7 + i * 13) as u8)
            .collect();
        let lba = 2000 + 300 * i as u32;
        let w = bot.command(1, &rw10(0x2A, lba, blocks), None, &data);
        assert_eq!((w.status, w.residue), (0, 0), "write {i}");
        let r = bot.command(1, &rw10(0x28, lba, blocks), Some(data.len() as u32), &[]);
        assert_eq!((r.status, r.residue), (0, 0), "read {i}");
        assert!(r.data == data, "transfer {i} ({blocks} blocks) read back");
    }
    // Case 5 through the bridge: a short IN transfer then a stall and a clean CSW.
    let short = bot.command(1, &rw10(0x28, 0, 1), Some(4096), &[]);
    assert_eq!(
        (short.status, short.residue, short.data.len()),
        (0, 3584, 512)
    );
}

#[test]
fn busy_import_malformed_input_and_reattach() {
    let mut lb = Lunbox::start("robust");
    assert_eq!(
        import(&lb, "2-7").err(),
        Some(4),
        "unknown bus id: ST_NODEV"
    );
    let s = import(&lb, "1-1").unwrap();
    assert_eq!(
        import(&lb, "1-1").err(),
        Some(2),
        "second import while attached: ST_DEV_BUSY"
    );
    // Garbage on a fresh connection: closed, nothing else happens.
    let mut g = lb.connect();
    g.write_all(&[0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 0]).unwrap();
    let mut sink = Vec::new();
    assert_eq!(
        g.read_to_end(&mut sink).unwrap_or(0),
        0,
        "closed without a reply"
    );
    // The attached session still works.
    let mut bot = Bot::enumerate(Host { s, seq: 1 });
    bot.command(1, &[0; 6], None, &[]);
    assert_eq!(bot.command(1, &[0; 6], None, &[]).status, 0);
    // Start a write and drop the connection in the middle of it.
    let mut cbw = b"USBC".to_vec();
    cbw.extend_from_slice(&77u32.to_le_bytes());
    cbw.extend_from_slice(&(64u32 * 512).to_le_bytes());
    cbw.extend_from_slice(&[0, 1, 10]);
    let mut cb = [0u8; 16];
    cb[..10].copy_from_slice(&rw10(0x2A, 0, 64));
    cbw.extend_from_slice(&cb);
    bot.host.submit(bot.ep_out, false, [0; 8], 31, &cbw);
    drop(bot);
    std::thread::sleep(Duration::from_millis(100));
    // Attach again: a fresh session (power-on attention again, everything works).
    let s = import(&lb, "1-1").expect("re-import after a dropped session");
    let mut bot = Bot::enumerate(Host { s, seq: 5000 });
    assert_eq!(
        bot.command(1, &[0; 6], None, &[]).status,
        1,
        "unit attention after the reset"
    );
    assert_eq!(bot.command(1, &[0; 6], None, &[]).status, 0);
    // A URB for an endpoint that does not exist gets -EPROTO, and the session goes on.
    let (st, _, _) = bot.host.submit(9, true, [0; 8], 64, &[]);
    assert_eq!(st, -71);
    assert_eq!(bot.command(1, &[0; 6], None, &[]).status, 0);
    // A malformed URB header ends the session; lunbox keeps serving.
    bot.host.s.write_all(&[0u8; 48]).unwrap();
    let mut rest = Vec::new();
    let _ = bot.host.s.read_to_end(&mut rest);
    lb.console("lun");
    let s = import(&lb, "1-1").expect("re-import after a malformed header");
    let _bot = Bot::enumerate(Host { s, seq: 1 });
}

#[test]
fn unlink_of_a_pending_urb_and_of_an_answered_one() {
    let lb = Lunbox::start("unlink");
    let s = import(&lb, "1-1").unwrap();
    let mut bot = Bot::enumerate(Host { s, seq: 10 });
    // A bulk IN URB with nothing to send: it stays pending until unlinked.
    bot.host.seq += 1;
    let victim = bot.host.seq;
    let mut h = Vec::new();
    for v in [
        1u32,
        victim,
        0x0001_0002,
        1,
        bot.ep_in,
        0,
        13,
        0,
        0xffff_ffff,
        0,
    ] {
        h.extend_from_slice(&v.to_be_bytes());
    }
    h.extend_from_slice(&[0; 8]);
    bot.host.s.write_all(&h).unwrap();
    let mut unlink = Vec::new();
    for v in [2u32, 900, 0x0001_0002, 1, bot.ep_in, victim, 0, 0, 0, 0] {
        unlink.extend_from_slice(&v.to_be_bytes());
    }
    unlink.extend_from_slice(&[0; 8]);
    bot.host.s.write_all(&unlink).unwrap();
    let r = read_exact(&mut bot.host.s, 48);
    assert_eq!(
        (be32(&r, 0), be32(&r, 4), be32(&r, 20) as i32),
        (4, 900, -104),
        "RET_UNLINK -ECONNRESET, no RET_SUBMIT"
    );
    // Unlinking something already answered: status 0.
    unlink[4..8].copy_from_slice(&901u32.to_be_bytes());
    unlink[20..24].copy_from_slice(&3u32.to_be_bytes());
    bot.host.s.write_all(&unlink).unwrap();
    let r = read_exact(&mut bot.host.s, 48);
    assert_eq!((be32(&r, 0), be32(&r, 4), be32(&r, 20)), (4, 901, 0));
    // The session goes on.
    bot.command(0, &[0; 6], None, &[]);
    assert_eq!(bot.command(0, &[0; 6], None, &[]).status, 0);
}

#[test]
fn console_detach_disconnects_the_host_which_can_attach_again() {
    let mut lb = Lunbox::start("detach");
    let mut s = import(&lb, "1-1").unwrap();
    lb.console("detach");
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest);
    assert!(rest.is_empty(), "the connection was closed");
    let s = import(&lb, "1-1").expect("attach again");
    let mut bot = Bot::enumerate(Host { s, seq: 1 });
    bot.command(0, &[0; 6], None, &[]);
    assert_eq!(bot.command(0, &[0; 6], None, &[]).status, 0);
}

/// While no gadget runs the server still answers: no device listed, an import refused; a
/// gadget started again is listed and attaches.
#[test]
fn a_stopped_gadget_is_not_listed_and_not_imported() {
    let mut lb = Lunbox::start("unlisted");
    assert_eq!(
        be32(&devlist(&lb), 8),
        1,
        "one device while the gadget runs"
    );
    let mut attached = import(&lb, "1-1").unwrap();
    lb.console("usbgadget -d");
    let mut rest = Vec::new();
    let _ = attached.read_to_end(&mut rest);
    let list = devlist(&lb);
    assert_eq!(&list[..8], &[0x01, 0x11, 0x00, 0x05, 0, 0, 0, 0]);
    assert_eq!(be32(&list, 8), 0, "no device while stopped: {list:?}");
    assert_eq!(list.len(), 12, "and nothing after the count");
    assert_eq!(import(&lb, "1-1").err(), Some(4), "ST_NODEV");
    lb.console("usbgadget");
    // The console runs the command soon; the listing follows it.
    let mut devices = 0;
    for _ in 0..100 {
        devices = be32(&devlist(&lb), 8);
        if devices == 1 {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(devices, 1, "listed again once started");
    let s = import(&lb, "1-1").expect("attaches again");
    let mut bot = Bot::enumerate(Host { s, seq: 1 });
    bot.command(0, &[0; 6], None, &[]);
    assert_eq!(bot.command(0, &[0; 6], None, &[]).status, 0);
}

/// CPU time (user + system) lunbox has used, in clock ticks (USER_HZ: 100 per second).
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // After the command name: state is field 3, utime field 14, stime field 15.
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

#[test]
fn a_stopped_gadget_leaves_the_machine_idle_while_a_client_knocks() {
    let mut lb = Lunbox::start("stopped");
    let mut attached = import(&lb, "1-1").unwrap();
    lb.console("usbgadget -d");
    let mut rest = Vec::new();
    let _ = attached.read_to_end(&mut rest);
    assert!(rest.is_empty(), "stopping closed the attached client");
    // Nobody serves the listener now: this client waits in its queue, readable all along.
    let _knocking = lb.connect();
    let before = cpu_ticks(lb.child.id());
    std::thread::sleep(Duration::from_secs(1));
    let used = cpu_ticks(lb.child.id()) - before;
    assert!(
        used < 30,
        "lunbox used {used} ticks of 100 in a second while idle"
    );
}

#[test]
fn the_state_directory_is_created_once_and_reused() {
    let dir = std::env::temp_dir().join(format!("lunbox-usbip-state-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let lb = Lunbox::start_in(dir.clone());
    {
        let s = import(&lb, "1-1").unwrap();
        let mut bot = Bot::enumerate(Host { s, seq: 1 });
        bot.command(0, &[0; 6], None, &[]);
        let w = bot.command(0, &rw10(0x2A, 5000, 1), None, &[0x5C; 512]);
        assert_eq!(w.status, 0);
        let sync = bot.command(0, &[0x35, 0, 0, 0, 0, 0, 0, 0, 0, 0], None, &[]);
        assert_eq!(sync.status, 0);
    }
    let dir = lb.finish();
    let lb = Lunbox::start_in(dir.clone());
    let s = import(&lb, "1-1").unwrap();
    let mut bot = Bot::enumerate(Host { s, seq: 1 });
    bot.command(0, &[0; 6], None, &[]);
    let r = bot.command(0, &rw10(0x28, 5000, 1), Some(512), &[]);
    assert!(
        r.data.iter().all(|&b| b == 0x5C),
        "the write of the first run is still there"
    );
    drop(bot);
    let dir = lb.finish();
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn reset_runs_lunbox_again() {
    let dir = std::env::temp_dir().join(format!("lunbox-usbip-reset-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut child = Command::new(env!("CARGO_BIN_EXE_lunbox"))
        .args(["--listen", "127.0.0.1:0", "--ram-mib", "1", "--state-dir"])
        .arg(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    writeln!(stdin, "reset").unwrap();
    writeln!(stdin, "exit").unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert_eq!(
        text.matches("USB/IP server on").count(),
        2,
        "started twice: {text}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// Find the ACM interfaces' endpoints: (communications interface, bulk IN, bulk OUT).
fn acm_endpoints(host: &mut Host) -> (u16, u32, u32) {
    let head = host.control_in([0x80, 6, 0, 2, 0, 0, 9, 0]).unwrap();
    let t = u16::from_le_bytes([head[2], head[3]]).to_le_bytes();
    let config = host.control_in([0x80, 6, 0, 2, 0, 0, t[0], t[1]]).unwrap();
    let (mut comm, mut ep_in, mut ep_out, mut in_data) = (0, 0, 0, false);
    let mut at = 0;
    while at < config.len() {
        let d = &config[at..at + usize::from(config[at])];
        if d[1] == 4 {
            if d[5..8] == [2, 2, 0] {
                comm = u16::from(d[2]);
            }
            in_data = d[5] == 0x0A;
        }
        if d[1] == 5 && in_data {
            if d[2] & 0x80 != 0 {
                ep_in = u32::from(d[2] & 0x0F)
            } else {
                ep_out = u32::from(d[2])
            }
        }
        at += usize::from(config[at]);
    }
    (comm, ep_in, ep_out)
}

/// Import lunbox's device and open its serial port (DTR) as cdc-acm does: the host, and the
/// port's bulk IN and OUT endpoints.
fn open_serial_port(lb: &Lunbox) -> (Host, u32, u32) {
    let s = import(lb, "1-1").unwrap();
    let bot = Bot::enumerate(Host { s, seq: 1 });
    let mut host = bot.host;
    let (comm, ep_in, ep_out) = acm_endpoints(&mut host);
    let c = comm.to_le_bytes();
    let (st, _, _) = host.submit(0, false, [0x21, 0x22, 1, 0, c[0], c[1], 0, 0], 0, &[]);
    assert_eq!(st, 0);
    (host, ep_in, ep_out)
}

/// Read the serial port's IN endpoint into `seen` until it holds `what`.
fn read_until(host: &mut Host, ep_in: u32, seen: &mut Vec<u8>, what: &str) {
    for _ in 0..50 {
        if String::from_utf8_lossy(seen).contains(what) {
            return;
        }
        let (st, _, data) = host.submit(ep_in, true, [0; 8], 512, &[]);
        assert_eq!(st, 0);
        seen.extend_from_slice(&data);
    }
    panic!("never saw {what:?} in {:?}", String::from_utf8_lossy(seen));
}

#[test]
fn the_console_answers_on_the_usb_serial_port() {
    let lb = Lunbox::start("acm");
    // Opened, the console greets.
    let (mut host, ep_in, ep_out) = open_serial_port(&lb);
    let mut seen = Vec::new();
    read_until(&mut host, ep_in, &mut seen, "lunbox> ");
    seen.clear();
    let (st, _, _) = host.submit(ep_out, false, [0; 8], 4, b"lun\r");
    assert_eq!(st, 0);
    read_until(&mut host, ep_in, &mut seen, "ram0");
    let text = String::from_utf8_lossy(&seen).into_owned();
    assert!(text.starts_with("lun\r\n"), "echoed: {text:?}");
    assert!(
        text.contains("LUN  medium") && text.contains("img0"),
        "{text}"
    );
}

#[test]
fn a_key_s_echo_goes_out_with_the_completion_of_its_out_transfer() {
    let lb = Lunbox::start("echo");
    let (mut host, ep_in, ep_out) = open_serial_port(&lb);
    read_until(&mut host, ep_in, &mut Vec::new(), "lunbox> ");
    // As cdc-acm does: an IN transfer waits while a key is typed.
    let seq_in = host.send(ep_in, true, [0; 8], 512, &[]);
    let seq_out = host.send(ep_out, false, [0; 8], 1, b"v");
    let (cmd, seq, st, _) = host.read_reply(&[seq_in]);
    assert_eq!((cmd, seq, st), (3, seq_out, 0), "the key was taken");
    // The echo was sent in the same go: it is waiting on the socket already. (Sent apart, it
    // would usually follow within microseconds and still be there: this fails only when
    // lunbox runs slower than this client, as under strace.)
    host.s.set_nonblocking(true).unwrap();
    let mut peek = [0u8; 49];
    let waiting = host.s.peek(&mut peek).unwrap_or(0);
    host.s.set_nonblocking(false).unwrap();
    assert_eq!(waiting, 49, "the echo's reply came with the key's");
    let (cmd, seq, st, data) = host.read_reply(&[seq_in]);
    assert_eq!((cmd, seq, st, data.as_slice()), (3, seq_in, 0, &b"v"[..]));
}

#[test]
fn shell_commands_on_stdin() {
    let dir = std::env::temp_dir().join(format!("lunbox-shell-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let script = "help\nhelp lun\nversion\nlun\nlun ro 1\nlun\nlun rw 1\nlun eject 1\nlun\nlun insert 1\n\
                  lun add 1 img0.0 ro\nlun ro 0\nlun add 1 img0.0 ro\nlun\nlun rw 0\nlun remove 1\nlun rw 0\n\
                  lun add 1 img0 ro\nlun add 1 ram0\nlun 7 eject\nlun eject 9\n\
                  devinfo\npart img0\npart nosuch\nls img0.0\nls img0.0 /NODIR\ncat img0.0 README.TXT\n\
                  cat img0.0 MISSING.TXT\nthreads\nthreads -t\nfrobnicate\nhelp nosuch\n\
                  usbgadget -s\nusbgadget -S ram0()ro -a\nlun\nusbgadget -d\nlun\nusbgadget -S nosuch\n\
                  usbgadget -S ram0ro\nusbgadget -x\nusbgadget -a\nconfig\nconfig set acm=off\n\
                  config set bogus=1\nconfig set ums=img0(disk)fixed\nconfig save\nconfig default\n\
                  config load\nusbgadget\nusbgadget -s\nconfig default\nusbgadget -d\nusbgadget\nexit\n";
    let mut child = Command::new(env!("CARGO_BIN_EXE_lunbox"))
        .args(["--listen", "127.0.0.1:0", "--ram-mib", "2", "--state-dir"])
        .arg(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(out.status.success(), "{text}");
    for want in [
        "commands (help COMMAND for details):",
        "lun add N DEVICE [ro]",
        "lunbox 0.1.0",
        "1    ram0           2.0 MiB       ro,removable",
        "1    (none)         -             removable",
        "1    img0.0         63.0 MiB      ro,removable",
        // A disk and its partition on two LUNs only when both are read-only.
        "error: ums: LUNs 0 (img0) and 1 (img0.0) overlap: export it once, or make both \
         read-only (ro)",
        "error: ums: LUNs 0 and 1 both export img0: export it once",
        "error: wrong arguments",
        "error: '9' is not a LUN number: use 0 to 1",
        "img0.0         63.0 MiB",
        "img0: 1 partitions",
        "error: no device 'nosuch' (list them with devinfo)",
        "README.TXT",
        "This is a lunbox disk.",
        "error: MISSING.TXT: no such file or directory",
        "error: NODIR: no such file or directory",
        "switches/s",
        "error: unknown command 'frobnicate' (type 'help' for the list)",
        "error: no command 'nosuch'",
        "running: mass storage [img0,ram0], DFU [firmware(firmware),ram0()r], serial console on",
        "running: mass storage [ram0()ro], DFU [off], serial console on",
        "0    ram0           2.0 MiB       ro,removable",
        "the gadget is stopped",
        "error: mass storage is not running (start it: usbgadget -S LIST)",
        "no device 'nosuch'",
        "did you mean ram0()ro?",
        "error: unknown option '-x' (see help usbgadget)",
        "running: mass storage [off], DFU [off], serial console on",
        "ums=img0,ram0\ndfu=firmware(firmware),ram0()r\nacm=on",
        "changed (usbgadget runs it, config save keeps it)",
        "expected a key",
        "saved (slot 0, sequence 1)",
        "ums=img0(disk)fixed",
        "running: mass storage [img0(disk)fixed], DFU [firmware(firmware),ram0()r], serial console off",
    ] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }
    // After `config default` (an empty ums list) usbgadget exports the built-in LUNs again.
    // The first `usbgadget -s` showed it once; the last `usbgadget` shows it again.
    let builtin =
        "running: mass storage [img0,ram0], DFU [firmware(firmware),ram0()r], serial console on";
    assert_eq!(text.matches(builtin).count(), 2, "{text}");
}

#[test]
fn the_saved_configuration_starts_at_boot() {
    let dir = std::env::temp_dir().join(format!("lunbox-autostart-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let run = |script: &str| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_lunbox"))
            .args(["--listen", "127.0.0.1:0", "--ram-mib", "2", "--state-dir"])
            .arg(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(script.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success());
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
    };
    let first = run("config set ums=ram0(scratch)ro\nconfig set acm=off\nconfig save\nexit\n");
    assert!(first.contains("saved (slot 0, sequence 1)"), "{first}");
    let second = run("usbgadget -s\nexit\n");
    assert!(
        second.contains("running: mass storage [ram0(scratch)ro], DFU [firmware(firmware),ram0()r], serial console off"),
        "{second}"
    );
    // Autostart off: the gadget waits for usbgadget.
    let third = run("config set autostart=off\nconfig save\nexit\n");
    assert!(third.contains("sequence 2"), "{third}");
    let fourth = run("usbgadget -s\nusbgadget\nusbgadget -s\nexit\n");
    assert!(fourth.contains("the gadget is stopped"), "{fourth}");
    assert!(
        fourth.contains("running: mass storage [ram0(scratch)ro]"),
        "{fourth}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The DFU interface number.
fn dfu_interface(host: &mut Host) -> u16 {
    let head = host.control_in([0x80, 6, 0, 2, 0, 0, 9, 0]).unwrap();
    let t = u16::from_le_bytes([head[2], head[3]]).to_le_bytes();
    let config = host.control_in([0x80, 6, 0, 2, 0, 0, t[0], t[1]]).unwrap();
    let mut at = 0;
    while at < config.len() {
        let d = &config[at..at + usize::from(config[at])];
        if d[1] == 4 && d[5..8] == [0xFE, 1, 2] {
            return u16::from(d[2]);
        }
        at += usize::from(config[at]);
    }
    panic!("no DFU interface");
}

/// GETSTATUS: (status, state).
fn dfu_status(host: &mut Host, iface: u16) -> (u8, u8) {
    let i = iface.to_le_bytes();
    let s = host.control_in([0xA1, 3, 0, 0, i[0], i[1], 6, 0]).unwrap();
    (s[0], s[4])
}

/// Download `image` to alternate setting `alt` as dfu-util does; returns the final status.
fn dfu_download(host: &mut Host, iface: u16, alt: u8, image: &[u8]) -> (u8, u8) {
    let i = iface.to_le_bytes();
    host.control_out([0x01, 11, alt, 0, i[0], i[1], 0, 0])
        .unwrap();
    for (n, block) in image
        .chunks(4096)
        .chain(std::iter::once(&[][..]))
        .enumerate()
    {
        let len = (block.len() as u16).to_le_bytes();
        let (st, _, _) = host.submit(
            0,
            false,
            [0x21, 1, n as u8, (n >> 8) as u8, i[0], i[1], len[0], len[1]],
            block.len() as u32,
            block,
        );
        assert_eq!(st, 0, "DNLOAD {n}");
        // Poll until the block (or the manifestation) is done.
        loop {
            let (status, state) = dfu_status(host, iface);
            if status != 0 {
                return (status, state);
            }
            if state != 4 && state != 6 && state != 7 {
                break; // not dfuDNBUSY / dfuMANIFEST-SYNC / dfuMANIFEST
            }
        }
    }
    dfu_status(host, iface)
}

#[test]
fn dfu_downloads_land_in_the_ram_disk_and_the_firmware_file() {
    let lb = Lunbox::start("dfu");
    let s = import(&lb, "1-1").unwrap();
    let mut bot = Bot::enumerate(Host { s, seq: 1 });
    let iface = dfu_interface(&mut bot.host);
    // Alternate setting 1 is ram0 (the second default target).
    let image: Vec<u8> = (0..5000).map(|i| (i * 7 % 253) as u8).collect();
    assert_eq!(
        dfu_download(&mut bot.host, iface, 1, &image),
        (0, 2),
        "OK and back in dfuIDLE"
    );
    bot.command(1, &[0; 6], None, &[]);
    let r = bot.command(1, &rw10(0x28, 0, 10), Some(10 * 512), &[]);
    assert_eq!(&r.data[..5000], &image[..], "the image is on the RAM LUN");
    // Upload it back (the r flag).
    let i = iface.to_le_bytes();
    let up = bot
        .host
        .control_in([0xA1, 2, 0, 0, i[0], i[1], 0, 1])
        .unwrap();
    assert_eq!(&up[..], &image[..256]);
    bot.host
        .control_out([0x21, 6, 0, 0, i[0], i[1], 0, 0])
        .unwrap(); // ABORT
    // A URB with more data than its wLength, and a data stage larger than usb-device's
    // control buffer (wTransferSize, 4096): both refused (EPIPE), the device answers after.
    let (st, _, _) = bot
        .host
        .submit(0, false, [0x21, 1, 0, 0, i[0], i[1], 16, 0], 32, &[7; 32]);
    assert_eq!(st, -32, "more data than wLength");
    let (st, _, _) = bot.host.submit(
        0,
        false,
        [0x21, 1, 0, 0, i[0], i[1], 0x01, 0x10],
        4097,
        &[7; 4097],
    );
    assert_eq!(st, -32, "a data stage over wTransferSize");
    assert_eq!(
        dfu_status(&mut bot.host, iface),
        (0, 2),
        "still dfuIDLE, status OK"
    );
    // Alternate setting 0 is the firmware target (A/B slots, see tests/update.rs): it takes
    // only signed images, so these bytes are refused (errFILE) and nothing is written.
    let fw: Vec<u8> = (0..1000).map(|i| (i % 256) as u8).collect();
    assert_eq!(dfu_download(&mut bot.host, iface, 0, &fw), (0x02, 10));
    assert!(!lb._dir.0.join("fw/slot-a.img").exists());
}

#[test]
fn the_serial_console_survives_close_and_reopen_as_cdc_acm_does_them() {
    let lb = Lunbox::start("acm-reopen");
    let s = import(&lb, "1-1").unwrap();
    let bot = Bot::enumerate(Host { s, seq: 1 });
    let mut host = bot.host;
    let (comm, ep_in, ep_out) = acm_endpoints(&mut host);
    let c = comm.to_le_bytes();
    let dtr = |host: &mut Host, on: u8| {
        let (st, _, _) = host.submit(0, false, [0x21, 0x22, on, 0, c[0], c[1], 0, 0], 0, &[]);
        assert_eq!(st, 0);
    };
    // First open (like stty): DTR on, 16 read URBs queued, then close: unlink them, DTR off.
    dtr(&mut host, 1);
    let reads: Vec<u32> = (0..16)
        .map(|_| host.send(ep_in, true, [0; 8], 1024, &[]))
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    for (i, &r) in reads.iter().enumerate() {
        let mut u = Vec::new();
        for v in [2u32, 9000 + i as u32, 0x0001_0002, 1, ep_in, r, 0, 0, 0, 0] {
            u.extend_from_slice(&v.to_be_bytes());
        }
        u.extend_from_slice(&[0; 8]);
        host.s.write_all(&u).unwrap();
    }
    // Collect the replies to all that (RET_SUBMITs for URBs that got the greeting, RET_UNLINKs).
    let mut unlinks = 0;
    while unlinks < 16 {
        let (cmd, _, _, _) = host.read_reply(&reads);
        if cmd == 4 {
            unlinks += 1;
        }
    }
    dtr(&mut host, 0);
    // Second open (the program that talks): DTR on, read URBs, then type a command.
    dtr(&mut host, 1);
    let reads: Vec<u32> = (0..4)
        .map(|_| host.send(ep_in, true, [0; 8], 1024, &[]))
        .collect();
    let write = host.send(ep_out, false, [0; 8], 8, b"version\r");
    let mut seen = Vec::new();
    let mut wrote = false;
    let mut queued = reads.clone();
    for _ in 0..40 {
        if wrote && String::from_utf8_lossy(&seen).contains("lunbox 0") {
            break;
        }
        let (cmd, seq, status, data) = host.read_reply(&queued);
        assert_eq!(cmd, 3);
        if seq == write {
            assert_eq!(status, 0);
            wrote = true;
        } else {
            seen.extend_from_slice(&data);
            queued.push(host.send(ep_in, true, [0; 8], 1024, &[]));
        }
    }
    let text = String::from_utf8_lossy(&seen).into_owned();
    assert!(
        text.contains("(sandbox-"),
        "the command was answered after the reopen: {text:?}"
    );
}

#[test]
fn a_new_serial_session_starts_with_an_empty_line_and_a_delayed_greeting() {
    let lb = Lunbox::start("acm-session");
    let s = import(&lb, "1-1").unwrap();
    let bot = Bot::enumerate(Host { s, seq: 1 });
    let mut host = bot.host;
    let (comm, ep_in, ep_out) = acm_endpoints(&mut host);
    let c = comm.to_le_bytes();
    let dtr = |host: &mut Host, on: u8| {
        let (st, _, _) = host.submit(0, false, [0x21, 0x22, on, 0, c[0], c[1], 0, 0], 0, &[]);
        assert_eq!(st, 0);
    };
    // A session that leaves a half-typed line behind (no read URBs: nothing to unlink).
    dtr(&mut host, 1);
    let (st, _, _) = host.submit(ep_out, false, [0; 8], 5, b"garb ");
    assert_eq!(st, 0);
    std::thread::sleep(Duration::from_millis(100));
    dtr(&mut host, 0);
    // The console notices the close (a program's close and the next open are milliseconds
    // apart at least; with none between them the two sessions would read as one).
    std::thread::sleep(Duration::from_millis(100));
    // The next session: its first command is not prefixed with the old line.
    dtr(&mut host, 1);
    let opened = std::time::Instant::now();
    let reads: Vec<u32> = (0..4)
        .map(|_| host.send(ep_in, true, [0; 8], 1024, &[]))
        .collect();
    let mut queued = reads.clone();
    let mut seen = Vec::new();
    // The greeting comes, but not at once: a terminal sets raw mode just after opening. (The
    // echo of the old session's "garb " may come first: it was already in the IN endpoint.)
    loop {
        let (cmd, _, status, data) = host.read_reply(&queued);
        assert_eq!((cmd, status), (3, 0));
        seen.extend_from_slice(&data);
        if String::from_utf8_lossy(&seen).contains("console") {
            break;
        }
        queued.push(host.send(ep_in, true, [0; 8], 1024, &[]));
    }
    assert!(
        opened.elapsed() >= Duration::from_millis(80),
        "greeted after {:?}",
        opened.elapsed()
    );
    queued.push(host.send(ep_in, true, [0; 8], 1024, &[]));
    let write = host.send(ep_out, false, [0; 8], 8, b"version\r");
    let mut wrote = false;
    for _ in 0..40 {
        if wrote && String::from_utf8_lossy(&seen).contains("(sandbox-") {
            break;
        }
        let (cmd, seq, status, data) = host.read_reply(&queued);
        assert_eq!(cmd, 3);
        if seq == write {
            assert_eq!(status, 0);
            wrote = true;
        } else {
            seen.extend_from_slice(&data);
            queued.push(host.send(ep_in, true, [0; 8], 1024, &[]));
        }
    }
    let text = String::from_utf8_lossy(&seen).into_owned();
    assert!(text.contains("lunbox 0"), "the greeting: {text:?}");
    assert!(
        text.contains("(sandbox-") && !text.contains("unknown command"),
        "'version' ran on its own: {text:?}"
    );
}
