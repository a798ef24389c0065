//! What a spool item becomes on the wire: the journal entry sent to
//! systemd-journal-remote (the crash's fields, with a `COREDUMP_UID` and a
//! `COREDUMP_GID` coredumpctl reads, the host's identity as
//! journald would have stamped it, the crash ID, and the core inside the
//! entry or where it stays), and the JSON the webhook gets.

use crate::export;
use crate::fields;
use crate::spool::{self, LoadedItem};
use serde_json::{json, Map, Value};

/// Fields the crash's own list may not carry: the spool sets them.
fn set_by_us(name: &str) -> bool {
    name.starts_with('_')
        || matches!(
            name,
            fields::COREDUMP
                | fields::CRASH_ID
                | fields::CORE_STORAGE
                | fields::CORE_LOCATION
                | fields::CORE_NOTE
                | fields::CORE_SIZE
        )
}

/// The journal entry of `item`, in the export format, ready for `/upload`.
/// The core travels in `COREDUMP` (raw, as systemd-coredump's
/// `Storage=journal` puts it, so `coredumpctl dump` on the collector
/// writes it out; journal-remote stores it compressed) when the spool holds
/// it; `COREDUMP_FILENAME` then goes (it names a file of the crashing host,
/// which `coredumpctl` on the collector would try first and not find). Else
/// the entry says where the core stays.
pub fn journal_entry(item: &mut LoadedItem, core_max: u64) -> Result<Vec<u8>, spool::SpoolError> {
    let meta = &item.meta;
    // A copy that cannot be read costs the core, never the entry.
    let mut core_error = None;
    let core = match (&mut item.core, &meta.core) {
        (Some(file), Some(core_meta)) => {
            match spool::read_core(file, core_max.max(core_meta.size)) {
                Ok(bytes) => Some(bytes),
                Err(e) => {
                    core_error = Some(format!("the spool's copy of the core is unreadable: {e}"));
                    None
                }
            }
        }
        _ => None,
    };
    let host = &meta.host;
    let mut ours: Vec<(String, Vec<u8>)> = vec![
        (
            "__REALTIME_TIMESTAMP".into(),
            host.realtime_us.to_string().into_bytes(),
        ),
        (
            "__MONOTONIC_TIMESTAMP".into(),
            host.monotonic_us.to_string().into_bytes(),
        ),
        (fields::BOOT_ID.into(), host.boot_id.clone().into_bytes()),
        (fields::HOSTNAME.into(), host.hostname.clone().into_bytes()),
    ];
    if let Some(machine_id) = &host.machine_id {
        ours.push((fields::MACHINE_ID.into(), machine_id.clone().into_bytes()));
    }
    ours.push((fields::CRASH_ID.into(), meta.crash_id.clone().into_bytes()));
    let keep_filename = core.is_none();
    match &meta.core {
        None => ours.push((fields::CORE_STORAGE.into(), b"none".to_vec())),
        Some(core_meta) => {
            let storage: &[u8] = if core.is_some() { b"journal" } else { b"host" };
            ours.push((fields::CORE_STORAGE.into(), storage.to_vec()));
            ours.push((
                fields::CORE_SIZE.into(),
                core_meta.size.to_string().into_bytes(),
            ));
            ours.push((
                fields::CORE_LOCATION.into(),
                format!("{}:{}", host.hostname, core_meta.host_path).into_bytes(),
            ));
            match core {
                Some(bytes) => ours.push((fields::COREDUMP.into(), bytes)),
                None => {
                    let note = core_error
                        .or_else(|| item.core_dropped.clone())
                        .or_else(|| core_meta.note.clone())
                        .unwrap_or_else(|| "the core stays on the host".into());
                    ours.push((fields::CORE_NOTE.into(), note.into_bytes()));
                }
            }
        }
    }
    let mut out = Vec::with_capacity(
        ours.iter()
            .chain(&item.fields)
            .map(|(n, v)| n.len() + v.len() + 10)
            .sum(),
    );
    for (name, value) in &ours {
        if name.starts_with("__") {
            out.extend_from_slice(name.as_bytes());
            out.push(b'=');
            out.extend_from_slice(value);
            out.push(b'\n');
        }
    }
    // The crash's fields as coredumpctl on the collector reads them: a
    // `COREDUMP_UID`/`COREDUMP_GID` missing or unreadable (an entry enqueued
    // from a fields file, or by an older handler) would abort systemd 252's
    // `coredumpctl list` over the whole directory.
    let readable = lttng_coredump_journal::coredump::readable_ids(&item.fields);
    let theirs = readable.iter().filter(|(name, _)| {
        !set_by_us(name) && (keep_filename || name != fields::COREDUMP_FILENAME)
    });
    let rest = theirs
        .chain(ours.iter().filter(|(n, _)| !n.starts_with("__")))
        .map(|(n, v)| (n.as_str(), v.as_slice()));
    let rest: Vec<(&str, &[u8])> = rest.collect();
    export::write_entry(&mut out, rest.iter().copied(), true)
        .map_err(|e| spool::SpoolError(e.to_string()))?;
    Ok(out)
}

/// A field's value in JSON, as `journalctl -o json` writes it: a string
/// when it is printable UTF-8 (newlines and tabs allowed), else an array of
/// its bytes.
pub fn json_value(value: &[u8]) -> Value {
    match std::str::from_utf8(value) {
        Ok(text)
            if !text
                .chars()
                .any(|c| c.is_control() && c != '\n' && c != '\t') =>
        {
            Value::String(text.to_owned())
        }
        _ => Value::Array(value.iter().map(|&b| Value::from(b)).collect()),
    }
}

/// The webhook's JSON for `item`: the crash ID (with the host, its machine
/// ID and name, the receiver's key for counting a crash once), the time,
/// the entry's fields, the report, and where the core is. Never the core
/// itself.
pub fn webhook_json(item: &LoadedItem) -> Value {
    let meta = &item.meta;
    let mut entry = Map::new();
    for (name, value) in &item.fields {
        entry
            .entry(name.clone())
            .or_insert_with(|| json_value(value));
    }
    let report = item
        .report
        .as_ref()
        .map(|bytes| serde_json::from_slice(bytes).unwrap_or_else(|_| json_value(bytes)));
    let core = meta.core.as_ref().map(|core| {
        json!({
            "location": format!("{}:{}", meta.host.hostname, core.host_path),
            "size": core.size,
            "in_journal_entry": item.core.is_some(),
            "note": item.core_dropped.clone().or_else(|| core.note.clone()),
        })
    });
    json!({
        "format": "lttng-coredump-webhook/1",
        "crash_id": meta.crash_id,
        "host": meta.host.hostname,
        "machine_id": meta.host.machine_id,
        "boot_id": meta.host.boot_id,
        "time_us": meta.host.realtime_us,
        "message": entry.get(fields::MESSAGE).cloned(),
        "signature": entry.get(fields::SIGNATURE).cloned(),
        "fields": Value::Object(entry),
        "report": report,
        "core": core,
    })
}
