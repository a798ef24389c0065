//! The journal export format (systemd's `journalctl -o export`, what
//! `systemd-journal-remote` reads on `/upload` and `systemd-journal-upload`
//! sends): entries of `NAME=value` lines, a field whose value is not plain
//! text written in the length-prefixed binary form (`NAME\n`, the length as
//! a little-endian 64-bit number, the bytes, `\n`), and an empty line after
//! each entry. Written here from the format's description, and read back by
//! the same module (the fleet's collector reads `journalctl -o export`).
//! A crash's entry ([`crate::coredump::Entry::export`]) and the fleet's
//! spool are written with it.
//!
//! Field names are checked as journald checks them: a name the server
//! would silently ignore is refused here, so nothing of an entry is lost
//! without an error.

use std::io::{self, BufRead, Read};

/// A journal field: its name and its value (any bytes).
pub type Field = (String, Vec<u8>);

/// Longest field name journald accepts.
pub const FIELD_NAME_MAX: usize = 64;

/// Why a field name is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadFieldName {
    pub name: String,
    pub reason: &'static str,
}

impl std::fmt::Display for BadFieldName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "journal field name {:?}: {}", self.name, self.reason)
    }
}

impl std::error::Error for BadFieldName {}

/// Checks a field name the way journald does (`journal_field_valid`):
/// 1 to 64 characters, `A-Z`, `0-9` and `_`, not starting with a digit.
/// Names starting with `_` are the trusted fields journald adds itself;
/// `systemd-journal-remote` takes them from an upload, so they are allowed
/// when `allow_protected`. Names starting with `__` are the export format's
/// own (`__REALTIME_TIMESTAMP`, `__CURSOR`) and never a field's.
pub fn check_field_name(name: &str, allow_protected: bool) -> Result<(), BadFieldName> {
    let bad = |reason| {
        Err(BadFieldName {
            name: name.to_owned(),
            reason,
        })
    };
    if name.is_empty() {
        return bad("empty");
    }
    if name.len() > FIELD_NAME_MAX {
        return bad("longer than 64 characters");
    }
    if name.as_bytes()[0].is_ascii_digit() {
        return bad("starts with a digit");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
    {
        return bad("only A-Z, 0-9 and _ are allowed");
    }
    if name.starts_with("__") {
        return bad("names starting with __ belong to the export format");
    }
    if name.starts_with('_') && !allow_protected {
        return bad("names starting with _ are journald's trusted fields");
    }
    Ok(())
}

/// Whether `value` can be written as a `NAME=value` line: valid UTF-8 with
/// no control character (journalctl writes the binary form for anything
/// else, and so do we, so that what arrives is byte for byte what was
/// sent).
fn is_plain_text(value: &[u8]) -> bool {
    std::str::from_utf8(value).is_ok_and(|text| !text.chars().any(char::is_control))
}

/// Appends one field to `out`, in the text form when the value is plain
/// text, else in the binary form.
pub fn write_field(out: &mut Vec<u8>, name: &str, value: &[u8]) {
    out.extend_from_slice(name.as_bytes());
    if is_plain_text(value) {
        out.push(b'=');
        out.extend_from_slice(value);
    } else {
        out.push(b'\n');
        out.extend_from_slice(&(value.len() as u64).to_le_bytes());
        out.extend_from_slice(value);
    }
    out.push(b'\n');
}

/// Appends one entry (its fields, then the empty line that ends it) to
/// `out`. Every name is checked first; nothing is written on error.
pub fn write_entry<'a>(
    out: &mut Vec<u8>,
    fields: impl IntoIterator<Item = (&'a str, &'a [u8])> + Clone,
    allow_protected: bool,
) -> Result<(), BadFieldName> {
    for (name, _) in fields.clone() {
        check_field_name(name, allow_protected)?;
    }
    for (name, value) in fields {
        write_field(out, name, value);
    }
    out.push(b'\n');
    Ok(())
}

/// Limits of the reader, so that a hostile or huge stream costs a bounded
/// amount of memory.
#[derive(Debug, Clone, Copy)]
pub struct ReadLimits {
    /// Values longer than this are not kept: the field is kept with an
    /// empty value and its length in [`Entry::skipped`].
    pub max_value: usize,
    /// Longest `NAME=value` line kept whole (longer text values are
    /// skipped like long binary values).
    pub max_line: usize,
}

impl Default for ReadLimits {
    fn default() -> Self {
        ReadLimits {
            max_value: 1 << 20,
            max_line: 1 << 20,
        }
    }
}

/// One entry read back: its fields in order (including the export format's
/// own `__CURSOR`, `__REALTIME_TIMESTAMP`, `__MONOTONIC_TIMESTAMP`), and
/// the fields whose values were too long to keep, with their lengths.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Entry {
    pub fields: Vec<Field>,
    pub skipped: Vec<(String, u64)>,
}

impl Entry {
    /// The first value of field `name`.
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    }

    /// The first value of field `name`, as text (lossy).
    pub fn text(&self, name: &str) -> Option<String> {
        self.get(name)
            .map(|v| String::from_utf8_lossy(v).into_owned())
    }

    /// Whether field `name` is there (kept, or skipped for its length).
    pub fn has(&self, name: &str) -> bool {
        self.get(name).is_some() || self.skipped.iter().any(|(n, _)| n == name)
    }
}

/// Reads entries from an export stream, one at a time.
pub struct Reader<R> {
    input: R,
    limits: ReadLimits,
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

impl<R: BufRead> Reader<R> {
    pub fn new(input: R, limits: ReadLimits) -> Reader<R> {
        Reader { input, limits }
    }

    /// The next entry; `None` at the end of the stream. An entry cut by the
    /// end of the stream (no empty line after it) is returned as it is.
    pub fn next_entry(&mut self) -> io::Result<Option<Entry>> {
        let mut entry = Entry::default();
        let mut line = Vec::new();
        loop {
            line.clear();
            let n = read_line_bounded(&mut self.input, &mut line, self.limits.max_line)?;
            if n == 0 {
                return Ok((!entry.fields.is_empty() || !entry.skipped.is_empty()).then_some(entry));
            }
            let complete = line.last() == Some(&b'\n');
            if complete {
                line.pop();
            }
            if line.is_empty() && complete {
                if entry.fields.is_empty() && entry.skipped.is_empty() {
                    continue;
                }
                return Ok(Some(entry));
            }
            if let Some(eq) = line.iter().position(|&b| b == b'=') {
                let name = field_name(&line[..eq])?;
                if complete {
                    entry.fields.push((name, line[eq + 1..].to_vec()));
                } else {
                    // Longer than max_line: skip to the end of the line.
                    let rest = skip_line(&mut self.input)?;
                    entry
                        .skipped
                        .push((name, (line.len() - eq - 1) as u64 + rest));
                }
            } else {
                if !complete {
                    return Err(invalid("a field name longer than the line limit".into()));
                }
                let name = field_name(&line)?;
                let mut size = [0u8; 8];
                self.input.read_exact(&mut size)?;
                let size = u64::from_le_bytes(size);
                if size <= self.limits.max_value as u64 {
                    let mut value = vec![0u8; size as usize];
                    self.input.read_exact(&mut value)?;
                    entry.fields.push((name, value));
                } else {
                    let copied = io::copy(&mut (&mut self.input).take(size), &mut io::sink())?;
                    if copied != size {
                        return Err(io::ErrorKind::UnexpectedEof.into());
                    }
                    entry.skipped.push((name, size));
                }
                let mut newline = [0u8; 1];
                self.input.read_exact(&mut newline)?;
                if newline[0] != b'\n' {
                    return Err(invalid("a binary field not followed by a newline".into()));
                }
            }
        }
    }
}

impl<R: BufRead> Iterator for Reader<R> {
    type Item = io::Result<Entry>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_entry().transpose()
    }
}

fn field_name(bytes: &[u8]) -> io::Result<String> {
    String::from_utf8(bytes.to_vec())
        .map_err(|_| invalid(format!("a field name that is not UTF-8: {bytes:?}")))
}

/// Reads up to and including the next `\n`, at most `max` bytes; returns
/// how many were read (0 at the end of the stream).
fn read_line_bounded<R: BufRead>(
    input: &mut R,
    line: &mut Vec<u8>,
    max: usize,
) -> io::Result<usize> {
    let mut total = 0;
    loop {
        let buffer = input.fill_buf()?;
        if buffer.is_empty() {
            return Ok(total);
        }
        let room = max.saturating_sub(line.len());
        let (take, done) = match buffer.iter().position(|&b| b == b'\n') {
            Some(i) if i < room => (i + 1, true),
            _ if buffer.len() >= room => (room, true),
            _ => (buffer.len(), false),
        };
        line.extend_from_slice(&buffer[..take]);
        input.consume(take);
        total += take;
        if done {
            return Ok(total);
        }
    }
}

/// Skips to just after the next `\n`; returns how many bytes before it.
fn skip_line<R: BufRead>(input: &mut R) -> io::Result<u64> {
    let mut skipped = 0u64;
    loop {
        let buffer = input.fill_buf()?;
        if buffer.is_empty() {
            return Ok(skipped);
        }
        match buffer.iter().position(|&b| b == b'\n') {
            Some(i) => {
                input.consume(i + 1);
                return Ok(skipped + i as u64);
            }
            None => {
                let n = buffer.len();
                input.consume(n);
                skipped += n as u64;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(bytes: &[u8], limits: ReadLimits) -> Vec<Entry> {
        Reader::new(bytes, limits).map(|e| e.unwrap()).collect()
    }

    #[test]
    fn names_are_checked_as_journald_checks_them() {
        assert!(check_field_name("COREDUMP_PID", false).is_ok());
        assert!(check_field_name("A1_", false).is_ok());
        assert!(check_field_name("_HOSTNAME", true).is_ok());
        assert!(check_field_name("_HOSTNAME", false).is_err());
        assert!(check_field_name("__CURSOR", true).is_err());
        assert!(check_field_name("", true).is_err());
        assert!(check_field_name("1ABC", true).is_err());
        assert!(check_field_name("lower", true).is_err());
        assert!(check_field_name("A-B", true).is_err());
        assert!(check_field_name(&"A".repeat(64), true).is_ok());
        assert!(check_field_name(&"A".repeat(65), true).is_err());
    }

    #[test]
    fn text_and_binary_fields_round_trip_byte_for_byte() {
        let values: Vec<(&str, Vec<u8>)> = vec![
            ("MESSAGE", b"Process 42 (crasher) dumped core.".to_vec()),
            ("COREDUMP_CMDLINE", b"a\nb".to_vec()),
            ("COREDUMP", vec![0, 1, 2, 255, b'\n', b'\n', 0]),
            ("EMPTY", Vec::new()),
            ("EQUALS", b"a=b=c".to_vec()),
            ("UTF8", "é → ✓".as_bytes().to_vec()),
            ("TAB", b"a\tb".to_vec()),
        ];
        let mut out = Vec::new();
        write_entry(
            &mut out,
            values.iter().map(|(n, v)| (*n, v.as_slice())),
            false,
        )
        .unwrap();
        write_entry(&mut out, [("SECOND", &b"2"[..])], false).unwrap();
        let entries = read_all(&out, ReadLimits::default());
        assert_eq!(entries.len(), 2);
        let got: Vec<(String, Vec<u8>)> = entries[0].fields.clone();
        let want: Vec<(String, Vec<u8>)> = values
            .iter()
            .map(|(n, v)| (n.to_string(), v.clone()))
            .collect();
        assert_eq!(got, want);
        assert_eq!(entries[1].get("SECOND"), Some(&b"2"[..]));
    }

    #[test]
    fn the_binary_form_is_used_for_anything_but_plain_text() {
        let mut out = Vec::new();
        write_field(&mut out, "A", b"x\ny");
        assert_eq!(out, b"A\n\x03\0\0\0\0\0\0\0x\ny\n");
        out.clear();
        write_field(&mut out, "A", b"plain");
        assert_eq!(out, b"A=plain\n");
        out.clear();
        write_field(&mut out, "A", &[0xff]);
        assert_eq!(out, b"A\n\x01\0\0\0\0\0\0\0\xff\n");
    }

    #[test]
    fn a_bad_name_writes_nothing() {
        let mut out = Vec::new();
        let err = write_entry(&mut out, [("GOOD", &b"1"[..]), ("bad", &b"2"[..])], false);
        assert!(err.is_err());
        assert!(out.is_empty());
    }

    #[test]
    fn long_values_are_skipped_with_their_length() {
        let mut out = Vec::new();
        let big = vec![7u8; 5000];
        let long_text = "t".repeat(5000);
        write_entry(
            &mut out,
            [
                ("COREDUMP", big.as_slice()),
                ("LONG", long_text.as_bytes()),
                ("SMALL", &b"s"[..]),
            ],
            false,
        )
        .unwrap();
        let limits = ReadLimits {
            max_value: 1000,
            max_line: 1000,
        };
        let entries = read_all(&out, limits);
        assert_eq!(entries.len(), 1);
        assert_eq!(
            entries[0].skipped,
            vec![("COREDUMP".to_string(), 5000), ("LONG".to_string(), 5000)]
        );
        assert!(entries[0].has("COREDUMP"));
        assert_eq!(entries[0].get("SMALL"), Some(&b"s"[..]));
    }

    #[test]
    fn a_cut_stream_is_an_error_or_a_partial_entry_never_a_panic() {
        let mut out = Vec::new();
        write_entry(&mut out, [("B", &[0u8, 1, 2][..]), ("A", &b"x"[..])], false).unwrap();
        for cut in 0..out.len() {
            let _ = Reader::new(&out[..cut], ReadLimits::default()).collect::<Vec<_>>();
        }
        // Blank lines between entries are not entries.
        assert_eq!(read_all(b"\n\nA=1\n\n\n", ReadLimits::default()).len(), 1);
    }
}
