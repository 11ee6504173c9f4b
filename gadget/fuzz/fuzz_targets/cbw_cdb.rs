//! Fuzz CBW parsing, CDB decoding, MODE SELECT parameter checks and the case planner.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lunbox_gadget::ums::{Cbw, Xfer, plan, scsi};

fuzz_target!(|data: &[u8]| {
    let max_lun = data.first().map_or(0, |b| b & 0x0F);
    if let Ok(cbw) = Cbw::parse(data, max_lun) {
        // Bytes past the command block are not part of the CBW's meaning.
        let meaningful = 15 + usize::from(cbw.cb_len);
        assert_eq!(&cbw.to_bytes()[..meaningful], &data[..meaningful]);
        let _ = scsi::decode(&cbw.cb[..usize::from(cbw.cb_len)]);
    }
    let _ = scsi::decode(data);
    let _ = scsi::check_mode_select(data.len() % 2 == 0, data);
    if data.len() >= 9 {
        let h = u64::from(u32::from_le_bytes([data[0], data[1], data[2], data[3]]));
        let d = u64::from_le_bytes(data[1..9].try_into().unwrap());
        let host = [Xfer::None, Xfer::In(h), Xfer::Out(h)][usize::from(data[0] % 3)];
        let dev = [Xfer::None, Xfer::In(d), Xfer::Out(d)][usize::from(data[1] % 3)];
        let _ = plan(host, dev);
    }
});
