//! The name of the snapshot a crash records of a session:
//! `<exec_name>-<pid>-<time>-<session>`, so that a snapshot can be matched
//! to its core. The session is in it because the session daemon makes the
//! snapshot's directory `<output>/<name>-<YYYYMMDD-HHMMSS>-<seq>`, where
//! `<seq>` counts the snapshots of that session only: two sessions sharing
//! an output directory, snapshotted in the same second under one name,
//! would write into one directory, the second one's files (the same
//! channel and metadata names) over the first one's.
//!
//! The process name comes from the crashing process and may be hostile
//! (`../../etc/x`, a newline, 255 bytes): only `[A-Za-z0-9_+-]` and inner
//! dots are kept, everything else becomes `_`, and it is cut to
//! [`EXEC_NAME_MAX`] bytes. The session name gets the same treatment.

use super::CrashInfo;
use std::time::{SystemTime, UNIX_EPOCH};

/// Longest process-name part of a snapshot name, in bytes.
pub const EXEC_NAME_MAX: usize = 64;

/// The process name reduced to safe characters; never empty, never `.`-led.
pub fn sanitize_exec_name(exec_name: &str) -> String {
    let mut safe: String = exec_name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '+' | '.') {
                c
            } else {
                '_'
            }
        })
        .take(EXEC_NAME_MAX)
        .collect();
    // No hidden names, no "..", nothing that reads as an option.
    if safe.starts_with(['.', '-']) {
        safe.replace_range(..1, "_");
    }
    let safe = safe.replace("..", "__");
    if safe.is_empty() {
        "unknown".to_string()
    } else {
        safe
    }
}

/// The name of the snapshot of `session` for a crash whose
/// [`snapshot_name`] is `crash_name`.
pub fn session_snapshot_name(crash_name: &str, session: &str) -> String {
    format!("{crash_name}-{}", sanitize_exec_name(session))
}

/// The snapshot name for `crash`, without its session (see
/// [`session_snapshot_name`]); the current time stands in for a crash time
/// of 0 (unknown).
pub fn snapshot_name(crash: &CrashInfo) -> String {
    let time = if crash.time > 0 {
        crash.time
    } else {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0)
    };
    format!(
        "{}-{}-{}",
        sanitize_exec_name(&crash.exec_name),
        crash.pid,
        time
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_names_become_safe_bounded_names() {
        assert_eq!(sanitize_exec_name("crasher"), "crasher");
        assert_eq!(sanitize_exec_name("../../etc/x"), "_.____etc_x");
        assert_eq!(sanitize_exec_name("python3.11"), "python3.11");
        assert_eq!(sanitize_exec_name("a\nb c/d"), "a_b_c_d");
        assert_eq!(sanitize_exec_name("-rf"), "_rf");
        assert_eq!(sanitize_exec_name(""), "unknown");
        assert_eq!(sanitize_exec_name("é"), "_");
        assert_eq!(sanitize_exec_name(&"x".repeat(255)).len(), EXEC_NAME_MAX);
    }

    #[test]
    fn names_carry_name_pid_and_time() {
        let crash = CrashInfo {
            pid: 1234,
            exec_name: "my app".into(),
            time: 1_700_000_000,
            ..CrashInfo::default()
        };
        assert_eq!(snapshot_name(&crash), "my_app-1234-1700000000");
        let name = snapshot_name(&CrashInfo::default());
        assert!(name.starts_with("unknown-0-17"), "{name}");
    }

    #[test]
    fn each_session_gets_its_own_name_safe_and_bounded() {
        let crash = "my_app-1234-1700000000";
        assert_eq!(
            session_snapshot_name(crash, "sess-a"),
            "my_app-1234-1700000000-sess-a"
        );
        assert_ne!(
            session_snapshot_name(crash, "a"),
            session_snapshot_name(crash, "b")
        );
        assert_eq!(
            session_snapshot_name(crash, "../x y"),
            "my_app-1234-1700000000-_._x_y"
        );
        // Within LTTng's 255-byte names, with room for what the session
        // daemon appends to make the directory's name.
        let longest = session_snapshot_name(
            &snapshot_name(&CrashInfo {
                pid: i32::MAX,
                exec_name: "x".repeat(255),
                time: i64::MAX,
                ..CrashInfo::default()
            }),
            &"s".repeat(255),
        );
        assert!(
            longest.len() + "-20261126-192219-4294967295".len() < 255,
            "{longest}"
        );
    }
}
