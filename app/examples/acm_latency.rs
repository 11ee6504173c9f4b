//! `acm_latency`: the real-PC benchmark's console latency probe (app/tests/pc/guest/bench.sh).
//! Sends `version` + CR to lunbox's serial console and times how long the answer takes to
//! arrive up to the next prompt, one line per command in milliseconds on stdout.
//!
//! `acm_latency TTY COUNT [MS]` times COUNT commands; `acm_latency TTY while PID [MS]` times
//! commands until process PID ends (the harness's dd). With MS, a command starts every MS
//! milliseconds (a busy user); without, each one as soon as the last was answered (the
//! heaviest load the console can get). The terminal must be raw already
//! (`stty -F TTY raw -echo`). A compiled probe instead of bash `read`s: the shell's per-byte
//! reads and process start-ups measured the shell, not lunbox.

use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// What ends the console's answer: the prompt `lunbox> `.
const PROMPT_END: u8 = b'>';
/// Longest wait for one answer.
const TIMEOUT: Duration = Duration::from_secs(5);

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let (tty, until, every) = match args.as_slice() {
        [_, tty, w, pid, rest @ ..] if w == "while" && rest.len() <= 1 => {
            match (pid.parse::<u32>(), every(rest)) {
                (Ok(p), Some(every)) => (tty, Until::ProcessEnds(p), every),
                _ => return usage(),
            }
        }
        [_, tty, count, rest @ ..] if rest.len() <= 1 => {
            match (count.parse::<u32>(), every(rest)) {
                (Ok(n), Some(every)) => (tty, Until::Count(n), every),
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
    while until.more(done) {
        if let Some(every) = every {
            let now = Instant::now();
            if next > now {
                std::thread::sleep(next - now);
            }
            next += every;
        }
        let t0 = Instant::now();
        if let Err(e) = port.write_all(b"version\r") {
            eprintln!("acm_latency: write: {e}");
            return ExitCode::FAILURE;
        }
        let mut byte = [0u8; 64];
        'answer: loop {
            if t0.elapsed() > TIMEOUT {
                eprintln!("acm_latency: no prompt within {TIMEOUT:?}");
                return ExitCode::FAILURE;
            }
            match port.read(&mut byte) {
                Ok(0) => {
                    eprintln!("acm_latency: {tty} closed");
                    return ExitCode::FAILURE;
                }
                Ok(n) => {
                    if byte[..n].contains(&PROMPT_END) {
                        break 'answer;
                    }
                }
                Err(e) => {
                    eprintln!("acm_latency: read: {e}");
                    return ExitCode::FAILURE;
                }
            }
        }
        let ms = t0.elapsed().as_secs_f64() * 1000.0;
        let _ = writeln!(out, "{ms:.3}");
        done += 1;
    }
    ExitCode::SUCCESS
}

/// When to stop.
enum Until {
    /// After this many commands.
    Count(u32),
    /// When this process has ended.
    ProcessEnds(u32),
}

impl Until {
    fn more(&self, done: u32) -> bool {
        match self {
            Until::Count(n) => done < *n,
            Until::ProcessEnds(pid) => running(*pid),
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
    eprintln!("usage: acm_latency TTY COUNT [MS] | acm_latency TTY while PID [MS]");
    ExitCode::FAILURE
}
