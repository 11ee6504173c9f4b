//! Fuzz slot records: the input split into two slots is loaded (never panicking), and a save
//! after it leaves the saved configuration loadable.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lunbox_config::{Config, MemStore, load, save, scan};

fuzz_target!(|data: &[u8]| {
    let split = data.first().map_or(0, |b| usize::from(*b)).min(data.len());
    let (a, b) = data.split_at(split);
    let mut store = MemStore::new(4096);
    store.set_slot(0, a.to_vec());
    store.set_slot(1, b.to_vec());
    let _ = scan(&mut store);
    let _ = load(&mut store).map_err(|e| e.to_string());
    let config = Config {
        pid: 0x4242,
        ..Config::default()
    };
    save(&mut store, &config).expect("a save to an in-memory store succeeds");
    assert_eq!(load(&mut store), Ok(Some(config)));
});
