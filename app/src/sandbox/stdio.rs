//! The sandbox's own terminal: stdin and stdout (raw mode with echo on a terminal, plain
//! lines when piped).

use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::rc::Rc;

use lunbox::board::{Closed, Terminal};
use lunbox_platform::sandbox::{Source, os};

/// stdin/stdout as the console's terminal. On a tty it is in raw mode while this lives.
pub(crate) struct Stdio {
    tty: bool,
    _raw: Option<os::RawMode>,
    /// Reading failed for good: the console keeps serving the USB serial port.
    failed: bool,
    /// The idle hook's watch on stdin: stdin is read only when it was found readable, not
    /// each time the console wakes (the USB serial port wakes it too).
    source: Rc<Source>,
}

impl Stdio {
    /// Take over stdin: raw mode on a terminal, non-blocking reads. `source` watches stdin
    /// (its descriptor is added here) and wakes the console.
    pub(crate) fn new(source: Rc<Source>) -> Self {
        let fd = io::stdin().as_raw_fd();
        source.fds.borrow_mut().push(fd);
        // Input may be waiting already (a script piped in).
        source.mark_readable();
        let tty = os::is_terminal(fd);
        let raw = if tty {
            os::RawMode::enter(fd).ok()
        } else {
            None
        };
        if os::set_nonblocking(fd).is_err() {
            eprintln!(
                "lunbox: stdin cannot be made non-blocking; the console may stall the gadget"
            );
        }
        Stdio {
            tty,
            _raw: raw,
            failed: false,
            source,
        }
    }
}

impl Terminal for Stdio {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Closed> {
        if self.failed || !self.source.take_readable() {
            return Ok(0);
        }
        match io::stdin().lock().read(buf) {
            // The end of stdin ends lunbox (a script finished, or ^D).
            Ok(0) => Err(Closed),
            Ok(n) => {
                if n == buf.len() {
                    // There may be more: read again without waiting for the idle hook.
                    self.source.mark_readable();
                }
                Ok(n)
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                ) =>
            {
                Ok(0)
            }
            Err(e) => {
                eprintln!("lunbox: console input failed: {e}");
                self.failed = true;
                Ok(0)
            }
        }
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut stdout = io::stdout().lock();
        let _ = stdout.write_all(bytes);
        let _ = stdout.flush();
    }

    fn interactive(&self) -> bool {
        self.tty
    }
}
