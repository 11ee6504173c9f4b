//! `acm_latency`: the real-PC benchmark's console latency probe (app/tests/pc/guest/bench.sh).
//! Times lunbox's serial console from the host's side, one line per exchange on stdout: the
//! milliseconds, then what was timed (`answer` or `echo`).
//!
//! - `acm_latency TTY COUNT [MS]`, `acm_latency TTY while PID [MS]`: whole commands. Sends
//!   `version` + CR and times the answer up to the next prompt; COUNT commands, or until
//!   process PID ends (the harness's dd). With MS, a command starts every MS milliseconds;
//!   without, each one as soon as the last was answered (the heaviest load the console can
//!   get).
//! - `acm_latency TTY keys while PID MS`: typing. Types `version` + CR one key every MS
//!   milliseconds and times each key's echo (the letters) and the answer (CR, up to the
//!   prompt).
//!
//! The terminal must be raw already, with reads that give up after a while:
//! `stty -F TTY raw -echo min 0 time 2` (a read returns what has arrived at once, or nothing
//! after 0.2 s, so that a console that stays silent fails the probe after [`TIMEOUT`] instead of
//! blocking it). A compiled probe instead of bash `read`s: the shell's per-byte reads and
//! process start-ups measured the shell, not lunbox.

use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// What ends the console's answer: the prompt `lunbox> `.
const PROMPT_END: u8 = b'>';
/// The command typed: its answer is short and costs lunbox nothing but the console.
const COMMAND: &[u8] = b"version\r";
/// Longest wait for one answer.
const TIMEOUT: Duration = Duration::from_secs(5);

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let (tty, keys, mut until, every) = match args.as_slice() {
        [_, tty, k, w, pid, ms] if k == "keys" && w == "while" => {
            match (pid.parse::<u32>(), every(std::slice::from_ref(ms))) {
                (Ok(p), Some(Some(every))) => (tty, true, Until::ProcessEnds(p, None), Some(every)),
                _ => return usage(),
            }
        }
        [_, tty, w, pid, rest @ ..] if w == "while" && rest.len() <= 1 => {
            match (pid.parse::<u32>(), every(rest)) {
                (Ok(p), Some(every)) => (tty, false, Until::ProcessEnds(p, None), every),
                _ => return usage(),
            }
        }
        [_, tty, count, rest @ ..] if rest.len() <= 1 => {
            match (count.parse::<u32>(), every(rest)) {
                (Ok(n), Some(every)) => (tty, false, Until::Count(n), every),
                _ => return usage(),
            }
        }
        _ => return usage(),
    };
    let mut port = match OpenOptions::new().read(true).write(true).open(tty) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("acm_latency: {tty}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut done = 0u32;
    let mut out = std::io::stdout().lock();
    let mut next = Instant::now();
    // Typing ends at the end of a line: the next run starts on an empty one.
    while until.more(done) || (keys && !(done as usize).is_multiple_of(COMMAND.len())) {
        if let Some(every) = every {
            let now = Instant::now();
            if next > now {
                std::thread::sleep(next - now);
            }
            next += every;
        }
        // What to type, and what ends its answer: a letter's echo, or the prompt.
        let typed: &[u8] = if keys {
            let i = done as usize % COMMAND.len();
            &COMMAND[i..=i]
        } else {
            COMMAND
        };
        let (end, what) = match typed {
            [key] if *key != b'\r' => (*key, "echo"),
            _ => (PROMPT_END, "answer"),
        };
        let t0 = Instant::now();
        if let Err(e) = port.write_all(typed) {
            eprintln!("acm_latency: write: {e}");
            return ExitCode::FAILURE;
        }
        if let Err(e) = wait_for(&mut port, end, t0) {
            eprintln!("acm_latency: {tty}: {e}");
            return ExitCode::FAILURE;
        }
        let ms = t0.elapsed().as_secs_f64() * 1000.0;
        let _ = writeln!(out, "{ms:.3} {what}");
        done += 1;
    }
    ExitCode::SUCCESS
}

/// Read from `port` until byte `end` arrives (bytes before it are dropped), for at most
/// [`TIMEOUT`] from `t0`. A read that returns nothing is the terminal's own read timeout (`time`
/// in stty), or a port that went away: either way the wait goes on until `TIMEOUT`.
fn wait_for(port: &mut std::fs::File, end: u8, t0: Instant) -> Result<(), String> {
    let mut buf = [0u8; 64];
    loop {
        if t0.elapsed() > TIMEOUT {
            return Err(format!("no answer within {TIMEOUT:?}"));
        }
        match port.read(&mut buf) {
            Ok(n) if buf[..n].contains(&end) => return Ok(()),
            // Nothing within the terminal's read timeout, or a port that hung up (which
            // returns at once): a short pause keeps the latter from spinning.
            Ok(0) => std::thread::sleep(Duration::from_millis(1)),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("read: {e}")),
        }
    }
}

/// How often the probe looks whether the process it runs beside has ended: reading
/// `/proc/PID/stat` is three system calls, and the probe's own load on the guest should be
/// its commands.
const PROCESS_CHECK: Duration = Duration::from_millis(20);

/// When to stop.
enum Until {
    /// After this many commands.
    Count(u32),
    /// When this process has ended (looked at every [`PROCESS_CHECK`]; when it was last).
    ProcessEnds(u32, Option<Instant>),
}

impl Until {
    fn more(&mut self, done: u32) -> bool {
        match self {
            Until::Count(n) => done < *n,
            Until::ProcessEnds(pid, last) => {
                if last.is_some_and(|t| t.elapsed() < PROCESS_CHECK) {
                    return true;
                }
                *last = Some(Instant::now());
                running(*pid)
            }
        }
    }
}

/// The optional MS argument: `Some(None)` without it, `None` if it is not a number.
fn every(rest: &[String]) -> Option<Option<Duration>> {
    match rest {
        [] => Some(None),
        [ms] => ms
            .parse::<u64>()
            .ok()
            .map(|ms| Some(Duration::from_millis(ms))),
        _ => None,
    }
}

/// Whether process `pid` still runs (a zombie, ended but not yet reaped by its parent, does
/// not).
fn running(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // `PID (COMM) STATE ...`: the state follows the last ')'.
    let state = stat
        .rfind(')')
        .and_then(|i| stat[i + 1..].split_whitespace().next());
    !matches!(state, None | Some("Z" | "X"))
}

fn usage() -> ExitCode {
    eprintln!(
        "usage: acm_latency TTY COUNT [MS] | acm_latency TTY while PID [MS] | \
         acm_latency TTY keys while PID MS"
    );
    ExitCode::FAILURE
}
