//! A journal entry's fields: names checked as journald accepts them from a
//! client, values as bytes, in order, repeatable (a field may appear more
//! than once, as `LTTNG_COREDUMP_SNAPSHOT_PATH` does for each snapshot).

use crate::export::{check_field_name, BadFieldName, Field};

/// The fields of one entry, in the order they were added.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fields {
    fields: Vec<Field>,
}

impl Fields {
    pub fn new() -> Fields {
        Fields::default()
    }

    /// Adds `name=value`; the name must be one journald takes from a client
    /// ([`check_field_name`], without journald's own `_` fields).
    pub fn add(
        &mut self,
        name: &str,
        value: impl AsRef<[u8]>,
    ) -> Result<&mut Fields, BadFieldName> {
        check_field_name(name, false)?;
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
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[u8])> + Clone {
        self.fields.iter().map(|(n, v)| (n.as_str(), v.as_slice()))
    }

    pub fn len(&self) -> usize {
        self.fields.len()
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// The fields as the export format's writer and the fleet's spool take
    /// them.
    pub fn as_slice(&self) -> &[Field] {
        &self.fields
    }

    pub fn into_vec(self) -> Vec<Field> {
        self.fields
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
    fn names_are_checked_as_journald_does_for_a_client() {
        let mut fields = Fields::new();
        for good in ["MESSAGE", "COREDUMP_PID", "A1_2", "X"] {
            assert!(fields.add(good, "v").is_ok(), "{good}");
        }
        for bad in [
            "",
            "_UID",
            "__CURSOR",
            "1ABC",
            "message",
            "A-B",
            "A=B",
            &"A".repeat(65),
        ] {
            assert!(fields.add(bad, "v").is_err(), "{bad}");
        }
        assert_eq!(fields.len(), 4);
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
