//! Fuzz the USB/IP wire parsers: the input is a byte stream from a hostile peer, consumed message
//! by message as the server does (OP requests until an IMPORT, then URB commands), and also as a
//! client would (OP replies, then RETs). Parsers must never panic, never over-consume, and every
//! parsed command must re-encode to the bytes' length and parse back to itself, and parse the
//! same with its header and body apart.
#![no_main]

#[allow(dead_code, reason = "the fuzz target uses only part of the codec")]
#[path = "../../src/sandbox/usbip/proto.rs"]
mod proto;

use libfuzzer_sys::fuzz_target;
use proto::{Command, Direction, OpRequest};

fuzz_target!(|data: &[u8]| {
    server_stream(data);
    // The whole input as URB traffic too (most inputs never get past the OP phase).
    commands(data);
    client_stream(data);
});

/// What the server sees: OP requests until an IMPORT, then commands.
fn server_stream(data: &[u8]) {
    let mut pos = 0;
    while let Ok(Some((request, n))) = proto::parse_op_request(&data[pos..]) {
        assert!(n > 0 && n <= data.len() - pos);
        pos += n;
        if let OpRequest::Import { .. } = request {
            commands(&data[pos..]);
            return;
        }
    }
}

fn commands(data: &[u8]) {
    let mut pos = 0;
    loop {
        let rest = &data[pos..];
        let parsed = proto::parse_command(rest);
        let len = proto::command_len(rest);
        match parsed {
            Ok(Some((command, n))) => {
                assert!(n >= proto::URB_HEADER_LEN && n <= rest.len());
                assert_eq!(len, Ok(Some(n)));
                // Every strict prefix is incomplete (checking the longest one is enough: the
                // parser only looks at the header and the total length).
                assert_eq!(proto::parse_command(&rest[..n - 1]), Ok(None));
                let mut out = Vec::new();
                match &command {
                    Command::Submit(cmd) => proto::encode_cmd_submit(cmd, &mut out),
                    Command::Unlink(cmd) => proto::encode_cmd_unlink(cmd, &mut out),
                }
                assert_eq!(out.len(), n);
                // The server's way for large payloads: header and body in separate buffers.
                let header = rest.first_chunk::<{ proto::URB_HEADER_LEN }>().unwrap();
                let body = rest[proto::URB_HEADER_LEN..n].to_vec();
                assert_eq!(
                    proto::parse_command_split(header, body),
                    Ok(Some(command.clone()))
                );
                assert_eq!(proto::parse_command(&out), Ok(Some((command, n))));
                pos += n;
            }
            Ok(None) => {
                assert!(
                    rest.len() < proto::URB_HEADER_LEN
                        || matches!(len, Ok(Some(l)) if l > rest.len())
                );
                return;
            }
            Err(e) => {
                assert_eq!(len, Err(e.clone()));
                let _ = e.to_string();
                return;
            }
        }
    }
}

/// What a client sees: one OP reply, then RETs (seqnum mod 3: 0 unknown, 1 IN, 2 OUT).
fn client_stream(data: &[u8]) {
    let mut pos = match proto::parse_op_reply(data) {
        Ok(Some((_, n))) => {
            assert!(n > 0 && n <= data.len());
            n
        }
        _ => 0,
    };
    let direction_of = |seqnum: u32| {
        (seqnum % 3 != 0).then_some(if seqnum % 3 == 1 {
            Direction::In
        } else {
            Direction::Out
        })
    };
    while let Ok(Some((_, n))) = proto::parse_ret(&data[pos..], direction_of) {
        assert!(n >= proto::URB_HEADER_LEN && n <= data.len() - pos);
        pos += n;
    }
}
