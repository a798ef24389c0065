//! Text for people: sizes in binary units, times ago, user names, and
//! escaping of what a crashing process chose (its name, command line,
//! executable path, events) so that it cannot drive the terminal, nor
//! reorder what it shows (the Unicode bidirectional controls). Text the
//! handler wrote, already escaped where it quotes such names, is shown as
//! it is ([`text`]): escaped once, never twice.

use std::fmt::Write as _;

/// `512B`, `1.5K`, `23.0M`, `2.0G` (binary multiples, as ls -h).
pub fn size(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "K", "M", "G", "T", "P"];
    if bytes < 1024 {
        return format!("{bytes}B");
    }
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1}{}", UNITS[unit])
}

/// Every control character (and DEL) escaped, so that printed text cannot
/// move the cursor, change colours or fake lines.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() || crate::base::sanitize::is_bidi_control(c) => {
                write!(out, "\\x{:02x}", c as u32).expect("String");
            }
            c => out.push(c),
        }
    }
    out
}

/// Text the handler or the tools wrote (a message, a reason): printed as
/// it is, backslashes included (it is already escaped where it quotes what
/// a process chose), with only control characters and bidirectional
/// controls escaped, should any have come through.
pub fn text(text: &str) -> String {
    escape_controls(text)
}

/// Only control characters escaped: for text that is already quoted and
/// escaped (babeltrace2's), whose backslashes must stay as they are.
pub fn escape_controls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() || crate::base::sanitize::is_bidi_control(c) {
            write!(out, "\\x{:02x}", c as u32).expect("String");
        } else {
            out.push(c);
        }
    }
    out
}

/// "5s ago", "3min ago", "2h ago", "4 days ago".
pub fn ago(seconds: i64, now: i64) -> String {
    let delta = now - seconds;
    if delta < 0 {
        return "in the future".into();
    }
    match delta {
        0..=59 => format!("{delta}s ago"),
        60..=3599 => format!("{}min ago", delta / 60),
        3600..=86_399 => format!("{}h {}min ago", delta / 3600, delta % 3600 / 60),
        _ => format!("{} days ago", delta / 86_400),
    }
}

/// `500ms`, `5s`, `2min`, `3h`, `30d` (the largest whole unit).
pub fn duration(duration: std::time::Duration) -> String {
    let seconds = duration.as_secs();
    if duration.subsec_nanos() != 0 && seconds < 60 {
        return match duration.as_millis() {
            millis if millis % 1000 == 0 => format!("{}s", millis / 1000),
            millis if seconds == 0 => format!("{millis}ms"),
            _ => format!("{}s", duration.as_secs_f64()),
        };
    }
    for (unit, size) in [("d", 86_400), ("h", 3600), ("min", 60)] {
        if seconds >= size && (seconds / size) * size == seconds {
            return format!("{}{unit}", seconds / size);
        }
    }
    format!("{seconds}s")
}

/// A short time measured in microseconds: `850 us`, `3.21 ms`, `1.52 s`.
pub fn micros(us: u64) -> String {
    match us {
        0..=999 => format!("{us} us"),
        1000..=999_999 => format!("{:.2} ms", us as f64 / 1000.0),
        _ => format!("{:.2} s", us as f64 / 1e6),
    }
}

/// The name of user `uid` from /etc/passwd, when it has one.
pub fn user_name(uid: u64) -> Option<String> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        let _password = fields.next()?;
        (fields.next()?.parse::<u64>().ok()? == uid).then(|| name.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(size(0), "0B");
        assert_eq!(size(1023), "1023B");
        assert_eq!(size(1536), "1.5K");
        assert_eq!(size(23 * 1024 * 1024), "23.0M");
        assert_eq!(size(2 * 1024 * 1024 * 1024), "2.0G");
    }

    #[test]
    fn hostile_text_is_escaped() {
        assert_eq!(escape("a\x1b[2Jb\nc\\"), "a\\x1b[2Jb\\nc\\\\");
        assert_eq!(escape("plain é"), "plain é");
        assert_eq!(escape("\u{9b}31m"), "\\x9b31m");
    }

    #[test]
    fn the_handlers_text_is_escaped_once_not_twice() {
        // The handler logged a hostile argument, escaped: shown as it is.
        let logged = "argument \"\\x7fELF\\n\" is not KEY=VALUE";
        assert_eq!(text(logged), logged);
        assert_ne!(escape(logged), logged, "escape would double it");
        // A control or bidi character that came through is still escaped.
        assert_eq!(text("a\x1b[2Jb\u{202e}"), "a\\x1b[2Jb\\x202e");
        assert_eq!(escape("x\u{202e}y"), "x\\x202ey");
    }

    #[test]
    fn durations() {
        use std::time::Duration;
        assert_eq!(duration(Duration::from_millis(500)), "500ms");
        assert_eq!(duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(duration(Duration::from_secs(5)), "5s");
        assert_eq!(duration(Duration::from_secs(120)), "2min");
        assert_eq!(duration(Duration::from_secs(30 * 86_400)), "30d");
        assert_eq!(duration(Duration::from_secs(90)), "90s");
    }

    #[test]
    fn ages() {
        assert_eq!(ago(100, 105), "5s ago");
        assert_eq!(ago(0, 125), "2min ago");
        assert_eq!(ago(0, 7300), "2h 1min ago");
        assert_eq!(ago(0, 3 * 86_400), "3 days ago");
    }
}
