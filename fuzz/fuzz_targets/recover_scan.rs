//! Fuzzes `recover`'s scanner, which reads cores as hostile input: any bytes,
//! as a whole core or as one ring buffer mapping, give a scan or an error,
//! never a panic, a hang, a read out of bounds or an allocation beyond what
//! the input holds; every packet recovered is a CTF packet no larger than a
//! sub-buffer.

#![no_main]

use libfuzzer_sys::fuzz_target;
use lttng_coredump_recover::{abi, scan, stream};

fuzz_target!(|data: &[u8]| {
    let mut core: &[u8] = data;
    if let Ok(found) = scan(&mut core) {
        for s in &found.streams {
            for p in &s.packets {
                assert!(p.data.len() as u64 <= s.subbuf_size);
                assert!(p.data.len() <= data.len());
            }
        }
        let _ = lttng_coredump_recover::explain_no_buffers(&found);
    }
    // The same bytes as a buffer mapping, to reach the walk directly.
    if let Ok(layout) = abi::parse(data, data.len() as u64) {
        let packets = stream::recover_stream(&layout, data);
        for p in &packets.packets {
            assert!(p.data.len() as u64 <= layout.subbuf_size);
        }
    }
});
