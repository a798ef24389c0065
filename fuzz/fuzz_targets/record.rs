//! Fuzzes reading a crash record back (`record_read`), as the crash tools,
//! `status`, `recover` and the core trace check read every record of the
//! core directory, some of which a crashing user's names and paths filled:
//! any bytes read as a record or give one line of error, never a panic; a
//! record read back writes out to JSON that reads back as the same record;
//! and what the tools ask of it (its core, its snapshots, why there is no
//! trace) is always answered.

#![no_main]

use libfuzzer_sys::fuzz_target;
use lttng_coredump_handler::store::record_read::StoredRecord;

fuzz_target!(|data: &[u8]| {
    let record = match StoredRecord::parse(data) {
        Ok(record) => record,
        Err(error) => {
            assert!(!error.is_empty());
            assert!(!error.contains('\n'), "a multi-line error: {error:?}");
            return;
        }
    };
    let json = serde_json::to_vec(&record).expect("a record read back writes out");
    let again = StoredRecord::parse(&json).expect("a record written out reads back");
    assert_eq!(again, record);
    let _ = record.core();
    let _ = record.snapshots().len();
    let _ = record.core_trace().summary.len();
    let _ = record.trace_absence();
    let _ = record.crashed().pid;
    let _ = record.to_value();
});
