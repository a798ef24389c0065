//! A crash's journal entry in systemd-coredump's form, so that
//! `coredumpctl list/info/debug/dump` and `journalctl` read our crashes as
//! theirs, plus fields of ours.
//!
//! systemd-coredump's fields (its `src/coredump/coredump.c`):
//! `MESSAGE_ID=fc2e22bc6ee647b6b90729ab34a250b1` (`SD_MESSAGE_COREDUMP`),
//! `PRIORITY=2` (`LOG_CRIT`), `COREDUMP_PID`, `COREDUMP_UID`,
//! `COREDUMP_GID`, `COREDUMP_SIGNAL`, `COREDUMP_TIMESTAMP` (the kernel's
//! `%t` in microseconds), `COREDUMP_RLIMIT`, `COREDUMP_HOSTNAME`,
//! `COREDUMP_DUMPABLE`, `COREDUMP_COMM`, `COREDUMP_EXE`,
//! `COREDUMP_CMDLINE`, what the caller read of `/proc/PID` (`COREDUMP_CWD`,
//! `COREDUMP_PROC_STATUS`, ...: [`Crash::proc`]), `COREDUMP_SIGNAL_NAME`,
//! `COREDUMP_FILENAME`, `COREDUMP_TRUNCATED`, `COREDUMP_PACKAGE_JSON`, and
//! `MESSAGE`: "Process PID (COMM) of user UID dumped core." then, after an
//! empty line, the stack trace (the report crate's
//! `render::systemd_stack_trace`).
//!
//! Ours: `LTTNG_COREDUMP_CRASH_ID` (the crash's ID, which the fleet's
//! spool and collector count a crash once by), `LTTNG_COREDUMP_SIGNATURE`
//! and `LTTNG_COREDUMP_PROBLEM` (the crash's signature and its one-line
//! title), `LTTNG_COREDUMP_SNAPSHOT_PATH`
//! (once per LTTng snapshot recorded: its directory on this host; the
//! fleet's `LTTNG_COREDUMP_RELAY_SNAPSHOT_PATH` names a relay's copy), `LTTNG_COREDUMP_TRACE_ONLY_IN_CORE`
//! (`1` when no snapshot was taken and the trace is only in the core's
//! ring buffers), `LTTNG_COREDUMP_RECORD` and `LTTNG_COREDUMP_REPORT` (the
//! crash record and report files), `LTTNG_COREDUMP_ANALYSIS_FAILED` (why
//! there is no stack trace), `LTTNG_COREDUMP_UID_UNKNOWN` and
//! `LTTNG_COREDUMP_GID_UNKNOWN` (below), and
//! `SYSLOG_IDENTIFIER=lttng-coredump`.
//!
//! **Every entry carries a `COREDUMP_UID` and a `COREDUMP_GID` coredumpctl
//! reads.** systemd 252's `coredumpctl list` passes both values to its
//! `parse_uid()`/`parse_gid()`, which assert on a missing one (the whole
//! listing aborts, every other crash with it); `info` prints what is there,
//! and a value its parser refuses (not decimal, `4294967295` or `65535`,
//! which systemd never takes for an id) shows as `-` in `list`. So an id
//! that is not known (a kernel argument missing or malformed) or that
//! systemd refuses is written as [`UNKNOWN_ID`] (65534, the kernel's
//! overflow id, `nobody`/`nogroup`: no id of anyone's privileges, never
//! root's 0), and the entry says so in `LTTNG_COREDUMP_UID_UNKNOWN` /
//! `LTTNG_COREDUMP_GID_UNKNOWN` (with the value refused, if any).
//! [`readable_ids`] does the same for entries written by others that we
//! forward (the fleet's spool).

use crate::export;
use crate::fields::Fields;
use crate::native::{self, SendError, Sent};
use std::path::Path;
use std::time::Duration;

/// systemd's `SD_MESSAGE_COREDUMP`: the entries `coredumpctl` lists.
pub const MESSAGE_ID: &str = "fc2e22bc6ee647b6b90729ab34a250b1";

/// What `COREDUMP_UID` or `COREDUMP_GID` holds when the id is not known
/// or is one coredumpctl cannot read: the kernel's overflow id.
pub const UNKNOWN_ID: u32 = 65534;
/// The entry's field saying its `COREDUMP_UID` stands for an unknown uid.
pub const UID_UNKNOWN: &str = "LTTNG_COREDUMP_UID_UNKNOWN";
/// The entry's field saying its `COREDUMP_GID` stands for an unknown gid.
pub const GID_UNKNOWN: &str = "LTTNG_COREDUMP_GID_UNKNOWN";
/// systemd's message IDs of the entries coredumpctl reads: a crash's
/// (`SD_MESSAGE_COREDUMP`) and a backtrace's (`SD_MESSAGE_BACKTRACE`).
const COREDUMPCTL_MESSAGE_IDS: [&str; 2] = [MESSAGE_ID, "1f4e0a44a88649939aaea34fc6da8c95"];

/// Whether systemd takes `id` for a uid or gid: its `parse_uid()` refuses
/// `(uid_t) -1` and the 16-bit `-1`.
pub fn systemd_takes_id(id: u32) -> bool {
    id != u32::MAX && id != 0xFFFF
}

/// The id in `text` when coredumpctl reads it as one: decimal digits only
/// (no sign, no space), an id systemd takes.
fn read_id(text: &[u8]) -> Option<u32> {
    if text.is_empty() || text.len() > 10 || !text.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(text)
        .ok()?
        .parse()
        .ok()
        .filter(|&id| systemd_takes_id(id))
}

/// `COREDUMP_UID`/`COREDUMP_GID` (`field`) for `id` (`what`: `uid`,
/// `gid`), and, when it is not known or not one coredumpctl reads, our
/// field (`unknown_field`) saying so.
fn id_fields(
    field: &'static str,
    unknown_field: &'static str,
    what: &str,
    id: Result<u32, Option<Vec<u8>>>,
) -> Vec<(&'static str, Vec<u8>)> {
    let note = |detail: String| {
        format!(
            "{detail}: {field}={UNKNOWN_ID} stands for it (a value coredumpctl reads, no \
             one's privileges)"
        )
    };
    match id {
        Ok(id) if systemd_takes_id(id) => vec![(field, id.to_string().into_bytes())],
        Ok(id) => vec![
            (field, UNKNOWN_ID.to_string().into_bytes()),
            (
                unknown_field,
                note(format!("the {what} {id} is not one systemd reads")).into_bytes(),
            ),
        ],
        Err(refused) => vec![
            (field, UNKNOWN_ID.to_string().into_bytes()),
            (
                unknown_field,
                note(match refused {
                    None => format!("the crashing process's {what} is not known"),
                    Some(value) => format!(
                        "the {what} {:?} is not one coredumpctl reads",
                        String::from_utf8_lossy(&value)
                    ),
                })
                .into_bytes(),
            ),
        ],
    }
}

/// The fields of an entry written by others, as we forward it: when
/// coredumpctl reads the entry (its `MESSAGE_ID` is systemd-coredump's),
/// a `COREDUMP_UID` or `COREDUMP_GID` missing, repeated or not readable
/// is replaced by [`UNKNOWN_ID`] with our field saying so (see the
/// module's documentation); every other field, and every other entry, as
/// it is.
pub fn readable_ids(fields: &[(String, Vec<u8>)]) -> Vec<(String, Vec<u8>)> {
    let read_by_coredumpctl = fields.iter().any(|(name, value)| {
        name == "MESSAGE_ID"
            && COREDUMPCTL_MESSAGE_IDS
                .iter()
                .any(|id| id.as_bytes() == value)
    });
    if !read_by_coredumpctl {
        return fields.to_vec();
    }
    let mut out = fields.to_vec();
    for (field, unknown_field, what) in [
        ("COREDUMP_UID", UID_UNKNOWN, "uid"),
        ("COREDUMP_GID", GID_UNKNOWN, "gid"),
    ] {
        let values: Vec<&Vec<u8>> = fields
            .iter()
            .filter(|(name, _)| name == field)
            .map(|(_, value)| value)
            .collect();
        let id = match values.as_slice() {
            [one] => read_id(one).ok_or_else(|| Some(one.to_vec())),
            [] => Err(None),
            // coredumpctl keeps the last one it meets: say what is meant.
            _ => Err(Some(
                values
                    .iter()
                    .map(|v| v.as_slice())
                    .collect::<Vec<_>>()
                    .join(&b","[..]),
            )),
        };
        if id.is_ok() {
            continue;
        }
        out.retain(|(name, _)| name != field && name != unknown_field);
        out.extend(
            id_fields(field, unknown_field, what, id)
                .into_iter()
                .map(|(name, value)| (name.to_owned(), value)),
        );
    }
    out
}

/// What one crash's entry says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Crash {
    pub pid: i32,
    /// The crashing process's uid and gid, when known (see the module's
    /// documentation for what the entry says when not).
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub signal: i32,
    /// `SIGSEGV` (`COREDUMP_SIGNAL_NAME`), when known.
    pub signal_name: Option<String>,
    /// When it crashed, microseconds since the epoch.
    pub timestamp_usec: u64,
    /// The crashed process's RLIMIT_CORE (the kernel's `%c`).
    pub rlimit: Option<u64>,
    pub hostname: Option<String>,
    /// The kernel's `%d`.
    pub dumpable: Option<u32>,
    pub comm: String,
    pub exe: Option<String>,
    /// The command line, arguments separated by spaces (quoted as the
    /// caller sees fit).
    pub cmdline: Option<String>,
    /// Fields read from `/proc/PID` by the caller (`COREDUMP_CWD`,
    /// `COREDUMP_PROC_STATUS`, `COREDUMP_PROC_MAPS`, ...), added as they
    /// are.
    pub proc: Fields,
    /// The core file, when one was written: its path (`.zst` when
    /// compressed: coredumpctl decompresses by the name) and whether a size
    /// limit cut it.
    pub core: Option<CoreFile>,
    /// systemd-coredump's stack trace text (after MESSAGE's first line).
    pub stack_trace: Option<String>,
    /// The modules' build-ids (`COREDUMP_PACKAGE_JSON`).
    pub package_json: Option<String>,
    /// Why there is no stack trace, when the analysis failed.
    pub analysis_failed: Option<String>,
    /// The crash's ID (the fleet's `crash_id`), when it has one.
    pub crash_id: Option<String>,
    /// The crash's signature and its title.
    pub signature: Option<String>,
    pub problem: Option<String>,
    /// The LTTng snapshots recorded for the crash.
    pub snapshots: Vec<String>,
    /// No snapshot was taken: the trace is only in the core.
    pub trace_only_in_core: bool,
    /// The crash record and the report, when written.
    pub record: Option<String>,
    pub report: Option<String>,
}

/// A core file, as the entry names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoreFile {
    pub path: String,
    pub truncated: bool,
}

/// A crash's journal entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub fields: Fields,
}

/// `text` with its control characters escaped (`\x0a`), for MESSAGE's
/// first line (a process name may hold a newline).
fn one_line(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            out.push_str(&format!("\\x{:02x}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

impl From<&Crash> for Entry {
    fn from(crash: &Crash) -> Entry {
        let mut f = Fields::new();
        f.push("MESSAGE_ID", MESSAGE_ID).push("PRIORITY", "2");
        f.push("SYSLOG_IDENTIFIER", "lttng-coredump");
        f.push("COREDUMP_PID", crash.pid.to_string());
        let mut unknown = Vec::new();
        for (field, unknown_field, what, id) in [
            ("COREDUMP_UID", UID_UNKNOWN, "uid", crash.uid),
            ("COREDUMP_GID", GID_UNKNOWN, "gid", crash.gid),
        ] {
            for (name, value) in id_fields(field, unknown_field, what, id.ok_or(None)) {
                if name == field {
                    f.push(name, value);
                } else {
                    unknown.push((name, value));
                }
            }
        }
        f.push("COREDUMP_SIGNAL", crash.signal.to_string())
            .push("COREDUMP_TIMESTAMP", crash.timestamp_usec.to_string());
        if let Some(rlimit) = crash.rlimit {
            f.push("COREDUMP_RLIMIT", rlimit.to_string());
        }
        if let Some(hostname) = &crash.hostname {
            f.push("COREDUMP_HOSTNAME", hostname);
        }
        if let Some(dumpable) = crash.dumpable {
            f.push("COREDUMP_DUMPABLE", dumpable.to_string());
        }
        f.push("COREDUMP_COMM", &crash.comm);
        if let Some(exe) = &crash.exe {
            f.push("COREDUMP_EXE", exe);
        }
        if let Some(cmdline) = &crash.cmdline {
            f.push("COREDUMP_CMDLINE", cmdline);
        }
        for (name, value) in crash.proc.iter() {
            f.push(name, value);
        }
        if let Some(name) = &crash.signal_name {
            f.push("COREDUMP_SIGNAL_NAME", name);
        }
        if let Some(core) = &crash.core {
            f.push("COREDUMP_FILENAME", &core.path);
        }
        let mut message = format!(
            "Process {} ({}) of {} {}",
            crash.pid,
            one_line(&crash.comm),
            match crash.uid {
                Some(uid) => format!("user {uid}"),
                None => "an unknown user".into(),
            },
            if crash.core.is_some() {
                "dumped core."
            } else {
                "terminated abnormally without generating a coredump."
            }
        );
        if let Some(trace) = &crash.stack_trace {
            message.push_str("\n\n");
            message.push_str(trace);
        } else if let Some(reason) = &crash.analysis_failed {
            message.push_str("\n\nThe crash report's analysis failed: ");
            message.push_str(&one_line(reason));
        }
        f.push("MESSAGE", message);
        if crash.core.as_ref().is_some_and(|c| c.truncated) {
            f.push("COREDUMP_TRUNCATED", "1");
        }
        if let Some(json) = &crash.package_json {
            f.push("COREDUMP_PACKAGE_JSON", json);
        }
        if let Some(id) = &crash.crash_id {
            f.push("LTTNG_COREDUMP_CRASH_ID", id);
        }
        if let Some(signature) = &crash.signature {
            f.push("LTTNG_COREDUMP_SIGNATURE", signature);
        }
        if let Some(problem) = &crash.problem {
            f.push("LTTNG_COREDUMP_PROBLEM", problem);
        }
        for snapshot in &crash.snapshots {
            f.push("LTTNG_COREDUMP_SNAPSHOT_PATH", snapshot);
        }
        f.push(
            "LTTNG_COREDUMP_TRACE_ONLY_IN_CORE",
            if crash.trace_only_in_core { "1" } else { "0" },
        );
        if let Some(record) = &crash.record {
            f.push("LTTNG_COREDUMP_RECORD", record);
        }
        if let Some(report) = &crash.report {
            f.push("LTTNG_COREDUMP_REPORT", report);
        }
        if let Some(reason) = &crash.analysis_failed {
            f.push("LTTNG_COREDUMP_ANALYSIS_FAILED", reason);
        }
        for (name, value) in unknown {
            f.push(name, value);
        }
        Entry { fields: f }
    }
}

/// The address fields of an entry in the export format (all optional:
/// the receiving journal stamps an entry without them with its own time).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Address {
    /// `__REALTIME_TIMESTAMP`: microseconds since the epoch.
    pub realtime_usec: Option<u64>,
    /// `__MONOTONIC_TIMESTAMP`: microseconds since boot.
    pub monotonic_usec: Option<u64>,
    /// `_BOOT_ID`: 32 hexadecimal digits.
    pub boot_id: Option<String>,
}

impl Entry {
    /// Sends the entry to the journald on `socket` (see [`native::send`]).
    pub fn send(&self, socket: &Path, timeout: Duration) -> Result<Sent, SendError> {
        native::send(&self.fields, socket, timeout)
    }

    /// The entry in the journal export format, after the address fields
    /// `address` has.
    pub fn export(&self, address: &Address) -> Vec<u8> {
        let mut out = Vec::new();
        if let Some(t) = address.realtime_usec {
            export::write_field(&mut out, "__REALTIME_TIMESTAMP", t.to_string().as_bytes());
        }
        if let Some(t) = address.monotonic_usec {
            export::write_field(&mut out, "__MONOTONIC_TIMESTAMP", t.to_string().as_bytes());
        }
        if let Some(id) = &address.boot_id {
            export::write_field(&mut out, "_BOOT_ID", id.as_bytes());
        }
        let fields = self.fields.iter();
        export::write_entry(&mut out, fields, false)
            .expect("the names were checked when the fields were added");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_entry_has_systemd_coredumps_fields_and_ours() {
        let crash = Crash {
            pid: 42,
            uid: Some(1000),
            gid: Some(100),
            signal: 11,
            signal_name: Some("SIGSEGV".into()),
            timestamp_usec: 1_700_000_000_000_000,
            comm: "bad\nname".into(),
            exe: Some("/usr/bin/bad".into()),
            core: Some(CoreFile {
                path: "/var/lib/lttng-coredump/core.zst".into(),
                truncated: true,
            }),
            stack_trace: Some(
                "Stack trace of thread 42:\n#0  0x0000000000001000 f (bad + 0x1000)\n".into(),
            ),
            snapshots: vec!["/a".into(), "/b".into()],
            signature: Some("0123".into()),
            ..Crash::default()
        };
        let entry = Entry::from(&crash);
        let get = |name| String::from_utf8(entry.fields.get(name).unwrap().to_vec()).unwrap();
        assert_eq!(get("MESSAGE_ID"), MESSAGE_ID);
        assert_eq!(get("COREDUMP_PID"), "42");
        assert_eq!(get("COREDUMP_SIGNAL_NAME"), "SIGSEGV");
        assert_eq!(get("COREDUMP_TRUNCATED"), "1");
        assert_eq!(get("COREDUMP_COMM"), "bad\nname");
        assert_eq!(
            get("MESSAGE"),
            "Process 42 (bad\\x0aname) of user 1000 dumped core.\n\nStack trace of thread 42:\n#0  0x0000000000001000 f (bad + 0x1000)\n"
        );
        assert_eq!(
            entry.fields.get_all("LTTNG_COREDUMP_SNAPSHOT_PATH").count(),
            2
        );
        let exported = entry.export(&Address {
            realtime_usec: Some(1_700_000_000_000_000),
            ..Address::default()
        });
        assert!(exported.starts_with(b"__REALTIME_TIMESTAMP=1700000000000000\nMESSAGE_ID="));
        let read = export::Reader::new(exported.as_slice(), export::ReadLimits::default())
            .next()
            .unwrap()
            .unwrap();
        assert_eq!(read.text("COREDUMP_COMM").as_deref(), Some("bad\nname"));
        assert_eq!(read.get("MESSAGE"), entry.fields.get("MESSAGE"));
        assert_eq!(get("LTTNG_COREDUMP_TRACE_ONLY_IN_CORE"), "0");
        let no_core = Entry::from(&Crash {
            analysis_failed: Some("x".into()),
            ..Crash::default()
        });
        let message = no_core.fields.get("MESSAGE").unwrap();
        assert!(String::from_utf8_lossy(message).contains("without generating a coredump"));
    }

    #[test]
    fn an_id_not_known_or_not_readable_is_the_overflow_id_and_the_entry_says_so() {
        let text = |entry: &Entry, name: &str| {
            entry
                .fields
                .get(name)
                .map(|v| String::from_utf8(v.to_vec()).unwrap())
        };
        // Known: the ids, no note.
        let known = Entry::from(&Crash {
            uid: Some(0),
            gid: Some(5),
            ..Crash::default()
        });
        assert_eq!(text(&known, "COREDUMP_UID").as_deref(), Some("0"));
        assert_eq!(text(&known, "COREDUMP_GID").as_deref(), Some("5"));
        assert_eq!(text(&known, UID_UNKNOWN), None);
        assert_eq!(text(&known, GID_UNKNOWN), None);
        // Not known (a kernel argument missing or malformed): 65534, never
        // root's 0, and said; the message names no user.
        let unknown = Entry::from(&Crash {
            uid: Some(1000),
            gid: None,
            ..Crash::default()
        });
        assert_eq!(text(&unknown, "COREDUMP_UID").as_deref(), Some("1000"));
        assert_eq!(text(&unknown, "COREDUMP_GID").as_deref(), Some("65534"));
        assert!(text(&unknown, GID_UNKNOWN)
            .unwrap()
            .starts_with("the crashing process's gid is not known"));
        let neither = Entry::from(&Crash::default());
        assert_eq!(text(&neither, "COREDUMP_UID").as_deref(), Some("65534"));
        assert!(text(&neither, "MESSAGE")
            .unwrap()
            .contains("of an unknown user"));
        // Ids systemd refuses: replaced, the value said.
        let refused = Entry::from(&Crash {
            uid: Some(u32::MAX),
            gid: Some(0xFFFF),
            ..Crash::default()
        });
        assert_eq!(text(&refused, "COREDUMP_UID").as_deref(), Some("65534"));
        assert_eq!(text(&refused, "COREDUMP_GID").as_deref(), Some("65534"));
        assert!(text(&refused, UID_UNKNOWN).unwrap().contains("4294967295"));
        assert!(text(&refused, GID_UNKNOWN).unwrap().contains("65535"));
    }

    #[test]
    fn a_forwarded_entry_gets_readable_ids_and_nothing_else_changes() {
        let entry = |fields: &[(&str, &str)]| -> Vec<(String, Vec<u8>)> {
            fields
                .iter()
                .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
                .collect()
        };
        let get = |fields: &[(String, Vec<u8>)], name: &str| -> Vec<String> {
            fields
                .iter()
                .filter(|(n, _)| n == name)
                .map(|(_, v)| String::from_utf8(v.clone()).unwrap())
                .collect()
        };
        // Readable: as it is.
        let good = entry(&[
            ("MESSAGE_ID", MESSAGE_ID),
            ("COREDUMP_UID", "1000"),
            ("COREDUMP_GID", "100"),
        ]);
        assert_eq!(readable_ids(&good), good);
        // Missing, malformed, repeated: replaced and said.
        let bad = entry(&[
            ("MESSAGE_ID", MESSAGE_ID),
            ("COREDUMP_UID", "-1"),
            ("COREDUMP_GID", "1"),
            ("COREDUMP_GID", "2"),
            ("MESSAGE", "x"),
        ]);
        let fixed = readable_ids(&bad);
        assert_eq!(get(&fixed, "COREDUMP_UID"), ["65534"]);
        assert_eq!(get(&fixed, "COREDUMP_GID"), ["65534"]);
        assert!(get(&fixed, UID_UNKNOWN)[0].contains("\"-1\""));
        assert!(get(&fixed, GID_UNKNOWN)[0].contains("\"1,2\""));
        assert_eq!(get(&fixed, "MESSAGE"), ["x"]);
        let missing = entry(&[("MESSAGE_ID", MESSAGE_ID), ("COREDUMP_UID", "7")]);
        let fixed = readable_ids(&missing);
        assert_eq!(get(&fixed, "COREDUMP_UID"), ["7"]);
        assert_eq!(get(&fixed, "COREDUMP_GID"), ["65534"]);
        assert!(get(&fixed, GID_UNKNOWN)[0].contains("not known"));
        // An entry coredumpctl does not read: as it is.
        let other = entry(&[("MESSAGE", "a log line")]);
        assert_eq!(readable_ids(&other), other);
    }
}
