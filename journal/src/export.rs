//! The journal export format (systemd's "Journal Export Format"), which
//! `systemd-journal-remote` takes over HTTP or from a file and
//! `journalctl -o export` writes: the same [`Fields`] an entry is sent to
//! journald with, serialized for another machine's journal.
//!
//! Each entry is its address fields (`__REALTIME_TIMESTAMP`, ...) when
//! known, then its fields, then an empty line. A field is `NAME=value\n`
//! when its value is text without a newline, and `NAME\n`, the value's
//! length (64-bit little-endian), the value and `\n` otherwise.

use crate::fields::Fields;
use std::io::{self, Write};

/// The address fields of an exported entry (all optional: the receiving
/// journal stamps an entry without them with its own time).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Address {
    /// `__REALTIME_TIMESTAMP`: microseconds since the epoch.
    pub realtime_usec: Option<u64>,
    /// `__MONOTONIC_TIMESTAMP`: microseconds since boot.
    pub monotonic_usec: Option<u64>,
    /// `_BOOT_ID`: 32 hexadecimal digits.
    pub boot_id: Option<String>,
}

fn is_text(value: &[u8]) -> bool {
    std::str::from_utf8(value).is_ok_and(|s| !s.chars().any(|c| c.is_control() && c != '\t'))
}

fn write_field(out: &mut impl Write, name: &str, value: &[u8]) -> io::Result<()> {
    out.write_all(name.as_bytes())?;
    if is_text(value) {
        out.write_all(b"=")?;
    } else {
        out.write_all(b"\n")?;
        out.write_all(&(value.len() as u64).to_le_bytes())?;
    }
    out.write_all(value)?;
    out.write_all(b"\n")
}

/// Writes one entry in the export format.
pub fn write_entry(out: &mut impl Write, fields: &Fields, address: &Address) -> io::Result<()> {
    if let Some(t) = address.realtime_usec {
        write_field(out, "__REALTIME_TIMESTAMP", t.to_string().as_bytes())?;
    }
    if let Some(t) = address.monotonic_usec {
        write_field(out, "__MONOTONIC_TIMESTAMP", t.to_string().as_bytes())?;
    }
    if let Some(id) = &address.boot_id {
        write_field(out, "_BOOT_ID", id.as_bytes())?;
    }
    for (name, value) in fields.iter() {
        write_field(out, name, value)?;
    }
    out.write_all(b"\n")
}

/// One entry in the export format, as bytes.
pub fn entry(fields: &Fields, address: &Address) -> Vec<u8> {
    let mut out = Vec::new();
    write_entry(&mut out, fields, address).expect("writing to memory");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_binary_fields_and_the_address() {
        let mut fields = Fields::new();
        fields.push("MESSAGE", "a\nb").push("PRIORITY", "2");
        fields.push("BLOB", [0u8, 1, 2]);
        let out = entry(
            &fields,
            &Address {
                realtime_usec: Some(1_700_000_000_000_000),
                monotonic_usec: None,
                boot_id: Some("0123456789abcdef0123456789abcdef".into()),
            },
        );
        let mut want = b"__REALTIME_TIMESTAMP=1700000000000000\n_BOOT_ID=0123456789abcdef0123456789abcdef\nMESSAGE\n".to_vec();
        want.extend(3u64.to_le_bytes());
        want.extend(b"a\nb\nPRIORITY=2\nBLOB\n");
        want.extend(3u64.to_le_bytes());
        want.extend([0, 1, 2]);
        want.extend(b"\n\n");
        assert_eq!(out, want);
    }
}
