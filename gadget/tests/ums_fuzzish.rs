//! Hostile hosts: arbitrary CBWs and command blocks never panic the function, get a CSW or a
//! wedge, and Reset Recovery always brings the device back.

mod common;

use common::*;
use lunbox_gadget::testing::{DataPhase, HostError};
use lunbox_gadget::ums::{Cbw, CswStatus, Xfer, plan, scsi};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn parsing_and_decoding_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..40), max_lun in 0u8..16) {
        if let Ok(cbw) = Cbw::parse(&bytes, max_lun) {
            prop_assert!(cbw.lun <= max_lun && (1..=16).contains(&cbw.cb_len));
            let meaningful = 15 + usize::from(cbw.cb_len);
            prop_assert_eq!(&cbw.to_bytes()[..meaningful], &bytes[..meaningful]);
        }
        let _ = scsi::decode(&bytes);
        let _ = scsi::check_mode_select(bytes.first().is_some_and(|b| b & 1 == 1), &bytes);
    }

    #[test]
    fn plan_never_moves_more_than_the_host_expects(h in any::<u32>(), d in any::<u64>(), hd in 0u8..3, dd in 0u8..3) {
        let host = match hd { 0 => Xfer::None, 1 => Xfer::In(u64::from(h)), _ => Xfer::Out(u64::from(h)) };
        let dev = match dd { 0 => Xfer::None, 1 => Xfer::In(d), _ => Xfer::Out(d) };
        match plan(host, dev) {
            lunbox_gadget::ums::Plan::Run { moved, .. } | lunbox_gadget::ums::Plan::Truncate { moved } => {
                prop_assert!(moved <= u64::from(h) || matches!(host, Xfer::None) && moved == 0);
            }
            lunbox_gadget::ums::Plan::Refuse => {}
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn arbitrary_commands_get_a_status_or_a_wedge(
        cmds in proptest::collection::vec(
            (proptest::collection::vec(any::<u8>(), 1..17), 0u8..3, 0u32..3000, any::<bool>()),
            1..8,
        ),
        raw in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        with_ums(one_lun(64, 64), |r| -> Result<(), TestCaseError> {
            for (cdb, kind, len, _) in &cmds {
                let data = vec![0x5Au8; *len as usize];
                let phase = match kind { 0 => DataPhase::None, 1 => DataPhase::In(*len), _ => DataPhase::Out(&data) };
                match r.bot.command(r.host, 0, cdb, phase) {
                    Ok(res) => {
                        prop_assert!(res.csw.residue <= *len);
                        if res.csw.status == CswStatus::PhaseError {
                            r.bot.reset_recovery(r.host).unwrap();
                        }
                    }
                    Err(e) => prop_assert!(false, "transport failure for {:02x?}: {}", cdb, e),
                }
            }
            // Garbage where a CBW belongs: wedged (or, if it parses, answered).
            if !raw.is_empty() {
                let _ = r.bot.send_raw_cbw(r.host, &raw);
                match r.host.bulk_in(r.bot.ep_in, r.bot.mps, 13) {
                    Ok(_) | Err(HostError::Stalled { .. }) => {}
                    Err(e) => prop_assert!(false, "no answer to raw CBW: {}", e),
                }
            }
            r.bot.reset_recovery(r.host).unwrap();
            let tur = r.cmd(0, &[0; 6], DataPhase::None);
            prop_assert!(tur.csw.status != CswStatus::PhaseError);
            let read = r.cmd(0, &rw10(0x28, 1, 1), DataPhase::In(512));
            prop_assert!(read.data.iter().all(|&b| b == 1) || read.csw.status == CswStatus::Failed);
            Ok(())
        })?;
    }
}
