//! Firmware update end to end: images signed with `lunbox image sign`, downloaded with DFU
//! over USB/IP to the `firmware` target (the inactive A/B slot), refused when they should be
//! (tampered, wrong key, truncated, wrong board, downgrade) with nothing activated, booted
//! once after `reset`, kept with `fw confirm` or rolled back; lunbox killed (SIGKILL) at
//! random points of downloads, manifestation and boot always starts a valid image again;
//! and a confirm/rollback cycle with a second real build of lunbox that has another version.

mod common;

use common::{Host, be32, op_header, read_exact};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

const LUNBOX: &str = env!("CARGO_BIN_EXE_lunbox");
/// The version of the lunbox under test (no LUNBOX_FW_VERSION when the tests are built).
const OLD: &str = env!("CARGO_PKG_VERSION");

/// DFU status codes.
const OK: u8 = 0x00;
const ERR_TARGET: u8 = 0x01;
const ERR_FILE: u8 = 0x02;
const ERR_WRITE: u8 = 0x03;
const ERR_VERIFY: u8 = 0x07;
/// DFU states.
const DFU_IDLE: u8 = 2;
const DFU_ERROR: u8 = 10;

fn dev_key() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("keys/dev.key")
}

/// A fresh folder under the system's temporary directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("lunbox-update-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Run `lunbox image ARGS`: (success, stdout + stderr).
fn image_tool(args: &[&str]) -> (bool, String) {
    let out = Command::new(LUNBOX)
        .arg("image")
        .args(args)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

/// Sign `payload` with the dev key into `out`.
fn sign(payload: &Path, out: &Path, extra: &[&str]) {
    let key = dev_key();
    let mut args = vec!["sign", "--key", key.to_str().unwrap()];
    args.extend_from_slice(extra);
    args.push(payload.to_str().unwrap());
    args.push(out.to_str().unwrap());
    let (ok, text) = image_tool(&args);
    assert!(ok, "image sign: {text}");
}

/// A small payload that runs as lunbox: a shell script handing over to the boot loader's
/// executable (which then runs as the slot's firmware, LUNBOX_SLOT being set), padded to
/// `size` bytes with a comment.
fn script_payload(dir: &Path, name: &str, size: usize) -> PathBuf {
    let mut text = String::from("#!/bin/sh\nexec \"$LUNBOX_BOOT_EXE\" \"$@\"\n#");
    while text.len() < size - 1 {
        text.push((b'a' + (text.len() % 26) as u8) as char);
    }
    text.push('\n');
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// A lunbox process driven over its console (stdin) with its stdout and stderr read as
/// lines.
struct Lunbox {
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<String>,
    addr: SocketAddr,
    /// Everything printed so far (for failure messages).
    seen: Vec<String>,
    marker: u32,
}

impl Lunbox {
    fn start(dir: &Path) -> Lunbox {
        Lunbox::start_exe(LUNBOX, dir)
    }

    fn start_exe(exe: &str, dir: &Path) -> Lunbox {
        let mut child = Command::new(exe)
            .args(["--listen", "127.0.0.1:0", "--ram-mib", "1", "--state-dir"])
            .arg(dir)
            .env_remove("LUNBOX_SLOT")
            .env_remove("LUNBOX_BOOT_EXE")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, lines) = channel();
        let out = child.stdout.take().unwrap();
        let err = child.stderr.take().unwrap();
        for (stream, tx) in [
            (Box::new(out) as Box<dyn Read + Send>, tx.clone()),
            (Box::new(err), tx),
        ] {
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines() {
                    let Ok(line) = line else { break };
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
        }
        let stdin = child.stdin.take().unwrap();
        let mut lb = Lunbox {
            child,
            stdin,
            lines,
            addr: "127.0.0.1:0".parse().unwrap(),
            seen: Vec::new(),
            marker: 0,
        };
        lb.wait_started();
        lb
    }

    /// Wait for a line containing `what`; returns the lines up to it.
    fn wait_for(&mut self, what: &str) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut got = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    let done = line.contains(what);
                    got.push(line);
                    if done {
                        return got;
                    }
                }
                Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => panic!(
                    "never saw {what:?}; lunbox printed:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
    }

    /// Wait until a line containing `what` has been printed since line `mark` of
    /// [`Lunbox::seen`] (stdout and stderr are read separately: a log line may come after
    /// the banner that follows it).
    fn expect_since(&mut self, mark: usize, what: &str) {
        if !self.seen[mark..].iter().any(|l| l.contains(what)) {
            self.wait_for(what);
        }
    }

    /// Wait for the banner of a (re)started lunbox; returns what came before it.
    fn wait_started(&mut self) -> Vec<String> {
        let got = self.wait_for("USB/IP server on ");
        let line = got.last().unwrap();
        let rest = &line[line.find("USB/IP server on ").unwrap() + 17..];
        self.addr = rest.split(',').next().unwrap().parse().unwrap();
        got
    }

    /// Run a console command; returns its output.
    fn run(&mut self, cmd: &str) -> String {
        self.marker += 1;
        let end = format!("end-of-output-{}", self.marker);
        writeln!(self.stdin, "{cmd}\nhelp {end}").unwrap();
        self.stdin.flush().unwrap();
        let got = self.wait_for(&format!("'{end}'"));
        got[..got.len() - 1]
            .iter()
            .map(|l| l.trim_start_matches("lunbox> "))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Send a console line without waiting for anything.
    fn send(&mut self, line: &str) {
        writeln!(self.stdin, "{line}").unwrap();
        self.stdin.flush().unwrap();
    }

    /// SIGKILL, and wait for the process.
    fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// `exit`, and wait for the process.
    fn exit(mut self) {
        self.send("exit");
        let status = self.child.wait().unwrap();
        assert!(status.success(), "{}", self.seen.join("\n"));
    }

    /// Attach over USB/IP and find the DFU interface.
    fn dfu(&self) -> Dfu {
        let mut s = TcpStream::connect(self.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        s.set_nodelay(true).unwrap();
        let mut req = op_header(0x8003);
        let mut id = [0u8; 32];
        id[..3].copy_from_slice(b"1-1");
        req.extend_from_slice(&id);
        s.write_all(&req).unwrap();
        let head = read_exact(&mut s, 8);
        assert_eq!(be32(&head, 4), 0, "import");
        read_exact(&mut s, 0x138);
        let mut host = Host { s, seq: 0 };
        let head = host.control_in([0x80, 6, 0, 2, 0, 0, 9, 0]).unwrap();
        let t = u16::from_le_bytes([head[2], head[3]]).to_le_bytes();
        let config = host.control_in([0x80, 6, 0, 2, 0, 0, t[0], t[1]]).unwrap();
        host.control_out([0, 9, 1, 0, 0, 0, 0, 0]).unwrap();
        let mut at = 0;
        while at < config.len() {
            let d = &config[at..at + usize::from(config[at])];
            if d[1] == 4 && d[5..8] == [0xFE, 1, 2] {
                return Dfu {
                    host,
                    iface: u16::from(d[2]),
                };
            }
            at += usize::from(config[at]);
        }
        panic!("no DFU interface");
    }
}

impl Drop for Lunbox {
    fn drop(&mut self) {
        if std::thread::panicking() {
            while let Ok(line) = self.lines.recv_timeout(Duration::from_millis(100)) {
                self.seen.push(line);
            }
            eprintln!("lunbox printed:\n{}", self.seen.join("\n"));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The DFU interface of an attached lunbox.
struct Dfu {
    host: Host,
    iface: u16,
}

/// Where a download stops early (to kill lunbox there).
#[derive(Debug, Clone, Copy)]
enum StopAt {
    /// Never: download the whole image and wait for the result.
    End,
    /// Before DNLOAD block N.
    Block(usize),
    /// Right after the zero-length DNLOAD that starts manifestation.
    Manifest,
}

impl Dfu {
    /// GETSTATUS: (status, state).
    fn status(&mut self) -> (u8, u8) {
        let i = self.iface.to_le_bytes();
        let s = self
            .host
            .control_in([0xA1, 3, 0, 0, i[0], i[1], 6, 0])
            .unwrap();
        (s[0], s[4])
    }

    /// Download `image` to the `firmware` target (alternate setting 0) as dfu-util does;
    /// returns the final (status, state), or `None` if stopped early.
    fn download(&mut self, image: &[u8], stop: StopAt) -> Option<(u8, u8)> {
        let i = self.iface.to_le_bytes();
        self.host
            .control_out([0x01, 11, 0, 0, i[0], i[1], 0, 0])
            .unwrap();
        let blocks: Vec<&[u8]> = image.chunks(256).chain(std::iter::once(&[][..])).collect();
        for (n, block) in blocks.iter().enumerate() {
            if let StopAt::Block(k) = stop
                && k == n
            {
                return None;
            }
            let len = (block.len() as u16).to_le_bytes();
            let setup = [0x21, 1, n as u8, (n >> 8) as u8, i[0], i[1], len[0], len[1]];
            self.host.send(0, false, setup, block.len() as u32, block);
            if block.is_empty() && matches!(stop, StopAt::Manifest) {
                return None;
            }
            let (st, _, _) = self.host.receive(false);
            assert_eq!(st, 0, "DNLOAD {n}");
            loop {
                let (status, state) = self.status();
                if status != OK {
                    return Some((status, state));
                }
                // Past dfuDNBUSY, dfuMANIFEST-SYNC and dfuMANIFEST.
                if state != 4 && state != 6 && state != 7 {
                    break;
                }
            }
        }
        Some(self.status())
    }

    /// CLRSTATUS (out of dfuERROR).
    fn clear(&mut self) {
        let i = self.iface.to_le_bytes();
        self.host
            .control_out([0x21, 4, 0, 0, i[0], i[1], 0, 0])
            .unwrap();
    }
}

/// Read the state record as key=value pairs.
fn record(state: &Path) -> Option<Vec<(String, String)>> {
    let text = std::fs::read_to_string(state.join("fw/state")).ok()?;
    assert!(
        text.starts_with("lunbox-fw-state 1\n") && text.ends_with("\nend\n"),
        "{text}"
    );
    Some(
        text.lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )
}

fn field(rec: &[(String, String)], key: &str) -> String {
    rec.iter().find(|(k, _)| k == key).unwrap().1.clone()
}

/// The payload of a signed image.
fn payload_of(image: &[u8]) -> &[u8] {
    &image[128..image.len() - 64]
}

#[test]
fn image_tools_keygen_sign_and_info() {
    let tmp = TempDir::new("tools");
    let dir = tmp.path();
    let d = dir.to_str().unwrap();
    // keygen: two files, the secret one private; it does not overwrite them.
    let (ok, text) = image_tool(&["keygen", "--out", d, "--name", "mine"]);
    assert!(ok, "{text}");
    let key = dir.join("mine.key");
    let public = dir.join("mine.pub");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(
        std::fs::read_to_string(&public)
            .unwrap()
            .contains("lunbox-ed25519-public ")
    );
    let (ok, text) = image_tool(&["keygen", "--out", d, "--name", "mine"]);
    assert!(!ok && text.contains("exists"), "{text}");
    // A payload that says which firmware it is: sign takes version and board from it.
    let payload = dir.join("payload");
    let mut bytes = b"\x7fELF...".to_vec();
    bytes.extend_from_slice(b"\0lunbox-fw-id:teensy41;3.4.5\0");
    bytes.extend((0..5000u32).map(|i| (i % 251) as u8));
    std::fs::write(&payload, &bytes).unwrap();
    let img = dir.join("p.img");
    let (ok, text) = image_tool(&[
        "sign",
        "--key",
        key.to_str().unwrap(),
        payload.to_str().unwrap(),
        img.to_str().unwrap(),
    ]);
    assert!(ok, "{text}");
    assert!(
        text.contains("lunbox firmware 3.4.5 for teensy41"),
        "{text}"
    );
    let signed = std::fs::read(&img).unwrap();
    assert_eq!(signed.len(), 128 + bytes.len() + 64);
    assert_eq!(&signed[..8], b"LUNBOXFW");
    assert_eq!(payload_of(&signed), &bytes[..]);
    // info: the fields; not valid with the built-in (dev) key, valid with its own key.
    let (ok, text) = image_tool(&["info", img.to_str().unwrap()]);
    assert!(!ok, "{text}");
    for want in [
        "version:   3.4.5",
        "board:     teensy41 (this build is sandbox-",
        &format!("payload:   {} bytes, sha256 ", bytes.len()),
        "flags:     none",
        "signature: INVALID: signature does not verify with the key (the built-in key (development)",
    ] {
        assert!(text.contains(want), "{want:?} in {text}");
    }
    let (ok, text) = image_tool(&[
        "info",
        "--pubkey",
        public.to_str().unwrap(),
        img.to_str().unwrap(),
    ]);
    assert!(ok, "{text}");
    assert!(text.contains("signature: valid (the key in"), "{text}");
    // Explicit version and board, the downgrade flag, the dev key: valid with the built-in key.
    sign(
        &payload,
        &img,
        &[
            "--version",
            "1.2.3",
            "--board",
            "sandbox-test",
            "--allow-downgrade",
        ],
    );
    let (ok, text) = image_tool(&["info", img.to_str().unwrap()]);
    assert!(ok, "{text}");
    assert!(text.contains("version:   1.2.3") && text.contains("flags:     allow-downgrade"));
    assert!(
        text.contains("signature: valid (the built-in key (development)"),
        "{text}"
    );
    // A payload that does not say its version needs --version.
    let plain = script_payload(dir, "plain", 300);
    let (ok, text) = image_tool(&[
        "sign",
        "--key",
        dev_key().to_str().unwrap(),
        plain.to_str().unwrap(),
        img.to_str().unwrap(),
    ]);
    assert!(!ok && text.contains("give --version"), "{text}");
    // Bad arguments and files.
    let (ok, text) = image_tool(&["info", plain.to_str().unwrap()]);
    assert!(
        !ok && text.contains("not a lunbox firmware image"),
        "{text}"
    );
    let (ok, text) = image_tool(&[
        "sign",
        "--key",
        public.to_str().unwrap(),
        plain.to_str().unwrap(),
        img.to_str().unwrap(),
    ]);
    assert!(
        !ok && text.contains("not a lunbox-ed25519-secret key file"),
        "{text}"
    );
    let (ok, text) = image_tool(&[
        "sign",
        "--key",
        key.to_str().unwrap(),
        "--board",
        "Teensy 4.1",
        "--version",
        "1.0.0",
        plain.to_str().unwrap(),
        img.to_str().unwrap(),
    ]);
    assert!(!ok && text.contains("--board Teensy 4.1"), "{text}");
    // The sandbox options do not mix with the image commands.
    let out = Command::new(LUNBOX)
        .args(["--ram-mib", "2", "image", "info", "x"])
        .output()
        .unwrap();
    assert!(!out.status.success());
}

#[test]
fn refused_images_are_reported_as_dfu_statuses_and_activate_nothing() {
    let tmp = TempDir::new("refused");
    let dir = tmp.path();
    let state = dir.join("state");
    let payload = script_payload(dir, "payload", 3000);
    let good = dir.join("good.img");
    sign(&payload, &good, &["--version", "7.0.0"]);
    let good = std::fs::read(&good).unwrap();

    let mut tampered_payload = good.clone();
    tampered_payload[128 + 1000] ^= 0x20;
    // The header says 7.1.0 instead of 7.0.0: the signature no longer matches.
    let mut tampered_header = good.clone();
    tampered_header[20] = 1;
    let mut bad_signature = good.clone();
    *bad_signature.last_mut().unwrap() ^= 1;
    let (ok, text) = image_tool(&["keygen", "--out", dir.to_str().unwrap(), "--name", "other"]);
    assert!(ok, "{text}");
    let other_key = dir.join("other.img");
    let (ok, text) = image_tool(&[
        "sign",
        "--key",
        dir.join("other.key").to_str().unwrap(),
        "--version",
        "7.0.0",
        payload.to_str().unwrap(),
        other_key.to_str().unwrap(),
    ]);
    assert!(ok, "{text}");
    let other_key = std::fs::read(&other_key).unwrap();
    let truncated = good[..good.len() - 100].to_vec();
    let mut trailing = good.clone();
    trailing.extend_from_slice(b"more");
    let board = dir.join("board.img");
    sign(
        &payload,
        &board,
        &["--version", "7.0.0", "--board", "teensy41"],
    );
    let board = std::fs::read(&board).unwrap();
    let older = dir.join("older.img");
    sign(&payload, &older, &["--version", "0.0.1"]);
    let older = std::fs::read(&older).unwrap();
    let garbage: Vec<u8> = (0..2000u32).map(|i| (i * 7 % 256) as u8).collect();

    let mut lb = Lunbox::start(&state);
    let mut dfu = lb.dfu();
    let cases: [(&str, &[u8], u8); 9] = [
        ("tampered payload", &tampered_payload, ERR_VERIFY),
        ("tampered header", &tampered_header, ERR_VERIFY),
        ("bad signature", &bad_signature, ERR_VERIFY),
        ("wrong key", &other_key, ERR_VERIFY),
        ("truncated", &truncated, ERR_FILE),
        ("trailing bytes", &trailing, ERR_FILE),
        ("wrong board", &board, ERR_FILE),
        ("not an image", &garbage, ERR_FILE),
        ("downgrade", &older, ERR_TARGET),
    ];
    for (what, image, want) in cases {
        assert_eq!(
            dfu.download(image, StopAt::End),
            Some((want, DFU_ERROR)),
            "{what}"
        );
        dfu.clear();
        assert_eq!(dfu.status(), (OK, DFU_IDLE));
        let status = lb.run("fw status");
        assert!(
            status.contains("pending: none") && status.contains("slot a: empty"),
            "{what}: {status}"
        );
        assert!(record(&state).is_none(), "{what}: no state record written");
        assert!(!state.join("fw/slot-a.img").exists(), "{what}");
        assert!(!state.join("fw/slot-a.img.part").exists(), "{what}");
    }
    // The downgrade is taken once allowed from the console, and the good image as it is.
    assert!(
        lb.run("fw allow-downgrade on")
            .contains("downgrades allowed")
    );
    assert_eq!(dfu.download(&older, StopAt::End), Some((OK, DFU_IDLE)));
    let status = lb.run("fw status");
    assert!(
        status.contains("slot a: 0.0.1, pending") && status.contains("downgrades: allowed"),
        "{status}"
    );
    lb.run("fw allow-downgrade off");
    assert_eq!(
        dfu.download(&older, StopAt::End),
        Some((ERR_TARGET, DFU_ERROR))
    );
    dfu.clear();
    // The refused download left the pending image alone.
    let rec = record(&state).unwrap();
    assert_eq!(
        (field(&rec, "pending"), field(&rec, "version.a")),
        ("a".into(), "0.0.1".into())
    );
    assert_eq!(dfu.download(&good, StopAt::End), Some((OK, DFU_IDLE)));
    let rec = record(&state).unwrap();
    assert_eq!(
        (field(&rec, "pending"), field(&rec, "version.a")),
        ("a".into(), "7.0.0".into())
    );
    assert_eq!(std::fs::read(state.join("fw/slot-a.img")).unwrap(), good);
    // Nothing runs it before a reset.
    assert!(lb.run("version").contains("built-in program"));
    assert!(lb.run("help fw").contains("fw confirm"));
    lb.exit();
}

#[test]
fn a_new_firmware_runs_once_and_stays_only_if_it_confirms() {
    let tmp = TempDir::new("cycle");
    let dir = tmp.path();
    let state = dir.join("state");
    let one = dir.join("one.img");
    sign(
        &script_payload(dir, "one", 2000),
        &one,
        &["--version", "5.0.0"],
    );
    let one = std::fs::read(&one).unwrap();
    let two = dir.join("two.img");
    sign(
        &script_payload(dir, "two", 2500),
        &two,
        &["--version", "6.0.0"],
    );
    let two = std::fs::read(&two).unwrap();

    let mut lb = Lunbox::start(&state);
    assert!(lb.run("fw confirm").contains("nothing to confirm"));
    assert_eq!(lb.dfu().download(&one, StopAt::End), Some((OK, DFU_IDLE)));
    // reset: slot a runs once, on trial.
    let mark = lb.seen.len();
    lb.send("reset");
    lb.wait_started();
    lb.expect_since(mark, "trying slot a once");
    assert!(lb.run("version").contains("slot a"));
    let status = lb.run("fw status");
    assert!(
        status.contains("slot a: 5.0.0, active, on trial, running")
            && status.contains("falls back to the built-in program"),
        "{status}"
    );
    assert_eq!(
        std::fs::read(state.join("fw/slot-a.exe")).unwrap(),
        payload_of(&one)
    );
    // No download while on trial.
    assert_eq!(
        lb.dfu().download(&two, StopAt::End),
        Some((ERR_WRITE, DFU_ERROR))
    );
    // reset again without confirming: back to the built-in program.
    let mark = lb.seen.len();
    lb.send("reset");
    lb.wait_started();
    lb.expect_since(
        mark,
        "slot a did not confirm itself: falling back to the built-in program",
    );
    assert!(lb.run("version").contains("built-in program"));
    // Again, and this time it confirms: it stays, across resets and restarts.
    assert_eq!(lb.dfu().download(&one, StopAt::End), Some((OK, DFU_IDLE)));
    lb.send("reset");
    lb.wait_started();
    assert!(lb.run("fw confirm").contains("slot a ("));
    assert!(lb.run("fw confirm").contains("confirmed already"));
    lb.send("reset");
    lb.wait_started();
    assert!(lb.run("version").contains("slot a"));
    lb.exit();
    let mut lb = Lunbox::start(&state);
    assert!(
        lb.run("fw status")
            .contains("slot a: 5.0.0, active, confirmed, running")
    );
    // The next download goes to slot b; killed on trial, the start after falls back to a.
    assert_eq!(lb.dfu().download(&two, StopAt::End), Some((OK, DFU_IDLE)));
    assert!(lb.run("fw status").contains("slot b: 6.0.0, pending"));
    lb.send("reset");
    lb.wait_started();
    assert!(lb.run("version").contains("slot b"));
    assert!(lb.run("fw status").contains("falls back to slot a"));
    lb.kill();
    let mut lb = Lunbox::start(&state);
    lb.expect_since(0, "slot b did not confirm itself: falling back to slot a");
    assert!(lb.run("version").contains("slot a"));
    // A slot image damaged on disk is not run: the built-in program runs instead.
    lb.exit();
    let mut bytes = std::fs::read(state.join("fw/slot-a.img")).unwrap();
    bytes[300] ^= 1;
    std::fs::write(state.join("fw/slot-a.img"), bytes).unwrap();
    let mut lb = Lunbox::start(&state);
    lb.expect_since(0, "slot a is not bootable: payload SHA-256 does not match");
    assert!(lb.run("version").contains("built-in program"));
    let status = lb.run("fw status");
    assert!(
        status.contains("slot a: empty") && status.contains("active: built-in program"),
        "{status}"
    );
    lb.exit();
}

/// A small random number generator (xorshift64*), seeded from LUNBOX_TEST_SEED or the clock.
struct Rng(u64);

impl Rng {
    fn new() -> Rng {
        let seed = std::env::var("LUNBOX_TEST_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
                    | 1
            });
        eprintln!("LUNBOX_TEST_SEED={seed}");
        Rng(seed)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 16) % n
    }
}

/// After a start: what runs is a valid image: the built-in program, or a slot whose image
/// verifies, whose executable is that image's payload, and which the record names active.
fn check_valid_boot(lb: &mut Lunbox, state: &Path, images: &[Vec<u8>]) -> Option<char> {
    let version = lb.run("version");
    assert!(
        version.contains(&format!("lunbox {OLD} (sandbox-")),
        "{version}"
    );
    let status = lb.run("fw status");
    assert!(status.contains("pending: "), "{status}");
    let running = if version.contains("built-in program") {
        None
    } else if version.contains("slot a") {
        Some('a')
    } else {
        assert!(version.contains("slot b"), "{version}");
        Some('b')
    };
    if let Some(s) = running {
        let image = std::fs::read(state.join(format!("fw/slot-{s}.img"))).unwrap();
        assert!(
            images.contains(&image),
            "slot {s} holds one of the signed images"
        );
        let exe = std::fs::read(state.join(format!("fw/slot-{s}.exe"))).unwrap();
        assert_eq!(exe, payload_of(&image), "slot {s} runs its image's payload");
        let rec = record(state).unwrap();
        assert_eq!(field(&rec, "active"), s.to_string(), "{rec:?}");
    }
    let log = lb.seen.join("\n");
    assert!(
        !log.contains("unreadable") && !log.contains("cannot"),
        "{log}"
    );
    running
}

#[test]
fn killed_during_download_manifestation_or_boot_it_always_starts_a_valid_image() {
    const TRIALS: usize = 60;
    let tmp = TempDir::new("kill");
    let dir = tmp.path();
    let state = dir.join("state");
    let mut images = Vec::new();
    for (name, size) in [("x", 20_000), ("y", 28_000)] {
        let path = dir.join(format!("{name}.img"));
        sign(&script_payload(dir, name, size), &path, &["--version", OLD]);
        images.push(std::fs::read(&path).unwrap());
    }
    let mut rng = Rng::new();
    let mut lb = Lunbox::start(&state);
    let mut seen_slots = [0usize; 3];
    let mut outcomes = std::collections::BTreeMap::new();
    for trial in 0..TRIALS {
        // Often confirm a firmware on trial, so downloads are accepted again.
        if lb.run("fw status").contains("on trial") && rng.below(3) > 0 {
            assert!(lb.run("fw confirm").contains("confirmed"));
        }
        let image = &images[rng.below(2) as usize];
        let blocks = image.len().div_ceil(256) + 1;
        // The USB/IP connection stays open until the kill (closing it would abort the
        // download first).
        let mut dfu = lb.dfu();
        let what = match rng.below(4) {
            // In the middle of the download.
            0 => {
                let stop = rng.below(blocks as u64) as usize;
                let r = dfu.download(image, StopAt::Block(stop));
                format!("download block {stop}: {r:?}")
            }
            // During manifestation (it takes some 25 ms in a debug build: verification,
            // rename, two record writes).
            1 => {
                let r = dfu.download(image, StopAt::Manifest);
                std::thread::sleep(Duration::from_micros(rng.below(40_000)));
                format!("manifestation: {r:?}")
            }
            // During the boot after a complete download.
            2 => {
                let r = dfu.download(image, StopAt::End);
                lb.send("reset");
                std::thread::sleep(Duration::from_micros(rng.below(150_000)));
                format!("boot after {r:?}")
            }
            // Some time after a complete download.
            _ => {
                let r = dfu.download(image, StopAt::End);
                std::thread::sleep(Duration::from_micros(rng.below(5_000)));
                format!("after {r:?}")
            }
        };
        let kind = what.split([':', ' ']).next().unwrap().to_string();
        lb.kill();
        drop(dfu);
        lb = Lunbox::start(&state);
        let running = check_valid_boot(&mut lb, &state, &images);
        // What the start did tells roughly where the kill landed.
        let log = lb.seen.join("\n");
        let then = if log.contains("trying slot") {
            "tried a new slot"
        } else if log.contains("did not confirm") {
            "fell back"
        } else {
            "ran as before"
        };
        *outcomes.entry(format!("{kind}, then {then}")).or_insert(0) += 1;
        seen_slots[match running {
            None => 0,
            Some('a') => 1,
            Some(_) => 2,
        }] += 1;
        eprintln!("trial {trial}: killed at {what}; the next start {then}, running {running:?}");
    }
    lb.exit();
    eprintln!("kill points and outcomes: {outcomes:#?}\nstarts ran built-in/a/b: {seen_slots:?}");
    assert!(
        seen_slots[1] + seen_slots[2] > 0,
        "some starts ran a slot: {seen_slots:?}"
    );
}

/// A second build of lunbox, version 0.2.0: a release build (no debug info, stripped, so
/// its image downloads quickly) in its own target folder, target/update-test, which later
/// runs reuse.
fn second_build() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    static LOCK: Mutex<()> = Mutex::new(());
    let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    BUILT
        .get_or_init(|| {
            let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
            let target = workspace.join("target/update-test");
            let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
            let t = Instant::now();
            let status = Command::new(cargo)
                .current_dir(workspace)
                .args(["build", "--release", "-p", "lunbox", "--bin", "lunbox"])
                .arg("--target-dir")
                .arg(&target)
                .env("LUNBOX_FW_VERSION", "0.2.0")
                .env("CARGO_PROFILE_RELEASE_LTO", "false")
                .env("CARGO_PROFILE_RELEASE_CODEGEN_UNITS", "16")
                .env("CARGO_PROFILE_RELEASE_DEBUG", "false")
                .env("CARGO_PROFILE_RELEASE_STRIP", "true")
                .env_remove("LUNBOX_FW_PUBKEY")
                .env_remove("CARGO_TARGET_DIR")
                .env_remove("CARGO_BUILD_TARGET")
                .stdin(Stdio::null())
                .status()
                .unwrap();
            assert!(status.success(), "building lunbox 0.2.0 failed");
            eprintln!("lunbox 0.2.0 built in {:?}", t.elapsed());
            target.join("release/lunbox")
        })
        .clone()
}

#[test]
fn two_real_builds_confirm_or_roll_back() {
    let new_exe = second_build();
    let tmp = TempDir::new("builds");
    let dir = tmp.path();
    let state = dir.join("state");
    // Sign it: version and board come from the executable.
    let img = dir.join("lunbox-0.2.0.img");
    sign(&new_exe, &img, &[]);
    let (ok, text) = image_tool(&["info", img.to_str().unwrap()]);
    assert!(ok && text.contains("version:   0.2.0"), "{text}");
    let image = std::fs::read(&img).unwrap();
    let t = Instant::now();

    let mut lb = Lunbox::start(&state);
    assert!(lb.run("version").contains(&format!("lunbox {OLD} (")));
    assert_eq!(lb.dfu().download(&image, StopAt::End), Some((OK, DFU_IDLE)));
    assert!(lb.run("fw status").contains("slot a: 0.2.0, pending"));
    lb.send("reset");
    lb.wait_started();
    let v = lb.run("version");
    assert!(
        v.contains("lunbox 0.2.0 (sandbox-") && v.contains("slot a"),
        "{v}"
    );
    assert!(
        lb.run("fw status")
            .contains("running: 0.2.0 from slot a, on trial")
    );
    // Killed without confirming: the next start is the old version again.
    lb.kill();
    let mut lb = Lunbox::start(&state);
    lb.expect_since(
        0,
        "slot a did not confirm itself: falling back to the built-in program",
    );
    let v = lb.run("version");
    assert!(
        v.contains(&format!("lunbox {OLD} (")) && v.contains("built-in program"),
        "{v}"
    );
    // Download it again; this time the new version confirms itself and stays.
    assert_eq!(lb.dfu().download(&image, StopAt::End), Some((OK, DFU_IDLE)));
    lb.send("reset");
    lb.wait_started();
    assert!(lb.run("version").contains("lunbox 0.2.0"));
    assert!(lb.run("fw confirm").contains("slot a (0.2.0) confirmed"));
    // The new version refuses to go back to the old one (a downgrade).
    let old = dir.join("old.img");
    sign(&script_payload(dir, "old", 1000), &old, &["--version", OLD]);
    let old = std::fs::read(&old).unwrap();
    assert_eq!(
        lb.dfu().download(&old, StopAt::End),
        Some((ERR_TARGET, DFU_ERROR))
    );
    lb.exit();
    let mut lb = Lunbox::start(&state);
    let v = lb.run("version");
    assert!(v.contains("lunbox 0.2.0") && v.contains("slot a"), "{v}");
    lb.send("reset");
    lb.wait_started();
    assert!(
        lb.run("fw status")
            .contains("running: 0.2.0 from slot a, confirmed")
    );
    lb.exit();
    eprintln!("confirm/rollback cycle in {:?}", t.elapsed());
}
