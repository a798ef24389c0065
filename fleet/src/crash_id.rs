//! The crash ID: 128 random bits given to a crash when it enters the spool,
//! written as 32 lowercase hex digits (the form of journald's IDs). It names
//! the spool item and travels in every copy sent (the entry's
//! `LTTNG_COREDUMP_CRASH_ID`, the webhook's `crash_id` and
//! `Idempotency-Key`), so a crash sent twice (a retry after a lost
//! acknowledgement) is counted once by whatever reads the destination.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CrashId([u8; 16]);

impl CrashId {
    /// A new ID from the kernel's random source.
    pub fn random() -> std::io::Result<CrashId> {
        let mut bytes = [0u8; 16];
        let mut filled = 0;
        while filled < bytes.len() {
            filled += rustix::rand::getrandom(
                &mut bytes[filled..],
                rustix::rand::GetRandomFlags::empty(),
            )?;
        }
        Ok(CrashId(bytes))
    }

    /// Reads the 32-hex-digit form.
    pub fn parse(text: &str) -> Option<CrashId> {
        if text.len() != 32 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let mut bytes = [0u8; 16];
        for (i, byte) in bytes.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
        }
        Some(CrashId(bytes))
    }
}

impl fmt::Display for CrashId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for byte in self.0 {
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_random_and_read_back() {
        let a = CrashId::random().unwrap();
        let b = CrashId::random().unwrap();
        assert_ne!(a, b);
        let text = a.to_string();
        assert_eq!(text.len(), 32);
        assert_eq!(CrashId::parse(&text), Some(a));
        assert_eq!(CrashId::parse(&text.to_uppercase()), Some(a));
        assert_eq!(CrashId::parse("xyz"), None);
        assert_eq!(CrashId::parse(&"g".repeat(32)), None);
    }
}
