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
//! there is no stack trace), and `SYSLOG_IDENTIFIER=lttng-coredump`.

use crate::export;
use crate::fields::Fields;
use crate::native::{self, SendError, Sent};
use std::path::Path;
use std::time::Duration;

/// systemd's `SD_MESSAGE_COREDUMP`: the entries `coredumpctl` lists.
pub const MESSAGE_ID: &str = "fc2e22bc6ee647b6b90729ab34a250b1";

/// What one crash's entry says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Crash {
    pub pid: i32,
    pub uid: u32,
    pub gid: u32,
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
        f.push("COREDUMP_PID", crash.pid.to_string())
            .push("COREDUMP_UID", crash.uid.to_string())
            .push("COREDUMP_GID", crash.gid.to_string())
            .push("COREDUMP_SIGNAL", crash.signal.to_string())
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
            "Process {} ({}) of user {} {}",
            crash.pid,
            one_line(&crash.comm),
            crash.uid,
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
            uid: 1000,
            gid: 100,
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
}
