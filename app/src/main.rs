//! `lunbox`: the sandbox build — lunbox as a Linux program whose USB device a real kernel
//! attaches over USB/IP. See README.md.

mod sandbox;
mod state;
mod update;

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// lunbox: a USB mass-storage gadget appliance, here as a Linux program. Its USB device is
/// served over USB/IP: attach it with `sudo modprobe vhci-hcd && sudo usbip attach -r
/// 127.0.0.1 -b 1-1`. The console runs on stdin/stdout (type `help`).
#[derive(Parser, Debug)]
#[command(version = update::VERSION_STR, about, long_about = None)]
#[command(args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(flatten)]
    options: Options,

    #[command(subcommand)]
    command: Option<Command>,
}

/// Tools instead of running lunbox.
#[derive(Subcommand, Debug)]
enum Command {
    /// Firmware images: make a signing key, sign a firmware, inspect an image.
    #[command(subcommand)]
    Image(update::tool::ImageCommand),
}

/// How lunbox runs (the options without a subcommand).
#[derive(Args, Debug)]
pub(crate) struct Options {
    /// State directory: disk images and settings live here (created on first run, with a
    /// 64 MiB disk image holding a FAT32 partition).
    #[arg(long, default_value = "lunbox-state")]
    pub(crate) state_dir: PathBuf,

    /// Address to serve USB/IP on. Only loopback is allowed unless --allow-remote is given.
    #[arg(long, default_value = "127.0.0.1:3240")]
    pub(crate) listen: SocketAddr,

    /// Allow a non-loopback --listen address (anyone who reaches it can use the disks).
    #[arg(long)]
    pub(crate) allow_remote: bool,

    /// Size of the RAM disk exported as LUN 1, in MiB (0: none).
    #[arg(long, default_value_t = 16)]
    pub(crate) ram_mib: u64,

    /// Extra disk images to export as further LUNs (PATH, or PATH:ro for read-only).
    #[arg(long = "image", value_name = "PATH[:ro]")]
    pub(crate) images: Vec<String>,

    /// Run the coroutine runtime's self-test and exit.
    #[arg(long)]
    pub(crate) self_test: bool,
}

fn main() {
    let cli = Cli::parse();
    if let Some(Command::Image(cmd)) = cli.command {
        match update::tool::run(cmd) {
            Ok(true) => return,
            Ok(false) => std::process::exit(1),
            Err(e) => {
                eprintln!("lunbox image: {e}");
                std::process::exit(1);
            }
        }
    }
    let options = cli.options;
    if !options.self_test {
        // The boot loader's part: may run a firmware slot instead of this program.
        update::boot::start(&options.state_dir);
    }
    if options.self_test {
        match lunbox_platform::coroutine::self_test(1_000_000) {
            Ok(report) => {
                println!("{report}");
                return;
            }
            Err(e) => {
                eprintln!("self-test FAILED: {e}");
                std::process::exit(1);
            }
        }
    }
    if let Err(e) = sandbox::run(options) {
        eprintln!("lunbox: {e}");
        std::process::exit(1);
    }
}
