//! Every host OS call of the sandbox that std does not wrap, in one narrow module (like
//! barebox's `arch/sandbox/os/`): waiting on file descriptors, the terminal mode, and
//! re-executing the program.

use std::io;
use std::os::fd::RawFd;
use std::time::Duration;
use std::vec::Vec;

/// Wait until one of `fds` is readable or `timeout` passes (`None`: no limit). Returns which
/// are readable (or hung up, or in error: reading them will tell).
pub fn wait_readable(fds: &[RawFd], timeout: Option<Duration>) -> Vec<bool> {
    let mut pollfds: Vec<libc::pollfd> = fds
        .iter()
        .map(|&fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    let ms = match timeout {
        None => -1,
        // Round up: a timer due in 0.3 ms must not become a busy 0 ms poll.
        Some(t) => i32::try_from(t.as_micros().div_ceil(1000)).unwrap_or(i32::MAX),
    };
    // SAFETY: `pollfds` is a valid, exclusively borrowed array of `pollfds.len()` entries for
    // the duration of the call.
    let rc = unsafe { libc::poll(pollfds.as_mut_ptr(), pollfds.len() as libc::nfds_t, ms) };
    if rc <= 0 {
        return vec![false; fds.len()];
    }
    pollfds.iter().map(|p| p.revents != 0).collect()
}

/// One `recv(2)` of at most `max` bytes from socket `fd`, appended to `buf` without zeroing
/// its spare room first. `Ok(0)`: the peer closed the connection (for `max > 0`). A short
/// count means the socket had no more for now: a second call would fail with `EWOULDBLOCK`
/// (`Read::read_to_end` always makes it).
pub fn recv_into(fd: RawFd, buf: &mut Vec<u8>, max: usize) -> io::Result<usize> {
    buf.reserve(max);
    let spare = buf.spare_capacity_mut();
    let len = max.min(spare.len());
    loop {
        // SAFETY: `spare` is writable memory of at least `len` bytes owned by `buf`; recv
        // writes at most `len` bytes into it and nothing else.
        let rc = unsafe { libc::recv(fd, spare.as_mut_ptr().cast(), len, 0) };
        if rc >= 0 {
            let n = rc as usize;
            // SAFETY: recv initialised the first `n` (≤ `len` ≤ spare capacity) bytes after
            // the vector's length.
            unsafe { buf.set_len(buf.len() + n) };
            return Ok(n);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Whether `fd` is a terminal.
pub fn is_terminal(fd: RawFd) -> bool {
    // SAFETY: isatty only inspects the descriptor number.
    unsafe { libc::isatty(fd) == 1 }
}

/// A terminal put in raw mode (no line buffering, no echo); restored when dropped.
pub struct RawMode {
    fd: RawFd,
    saved: libc::termios,
}

impl RawMode {
    /// Put terminal `fd` in raw mode (characters arrive one by one, no echo, no signals from
    /// ^C: the shell handles them). Output processing stays on.
    pub fn enter(fd: RawFd) -> io::Result<RawMode> {
        // SAFETY: termios is plain data; tcgetattr fills it completely on success.
        let mut t: libc::termios = unsafe { std::mem::zeroed() };
        // SAFETY: `t` is a valid termios to write into.
        if unsafe { libc::tcgetattr(fd, &mut t) } != 0 {
            return Err(io::Error::last_os_error());
        }
        let saved = t;
        t.c_lflag &= !(libc::ICANON | libc::ECHO | libc::ISIG | libc::IEXTEN);
        t.c_iflag &= !(libc::IXON | libc::ICRNL);
        t.c_cc[libc::VMIN] = 1;
        t.c_cc[libc::VTIME] = 0;
        // SAFETY: `t` is a valid termios read from the same descriptor and adjusted.
        if unsafe { libc::tcsetattr(fd, libc::TCSANOW, &t) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(RawMode { fd, saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        // SAFETY: restores the settings read from this descriptor in `enter`.
        unsafe { libc::tcsetattr(self.fd, libc::TCSANOW, &self.saved) };
    }
}

/// Make `fd` non-blocking.
pub fn set_nonblocking(fd: RawFd) -> io::Result<()> {
    // SAFETY: fcntl with F_GETFL/F_SETFL only reads and sets descriptor flags.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: as above.
    if unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Replace this process with a fresh run of the same program and arguments (`reset`).
/// Returns only on failure.
pub fn reexec() -> io::Error {
    use std::os::unix::process::CommandExt;
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => return e,
    };
    std::process::Command::new(exe)
        .args(std::env::args_os().skip(1))
        .exec()
}

/// Whether `e` says the host ran out of a resource (file descriptors, socket buffers,
/// memory): trying again at once would fail the same way.
pub fn out_of_resources(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}
