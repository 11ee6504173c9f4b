//! Signing key files (writing them: `lunbox image keygen`) and the public key built into the
//! firmware. The key file format, its parser and the built-in key ([`BUILTIN`], set by
//! `LUNBOX_FW_PUBKEY` at build time, else `app/keys/dev.pub`) are `lunbox_update::keys`, which
//! the board's firmware uses too; this module adds the host side.

pub(crate) use lunbox_update::keys::{
    BUILTIN, BUILTIN_IS_DEV, DEV_PUBLIC, PUBLIC_TAG, SECRET_TAG, parse,
};

/// The hex digits of a key.
pub(crate) fn hex(key: &[u8; 32]) -> String {
    key.iter().map(|b| format!("{b:02x}")).collect()
}

/// A secret key file's text.
pub(crate) fn secret_file(secret: &[u8; 32], public: &[u8; 32]) -> String {
    format!(
        "# lunbox firmware signing key (Ed25519 secret). Keep it secret: whoever has it can\n\
         # sign firmware that devices built with the matching public key will run.\n\
         # public key: {}\n\
         {SECRET_TAG} {}\n",
        hex(public),
        hex(secret)
    )
}

/// A public key file's text.
pub(crate) fn public_file(public: &[u8; 32]) -> String {
    format!(
        "# lunbox firmware verification key (Ed25519 public). Build the firmware with it:\n\
         # LUNBOX_FW_PUBKEY=\"$(cat THIS_FILE)\" cargo build --release\n\
         {PUBLIC_TAG} {}\n",
        hex(public)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_files_round_trip() {
        let secret = [0x5a; 32];
        let public = crate::update::image::public_key(&secret);
        let s = secret_file(&secret, &public);
        let p = public_file(&public);
        assert_eq!(parse(s.as_bytes(), SECRET_TAG.as_bytes()), Some(secret));
        assert_eq!(parse(p.as_bytes(), PUBLIC_TAG.as_bytes()), Some(public));
        // The wrong kind of file is refused: its tag is not the one asked for.
        assert_eq!(parse(s.as_bytes(), PUBLIC_TAG.as_bytes()), None);
        assert_eq!(parse(p.as_bytes(), SECRET_TAG.as_bytes()), None);
        // Bare hex works, as in LUNBOX_FW_PUBKEY.
        assert_eq!(
            parse(hex(&public).as_bytes(), PUBLIC_TAG.as_bytes()),
            Some(public)
        );
        for bad in [
            "",
            "# only a comment\n",
            "lunbox-ed25519-public 00",
            "zz",
            "lunbox-ed25519-publicAA",
        ] {
            assert_eq!(
                parse(bad.as_bytes(), PUBLIC_TAG.as_bytes()),
                None,
                "{bad:?}"
            );
        }
        let long = format!("{} 00", hex(&public));
        assert_eq!(parse(long.as_bytes(), PUBLIC_TAG.as_bytes()), None);
    }

    #[test]
    fn the_dev_key_pair_matches() {
        let text = include_str!("../../keys/dev.key");
        let secret = parse(text.as_bytes(), SECRET_TAG.as_bytes()).expect("app/keys/dev.key");
        assert_eq!(crate::update::image::public_key(&secret), DEV_PUBLIC);
    }
}
