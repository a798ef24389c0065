//! Fuzzes `recover`'s scanner, which reads cores as hostile input: any bytes,
//! as a whole core or as one ring buffer mapping, give a scan or an error,
//! never a panic, a hang, a read out of bounds or an allocation beyond what
//! the input holds; every packet recovered is a CTF packet no larger than a
//! sub-buffer; the handler's bounded summary scan reads no more buffer
//! bytes than its budget.

#![no_main]

use libfuzzer_sys::fuzz_target;
use lttng_coredump_recover::{abi, scan, scan_within, stream, Limits};

fuzz_target!(|data: &[u8]| {
    let mut core: &[u8] = data;
    if let Ok(found) = scan(&mut core) {
        for s in &found.streams {
            for p in &s.packets {
                assert!(p.data.len() as u64 <= s.subbuf_size);
                assert!(p.data.len() <= data.len());
                assert_eq!(p.size, p.data.len() as u64);
            }
        }
        let _ = lttng_coredump_recover::explain_no_buffers(&found);
    }
    // The handler's summary scan: never more buffer bytes than its budget.
    let budget = data.len() as u64 / 2;
    let mut core: &[u8] = data;
    if let Ok(found) = scan_within(&mut core, &Limits::summary(budget, 1024)) {
        let bytes: u64 = found.streams.iter().map(|s| s.bytes).sum();
        assert!(bytes <= budget, "{bytes} > {budget}");
        assert!(found.streams.iter().all(|s| s.packets.iter().all(|p| p.data.is_empty())));
    }
    // The same bytes as a buffer mapping, to reach the walk directly.
    if let Ok(layout) = abi::parse(data, data.len() as u64) {
        let packets = stream::recover_stream(&layout, data);
        for p in &packets.packets {
            assert!(p.data.len() as u64 <= layout.subbuf_size);
        }
    }
});
