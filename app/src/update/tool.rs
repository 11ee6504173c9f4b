//! `lunbox image …`: host tools for firmware images (keygen, sign, info).

use std::fs::{self, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use clap::Subcommand;

use super::image::{self, Board, FLAG_ALLOW_DOWNGRADE, HEADER_LEN, Header, Version};
use super::{BOARD, find_identity, keys};

/// Firmware image tools.
#[derive(Subcommand, Debug)]
pub(crate) enum ImageCommand {
    /// Make an Ed25519 signing key pair: NAME.key (secret, mode 600) and NAME.pub.
    Keygen {
        /// Folder to write the key files to.
        #[arg(long, default_value = ".")]
        out: PathBuf,
        /// File name stem.
        #[arg(long, default_value = "lunbox-fw")]
        name: String,
        /// Overwrite existing key files.
        #[arg(long)]
        force: bool,
    },
    /// Sign a firmware payload (a lunbox executable) into an image for the `firmware` DFU
    /// target.
    Sign {
        /// The secret key file (from `lunbox image keygen`; app/keys/dev.key for
        /// development builds).
        #[arg(long)]
        key: PathBuf,
        /// The payload's version, X.Y.Z (default: the version the payload says it is).
        #[arg(long)]
        version: Option<String>,
        /// The board the payload is for (default: the payload's board, else this build's).
        #[arg(long)]
        board: Option<String>,
        /// Let the image replace a newer firmware (the flag is signed into the image).
        #[arg(long)]
        allow_downgrade: bool,
        /// The payload.
        input: PathBuf,
        /// The image to write.
        output: PathBuf,
    },
    /// Show an image's header and whether its signature verifies (exit status 1 if not).
    Info {
        /// Check with this public key file instead of the key built into this program.
        #[arg(long)]
        pubkey: Option<PathBuf>,
        /// The image.
        file: PathBuf,
    },
}

/// Run an image command; `Ok(false)` when it ran but the answer is "no" (info: does not
/// verify).
pub(crate) fn run(cmd: ImageCommand) -> Result<bool, String> {
    match cmd {
        ImageCommand::Keygen { out, name, force } => keygen(&out, &name, force).map(|()| true),
        ImageCommand::Sign {
            key,
            version,
            board,
            allow_downgrade,
            input,
            output,
        } => sign(
            &key,
            version.as_deref(),
            board.as_deref(),
            allow_downgrade,
            &input,
            &output,
        )
        .map(|()| true),
        ImageCommand::Info { pubkey, file } => info(pubkey.as_deref(), &file),
    }
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    fs::read(path).map_err(|e| format!("{}: {e}", path.display()))
}

fn read_key(path: &Path, tag: &str) -> Result<[u8; 32], String> {
    let text = read(path)?;
    keys::parse(&text, tag.as_bytes())
        .ok_or_else(|| format!("{}: not a {tag} key file", path.display()))
}

fn write_new(path: &Path, text: &str, mode: u32, force: bool) -> Result<(), String> {
    let mut opts = OpenOptions::new();
    opts.write(true).mode(mode);
    if force {
        opts.create(true).truncate(true);
    } else {
        opts.create_new(true);
    }
    let mut f = opts.open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            format!("{} exists (--force overwrites it)", path.display())
        } else {
            format!("{}: {e}", path.display())
        }
    })?;
    f.write_all(text.as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(|e| format!("{}: {e}", path.display()))
}

fn keygen(out: &Path, name: &str, force: bool) -> Result<(), String> {
    let mut secret = [0u8; 32];
    fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut secret))
        .map_err(|e| format!("/dev/urandom: {e}"))?;
    let public = image::public_key(&secret);
    fs::create_dir_all(out).map_err(|e| format!("{}: {e}", out.display()))?;
    let key_path = out.join(format!("{name}.key"));
    let pub_path = out.join(format!("{name}.pub"));
    write_new(
        &key_path,
        &keys::secret_file(&secret, &public),
        0o600,
        force,
    )?;
    write_new(&pub_path, &keys::public_file(&public), 0o644, force)?;
    println!("secret key: {} (keep it secret)", key_path.display());
    println!("public key: {}", pub_path.display());
    println!(
        "build firmware that accepts images signed with it:\n    LUNBOX_FW_PUBKEY=\"$(cat {})\" cargo build --release",
        pub_path.display()
    );
    Ok(())
}

fn sign(
    key: &Path,
    version: Option<&str>,
    board: Option<&str>,
    allow_downgrade: bool,
    input: &Path,
    output: &Path,
) -> Result<(), String> {
    let secret = read_key(key, keys::SECRET_TAG)?;
    let payload = read(input)?;
    let mut ids = find_identity(&payload);
    ids.dedup();
    let identity = match ids.as_slice() {
        [one] => Some(*one),
        _ => None,
    };
    let version = match version {
        Some(v) => Version::parse(v).ok_or_else(|| format!("--version {v}: expected X.Y.Z"))?,
        None => identity.map(|(_, v)| v).ok_or_else(|| {
            format!(
                "{} does not say which version it is: give --version X.Y.Z",
                input.display()
            )
        })?,
    };
    let board = match board {
        Some(b) => Board::new(b).ok_or_else(|| {
            format!("--board {b}: 1-31 characters of a-z 0-9 - _ . (e.g. {BOARD}, teensy41)")
        })?,
        None => identity.map_or(BOARD, |(b, _)| b),
    };
    let flags = if allow_downgrade {
        FLAG_ALLOW_DOWNGRADE
    } else {
        0
    };
    let signed = image::sign(&payload, version, board, flags, &secret);
    let mut tmp = output.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    fs::write(&tmp, &signed)
        .and_then(|()| fs::rename(&tmp, output))
        .map_err(|e| format!("{}: {e}", output.display()))?;
    let public = image::public_key(&secret);
    println!(
        "{}: lunbox firmware {version} for {board}, payload {} bytes, {} bytes signed with key {}{}",
        output.display(),
        payload.len(),
        signed.len(),
        &keys::hex(&public)[..16],
        if public == keys::DEV_PUBLIC {
            " (the development key)"
        } else {
            ""
        }
    );
    Ok(())
}

fn info(pubkey: Option<&Path>, file: &Path) -> Result<bool, String> {
    let bytes = read(file)?;
    let header = Header::parse(&bytes).map_err(|e| format!("{}: {e}", file.display()))?;
    let (key, key_name) = match pubkey {
        Some(p) => (
            read_key(p, keys::PUBLIC_TAG)?,
            format!("the key in {}", p.display()),
        ),
        None => (
            keys::BUILTIN,
            String::from(if keys::BUILTIN_IS_DEV {
                "the built-in key (development)"
            } else {
                "the built-in key"
            }),
        ),
    };
    println!("file:      {} ({} bytes)", file.display(), bytes.len());
    println!("format:    {} (header {HEADER_LEN} bytes)", image::FORMAT);
    println!("version:   {}", header.version);
    println!(
        "board:     {}{}",
        header.board,
        if header.board == BOARD {
            String::new()
        } else {
            format!(" (this build is {BOARD})")
        }
    );
    println!(
        "payload:   {} bytes, sha256 {}",
        header.payload_len,
        header
            .sha256
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );
    println!(
        "flags:     {}",
        if header.allows_downgrade() {
            "allow-downgrade"
        } else {
            "none"
        }
    );
    let ok = match image::verify(&bytes, &key) {
        Ok(_) => {
            println!("signature: valid ({key_name} {})", &keys::hex(&key)[..16]);
            true
        }
        Err(e) => {
            println!(
                "signature: INVALID: {e} ({key_name} {})",
                &keys::hex(&key)[..16]
            );
            false
        }
    };
    Ok(ok)
}
