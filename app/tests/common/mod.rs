//! A minimal USB/IP client for the tests that drive lunbox as a program (`usbip.rs`,
//! `update.rs`), written from the protocol description, independently of lunbox's own codec:
//! big-endian helpers, the OP header, and a host that submits URBs and reads their replies.

#![allow(dead_code, reason = "each test binary uses its own part of the client")]

use std::io::{Read, Write};
use std::net::TcpStream;

/// The big-endian u32 at `at`.
pub(crate) fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(b[at..at + 4].try_into().unwrap())
}

/// Exactly `n` bytes from `s`.
pub(crate) fn read_exact(s: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut b = vec![0u8; n];
    s.read_exact(&mut b).unwrap();
    b
}

/// The header of an OP request (version 1.1.1, `code`, status 0).
pub(crate) fn op_header(code: u16) -> Vec<u8> {
    let mut b = 0x0111u16.to_be_bytes().to_vec();
    b.extend_from_slice(&code.to_be_bytes());
    b.extend_from_slice(&0u32.to_be_bytes());
    b
}

/// A USB/IP host on an imported stream (device 1-2 on bus 1).
pub(crate) struct Host {
    /// The imported connection.
    pub(crate) s: TcpStream,
    /// The seqnum of the last URB sent.
    pub(crate) seq: u32,
}

impl Host {
    /// Send a CMD_SUBMIT without waiting for its answer; returns its seqnum.
    pub(crate) fn send(
        &mut self,
        ep: u32,
        dir_in: bool,
        setup: [u8; 8],
        len: u32,
        out: &[u8],
    ) -> u32 {
        self.seq += 1;
        let mut h = Vec::new();
        for v in [
            1u32,
            self.seq,
            0x0001_0002,
            u32::from(dir_in),
            ep,
            0,
            len,
            0,
            0xffff_ffff,
            0,
        ] {
            h.extend_from_slice(&v.to_be_bytes());
        }
        h.extend_from_slice(&setup);
        if !dir_in {
            h.extend_from_slice(out);
        }
        self.s.write_all(&h).unwrap();
        self.seq
    }

    /// The RET_SUBMIT of the last URB sent: (status, actual_length, IN data).
    pub(crate) fn receive(&mut self, dir_in: bool) -> (i32, u32, Vec<u8>) {
        let r = read_exact(&mut self.s, 48);
        assert_eq!(be32(&r, 0), 3, "RET_SUBMIT");
        assert_eq!(be32(&r, 4), self.seq, "matching seqnum");
        let status = be32(&r, 20) as i32;
        let actual = be32(&r, 24);
        let data = if dir_in {
            read_exact(&mut self.s, actual as usize)
        } else {
            Vec::new()
        };
        (status, actual, data)
    }

    /// Submit and wait for the RET_SUBMIT: (status, actual_length, IN data).
    pub(crate) fn submit(
        &mut self,
        ep: u32,
        dir_in: bool,
        setup: [u8; 8],
        len: u32,
        out: &[u8],
    ) -> (i32, u32, Vec<u8>) {
        self.send(ep, dir_in, setup, len, out);
        let reply = self.receive(dir_in);
        assert!(reply.1 <= len, "actual_length within the transfer");
        reply
    }

    /// A control transfer with an IN data stage of `wLength` bytes at most.
    pub(crate) fn control_in(&mut self, setup: [u8; 8]) -> Result<Vec<u8>, i32> {
        let len = u32::from(u16::from_le_bytes([setup[6], setup[7]]));
        let (st, _, data) = self.submit(0, true, setup, len, &[]);
        if st == 0 { Ok(data) } else { Err(st) }
    }

    /// A control transfer without a data stage.
    pub(crate) fn control_out(&mut self, setup: [u8; 8]) -> Result<(), i32> {
        let (st, _, _) = self.submit(0, false, setup, 0, &[]);
        if st == 0 { Ok(()) } else { Err(st) }
    }

    /// The next reply, whichever URB it answers: (command, seqnum, status, the payload of an
    /// IN RET_SUBMIT for one of `in_seqs`).
    pub(crate) fn read_reply(&mut self, in_seqs: &[u32]) -> (u32, u32, i32, Vec<u8>) {
        let r = read_exact(&mut self.s, 48);
        let (cmd, seq, status, actual) =
            (be32(&r, 0), be32(&r, 4), be32(&r, 20) as i32, be32(&r, 24));
        let data = if cmd == 3 && in_seqs.contains(&seq) {
            read_exact(&mut self.s, actual as usize)
        } else {
            Vec::new()
        };
        (cmd, seq, status, data)
    }
}
