//! Turning bytes the crashing process controls (its name, its executable
//! path) into something safe: a bounded file-name component that can never
//! be a path, and a one-line form for logs.

/// Longest name component produced; leaves room for the rest of a core's
/// name (`core.NAME.PID.TIME.zst.json` and a collision suffix) within the
/// 255 bytes a Linux file name may have.
pub const MAX_COMPONENT_LEN: usize = 64;

/// A file-name component made from arbitrary bytes.
///
/// Only ASCII letters, digits, `-`, `_`, `+` and `.` are kept; every other
/// byte (including `/`, NUL, newlines, control characters and every byte of
/// a non-ASCII or invalid UTF-8 sequence) becomes `_`. A leading `.` also
/// becomes `_`, so the result is never `.`, `..` or a hidden file. The result
/// is at most `max_len` bytes (at least 1) and never empty.
pub fn file_name_component(raw: &[u8], max_len: usize) -> String {
    let max_len = max_len.max(1);
    let mut name: String = raw
        .iter()
        .take(max_len)
        .map(|&byte| {
            if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'+' | b'.') {
                byte as char
            } else {
                '_'
            }
        })
        .collect();
    if name.starts_with('.') {
        name.replace_range(0..1, "_");
    }
    if name.is_empty() {
        name.push_str("unknown");
        name.truncate(max_len);
    }
    name
}

/// Arbitrary bytes as one line of printable text for a log message: valid
/// UTF-8 is kept except control characters and the Unicode bidirectional
/// controls, which are escaped (`\n`, `\x1b`, `\xe2\x80\xae`), as are the
/// bytes of invalid sequences (`\xff`). A hostile name can thus neither
/// forge a log line nor hide itself, nor reorder what a terminal shows of
/// the line (a RIGHT-TO-LEFT OVERRIDE in `ab\u{202e}gpj` shows `abjpg`).
pub fn for_log(raw: &[u8]) -> String {
    let mut out = String::with_capacity(raw.len());
    for chunk in raw.utf8_chunks() {
        for ch in chunk.valid().chars() {
            match ch {
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                '\\' => out.push_str("\\\\"),
                c if c.is_control() || is_bidi_control(c) => {
                    for byte in c.to_string().bytes() {
                        out.push_str(&format!("\\x{byte:02x}"));
                    }
                }
                c => out.push(c),
            }
        }
        for byte in chunk.invalid() {
            out.push_str(&format!("\\x{byte:02x}"));
        }
    }
    out
}

/// The characters that change the direction text is shown in: the
/// embeddings and overrides (U+202A to U+202E), the isolates (U+2066 to
/// U+2069) and the marks (U+200E, U+200F).
pub fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}')
}

/// Arbitrary bytes as a string for the crash record: invalid UTF-8 becomes
/// U+FFFD (JSON escapes control characters itself).
pub fn lossy(raw: &[u8]) -> String {
    String::from_utf8_lossy(raw).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_safe(name: &str) {
        assert!(!name.is_empty());
        assert!(name.len() <= MAX_COMPONENT_LEN, "{name:?} too long");
        assert!(!name.contains('/'), "{name:?} has a slash");
        assert!(!name.starts_with('.'), "{name:?} starts with a dot");
        assert!(
            name.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_+.".contains(&b)),
            "{name:?} has an unsafe byte"
        );
    }

    #[test]
    fn plain_names_are_kept() {
        assert_eq!(
            file_name_component(b"crasher", MAX_COMPONENT_LEN),
            "crasher"
        );
        assert_eq!(
            file_name_component(b"gnome-shell", MAX_COMPONENT_LEN),
            "gnome-shell"
        );
        assert_eq!(
            file_name_component(b"x.y_z+1", MAX_COMPONENT_LEN),
            "x.y_z+1"
        );
    }

    #[test]
    fn hostile_names_become_safe_components() {
        let cases: &[&[u8]] = &[
            b"../../etc/x",
            b"..",
            b".",
            b"/",
            b"",
            b"a\nb",
            b"evil\x1b[31m",
            b"\xff\xfe\x00",
            b"name with spaces",
            b"x=y",
            &[b'a'; 255],
            &[b'/'; 255],
            "caf\u{e9}".as_bytes(),
        ];
        for raw in cases {
            assert_safe(&file_name_component(raw, MAX_COMPONENT_LEN));
        }
        assert_eq!(
            file_name_component(b"../../etc/x", MAX_COMPONENT_LEN),
            "_._.._etc_x"
        );
        assert_eq!(file_name_component(b"..", MAX_COMPONENT_LEN), "_.");
        assert_eq!(file_name_component(b"a\nb", MAX_COMPONENT_LEN), "a_b");
        assert_eq!(file_name_component(b"", MAX_COMPONENT_LEN), "unknown");
        assert_eq!(
            file_name_component(&[b'a'; 255], MAX_COMPONENT_LEN).len(),
            64
        );
    }

    #[test]
    fn tiny_limits_still_give_a_name() {
        assert_eq!(file_name_component(b"", 1), "u");
        assert_eq!(file_name_component(b"abc", 0), "a");
    }

    #[test]
    fn log_form_is_one_printable_line() {
        assert_eq!(for_log(b"plain"), "plain");
        assert_eq!(for_log(b"a\nb"), "a\\nb");
        assert_eq!(for_log(b"\xffok"), "\\xffok");
        assert_eq!(for_log(b"esc\x1b"), "esc\\x1b");
        assert_eq!(for_log("caf\u{e9}".as_bytes()), "caf\u{e9}");
        assert_eq!(for_log("ab\u{202e}gpj".as_bytes()), "ab\\xe2\\x80\\xaegpj");
        for bidi in [
            '\u{202a}', '\u{202e}', '\u{2066}', '\u{2069}', '\u{200e}', '\u{200f}',
        ] {
            let line = for_log(format!("a{bidi}b").as_bytes());
            assert!(!line.contains(bidi), "{line:?}");
            assert!(line.starts_with("a\\xe2\\x8"), "{line:?}");
        }
        // Neighbours of the ranges are ordinary text.
        assert_eq!(for_log("\u{2029}\u{2065}".as_bytes()), "\u{2029}\u{2065}");
        let line = for_log(b"x\r\n<13>forged: line\x00");
        assert!(!line.contains('\n') && !line.contains('\r') && !line.contains('\0'));
    }
}
