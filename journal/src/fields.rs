//! A journal entry's fields: names checked as journald accepts them from a
//! client, values as bytes, in order, repeatable (a field may appear more
//! than once, as `LTTNG_COREDUMP_SNAPSHOT` does for each snapshot).

use std::fmt;

/// Why a field was not added.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub name: String,
    pub reason: &'static str,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "journal field {:?}: {}", self.name, self.reason)
    }
}

impl std::error::Error for FieldError {}

/// Whether journald takes `name` from a client: 1 to 64 characters of
/// `A-Z`, `0-9` and `_`, not starting with a digit or `_` (fields starting
/// with `_` are journald's own, trusted ones).
pub fn check_name(name: &str) -> Result<(), &'static str> {
    let bytes = name.as_bytes();
    if bytes.is_empty() {
        return Err("empty name");
    }
    if bytes.len() > 64 {
        return Err("longer than 64 characters");
    }
    if bytes[0] == b'_' {
        return Err("starts with '_' (journald's own fields)");
    }
    if bytes[0].is_ascii_digit() {
        return Err("starts with a digit");
    }
    if !bytes
        .iter()
        .all(|&b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
    {
        return Err("has characters other than A-Z, 0-9 and _");
    }
    Ok(())
}

/// The fields of one entry, in the order they were added.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fields {
    fields: Vec<(String, Vec<u8>)>,
}

impl Fields {
    pub fn new() -> Fields {
        Fields::default()
    }

    /// Adds `name=value`; the name must pass [`check_name`].
    pub fn add(&mut self, name: &str, value: impl AsRef<[u8]>) -> Result<&mut Fields, FieldError> {
        check_name(name).map_err(|reason| FieldError {
            name: name.to_string(),
            reason,
        })?;
        self.fields
            .push((name.to_string(), value.as_ref().to_vec()));
        Ok(self)
    }

    /// Adds a field whose name is known to be valid (a constant of this
    /// crate's users); panics otherwise.
    pub fn push(&mut self, name: &str, value: impl AsRef<[u8]>) -> &mut Fields {
        self.add(name, value)
            .unwrap_or_else(|e| panic!("a field name that journald refuses: {e}"))
    }

    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    }

    /// Every value of `name`, in order.
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.fields
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    }

    /// The fields, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.fields.iter().map(|(n, v)| (n.as_str(), v.as_slice()))
    }

    pub fn len(&self) -> usize {
        self.fields.len()
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// The entry in journald's native protocol: `NAME=value\n` for a value
    /// without a newline, `NAME\n`, its length (64-bit little-endian), the
    /// value and `\n` otherwise.
    pub fn to_native(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(
            self.fields
                .iter()
                .map(|(n, v)| n.len() + v.len() + 10)
                .sum(),
        );
        for (name, value) in &self.fields {
            out.extend_from_slice(name.as_bytes());
            if value.contains(&b'\n') {
                out.push(b'\n');
                out.extend_from_slice(&(value.len() as u64).to_le_bytes());
            } else {
                out.push(b'=');
            }
            out.extend_from_slice(value);
            out.push(b'\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_as_journald_does() {
        for good in ["MESSAGE", "COREDUMP_PID", "A1_2", "X"] {
            assert_eq!(check_name(good), Ok(()), "{good}");
        }
        for bad in ["", "_UID", "1ABC", "message", "A-B", "A=B", &"A".repeat(65)] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
        let mut fields = Fields::new();
        assert!(fields.add("_PID", "1").is_err());
        assert!(fields.is_empty());
    }

    #[test]
    fn the_native_encoding_frames_values_with_newlines() {
        let mut fields = Fields::new();
        fields.push("MESSAGE", "two\nlines").push("PRIORITY", "2");
        fields.push("SNAP", "a").push("SNAP", "b");
        let mut want = b"MESSAGE\n".to_vec();
        want.extend(9u64.to_le_bytes());
        want.extend(b"two\nlines\nPRIORITY=2\nSNAP=a\nSNAP=b\n");
        assert_eq!(fields.to_native(), want);
        assert_eq!(fields.get_all("SNAP").collect::<Vec<_>>(), [b"a", b"b"]);
        assert_eq!(fields.get("PRIORITY"), Some(&b"2"[..]));
    }
}
