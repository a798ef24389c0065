//! A report in words: for people (`info`: the crashing thread and the last
//! events; `info --threads`: every thread and the modules), and in
//! systemd-coredump's words for the journal (the stack trace of its
//! `MESSAGE`, and `COREDUMP_PACKAGE_JSON`).
//!
//! Every string of a report comes from the crashed process: control
//! characters are escaped (`\u{1b}`), so that a symbol or file name
//! cannot move a terminal's cursor or start a new journal line.

use crate::model::{EventSource, Frame, LastEvents, Report, Thread};
use std::fmt::Write as _;

/// systemd-coredump's bounds on the stack trace it writes in `MESSAGE`
/// (`THREADS_MAX`, `FRAMES_MAX` in its `elf-util.c`).
pub const SYSTEMD_THREADS: usize = 64;
pub const SYSTEMD_FRAMES: usize = 64;

/// What [`text`] shows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Options {
    /// Every thread and the module list (`info --threads`), not only the
    /// crashing thread.
    pub all_threads: bool,
}

/// `text` with its control characters escaped.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        } else {
            out.push(c);
        }
    }
    out
}

/// The file name of a module path (`libc.so.6`).
fn base_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// The report for people.
pub fn text(report: &Report, options: &Options) -> String {
    let mut out = String::new();
    if let Some(signal) = &report.signal {
        let _ = write!(out, "Signal: {} ({})", escape(&signal.name), signal.number);
        if let Some(code) = &signal.code_name {
            let _ = write!(out, ", {}", escape(code));
        }
        if let Some(description) = &signal.description {
            let _ = write!(out, ": {}", escape(description));
        }
        if let Some(address) = signal.fault_address {
            let _ = write!(out, ", at address {address:#x}");
        }
        if let Some(pid) = signal.sender_pid {
            let _ = write!(out, ", sent by pid {pid}");
            if let Some(uid) = signal.sender_uid {
                let _ = write!(out, " (uid {uid})");
            }
        }
        out.push('\n');
    }
    if let Some(instruction) = &report.faulting_instruction {
        let _ = write!(out, "Instruction: {:#x}", instruction.address);
        if let Some(frame) = report.crashing_thread().and_then(|t| t.frames.first()) {
            if let (Some(module), Some(offset)) = (&frame.module, frame.module_offset) {
                let _ = write!(out, " ({} + {offset:#x})", escape(base_name(module)));
            }
        }
        let _ = write!(out, ": {}", escape(&instruction.bytes));
        if let Some(disassembly) = &instruction.disassembly {
            let _ = write!(out, "    {}", escape(disassembly));
        }
        out.push('\n');
    }
    let count = report.threads_in_core;
    match report.crashing_thread() {
        Some(thread) => {
            let _ = writeln!(
                out,
                "Crashing thread {} ({} thread{} in the core):",
                thread.tid,
                count,
                if count == 1 { "" } else { "s" }
            );
            backtrace(&mut out, thread);
        }
        None => out.push_str("The crashing thread was not unwound.\n"),
    }
    if let Some(events) = &report.last_events {
        out.push_str(&last_events(events));
    }
    let others: Vec<&Thread> = report.threads.iter().filter(|t| !t.crashing).collect();
    if options.all_threads {
        for thread in &others {
            let _ = writeln!(out, "Thread {}:", thread.tid);
            backtrace(&mut out, thread);
        }
        if let Some(why) = &report.threads_left_out {
            let _ = writeln!(out, "({})", escape(why));
        }
        if !report.modules.is_empty() {
            out.push_str("Modules:\n");
            for module in &report.modules {
                let _ = write!(
                    out,
                    "  {:#x}-{:#x} {}",
                    module.start,
                    module.end,
                    escape(&module.name)
                );
                match &module.build_id {
                    Some(id) => {
                        let _ = write!(out, " build-id {}", escape(id));
                    }
                    None => out.push_str(" (no build-id)"),
                }
                if let Some(debug) = &module.debug_file {
                    let _ = write!(out, ", debug info {}", escape(debug));
                }
                out.push('\n');
            }
        }
    } else if count > 1 {
        let _ = writeln!(
            out,
            "{} other thread{} (see all threads)",
            count - 1,
            if count == 2 { "" } else { "s" }
        );
    }
    for note in &report.analysis.notes {
        let _ = writeln!(out, "Note: {}", escape(note));
    }
    out
}

fn backtrace(out: &mut String, thread: &Thread) {
    for (i, frame) in thread.frames.iter().enumerate() {
        let _ = writeln!(out, "  #{i:<2} {}", frame_text(frame));
    }
    if thread.frames.is_empty() {
        out.push_str("  (no frame)\n");
    }
    if let Some(why) = &thread.incomplete {
        let _ = writeln!(out, "  ({})", escape(why));
    }
}

/// One frame: `0x... in FUNCTION + 0xOFF (MODULE + 0xOFF) at FILE:LINE`.
pub fn frame_text(frame: &Frame) -> String {
    let mut out = format!("{:#018x}", frame.pc);
    match &frame.function {
        Some(function) => {
            let _ = write!(out, " in {}", escape(function));
            if let Some(offset) = frame.function_offset {
                let _ = write!(out, " + {offset:#x}");
            }
        }
        None => out.push_str(" in ??"),
    }
    if let (Some(module), Some(offset)) = (&frame.module, frame.module_offset) {
        let _ = write!(out, " ({} + {offset:#x})", escape(base_name(module)));
    }
    if let Some(file) = &frame.file {
        let _ = write!(out, " at {}", escape(file));
        if let Some(line) = frame.line {
            let _ = write!(out, ":{line}");
        }
    }
    out
}

/// The widest line of an event [`text`] shows (characters); longer ones
/// end in `…`.
pub const EVENT_WIDTH: usize = 160;

/// `text` cut to `width` characters, `…` last when it was cut.
pub fn bounded(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_string();
    }
    let mut out: String = text.chars().take(width.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// `-0.001234567s`: a time to the crash, nanoseconds.
pub fn delta(ns: i64) -> String {
    let sign = if ns < 0 { "-" } else { "+" };
    let abs = ns.unsigned_abs();
    format!("{sign}{}.{:09}s", abs / 1_000_000_000, abs % 1_000_000_000)
}

/// One event, one line of at most `width` characters: its time to the
/// crash (else its timestamp), its name and its fields, escaped.
pub fn event_line(event: &crate::model::Event, width: usize) -> String {
    let when = event
        .to_crash_ns
        .map_or_else(|| format!("[{}]", escape(&event.timestamp)), delta);
    let mut line = format!("{when} {}", escape(&event.name));
    if !event.fields.is_empty() {
        let _ = write!(line, ": {}", escape(&event.fields));
    }
    bounded(&line, width)
}

/// The last events, one a line, oldest first (or why there are none).
pub fn last_events(events: &LastEvents) -> String {
    let mut out = String::new();
    let source = match &events.source {
        EventSource::Snapshot { path } => format!("LTTng snapshot {}", escape(path)),
        EventSource::RecoveredFromCore { path } => {
            format!("recovered from the core {}", escape(path))
        }
        EventSource::Unavailable { reason } => {
            let _ = writeln!(
                out,
                "Last events unavailable: {}",
                bounded(&escape(reason), 4 * EVENT_WIDTH)
            );
            for note in &events.notes {
                let _ = writeln!(out, "  note: {}", bounded(&escape(note), EVENT_WIDTH));
            }
            return out;
        }
    };
    let shown = events.events.len();
    let _ = match events.total {
        Some(total) if total as usize > shown => {
            writeln!(out, "Last events ({source}; the last {shown} of {total}):")
        }
        _ => writeln!(out, "Last events ({source}):"),
    };
    if events.events.is_empty() {
        out.push_str("  (none)\n");
    }
    for event in &events.events {
        let _ = writeln!(out, "  {}", event_line(event, EVENT_WIDTH));
    }
    if events.other_processes > 0 {
        let _ = writeln!(
            out,
            "  ({} event{} of other processes left out)",
            events.other_processes,
            if events.other_processes == 1 { "" } else { "s" }
        );
    }
    for note in &events.notes {
        let _ = writeln!(out, "  note: {}", bounded(&escape(note), EVENT_WIDTH));
    }
    out
}

/// Events the journal entry's `MESSAGE` carries after the stack trace.
pub const JOURNAL_EVENTS: usize = 5;

/// The last [`JOURNAL_EVENTS`] events for the journal entry's `MESSAGE`,
/// after its stack trace: a heading and one bounded line an event (or why
/// there are none); empty when the report has no such section.
pub fn journal_last_events(report: &Report) -> String {
    let Some(events) = &report.last_events else {
        return String::new();
    };
    let mut out = String::from("\n");
    if let EventSource::Unavailable { reason } = &events.source {
        let _ = writeln!(
            out,
            "Last events unavailable: {}",
            bounded(&escape(reason), 2 * EVENT_WIDTH)
        );
        return out;
    }
    let shown = events.events.len().min(JOURNAL_EVENTS);
    let _ = writeln!(
        out,
        "Last {shown} event{} of the process (lttng-coredump info for more):",
        if shown == 1 { "" } else { "s" }
    );
    for event in &events.events[events.events.len() - shown..] {
        let _ = writeln!(out, "  {}", event_line(event, EVENT_WIDTH));
    }
    out
}

/// The stack trace systemd-coredump writes in a crash's `MESSAGE` (after
/// its first line): a line per module with its build-id, then each
/// thread's frames (at most [`SYSTEMD_THREADS`] threads and
/// [`SYSTEMD_FRAMES`] frames, as systemd-coredump does), in its format.
pub fn systemd_stack_trace(report: &Report) -> String {
    let mut out = String::new();
    for module in &report.modules {
        match &module.build_id {
            Some(id) => {
                let _ = writeln!(
                    out,
                    "Module {} with build-id {}",
                    escape(&module.name),
                    escape(id)
                );
            }
            None => {
                let _ = writeln!(out, "Module {} without build-id.", escape(&module.name));
            }
        }
    }
    for (n, thread) in report.threads.iter().take(SYSTEMD_THREADS).enumerate() {
        if n > 0 {
            out.push('\n');
        }
        let _ = writeln!(out, "Stack trace of thread {}:", thread.tid);
        for (i, frame) in thread.frames.iter().take(SYSTEMD_FRAMES).enumerate() {
            let symbol = frame
                .symbol
                .as_deref()
                .or(frame.function.as_deref())
                .map_or_else(|| "n/a".to_string(), escape);
            let module = frame
                .module
                .as_deref()
                .map_or_else(|| "n/a".to_string(), escape);
            let _ = writeln!(
                out,
                "#{i:<2} {:#018x} {symbol} ({module} + {:#x})",
                frame.pc,
                frame.module_offset.unwrap_or(0)
            );
        }
    }
    out
}

/// The modules' build-ids as systemd-coredump's `COREDUMP_PACKAGE_JSON`
/// gives them: `{"elfType":"coredump","MODULE":{"buildId":"..."},...}`.
pub fn package_json(report: &Report) -> String {
    let mut map = serde_json::Map::new();
    map.insert("elfType".into(), "coredump".into());
    for module in &report.modules {
        if let Some(id) = &module.build_id {
            let mut entry = serde_json::Map::new();
            entry.insert("buildId".into(), id.clone().into());
            map.insert(module.name.clone(), entry.into());
        }
    }
    serde_json::Value::Object(map).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(escape("a\x1b[2Jb\nc"), "a\\u{1b}[2Jb\\u{a}c");
        assert_eq!(escape("plain ü"), "plain ü");
    }

    #[test]
    fn the_last_events_read_one_a_line_oldest_first() {
        use crate::model::Event;
        let events = LastEvents {
            source: EventSource::Snapshot {
                path: "/var/lib/lttng-coredump/traces/app-1".into(),
            },
            total: Some(1000),
            events: vec![
                Event {
                    timestamp: "1700000000.000000001".into(),
                    to_crash_ns: Some(-1_500_000_000),
                    name: "app:step".into(),
                    fields: "{ seq = 998 }".into(),
                },
                Event {
                    timestamp: "1700000001.000000002".into(),
                    to_crash_ns: None,
                    name: "app:step".into(),
                    fields: format!("{{ seq = 999, tag = \"\u{1b}[2J{}\" }}", "x".repeat(200)),
                },
            ],
            other_processes: 3,
            notes: vec!["a note".into()],
        };
        let text = last_events(&events);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "Last events (LTTng snapshot /var/lib/lttng-coredump/traces/app-1; the last 2 of 1000):"
        );
        assert_eq!(lines[1], "  -1.500000000s app:step: { seq = 998 }");
        assert!(
            lines[2].starts_with(
                "  [1700000001.000000002] app:step: { seq = 999, tag = \"\\u{1b}[2Jxxx"
            ),
            "{text}"
        );
        assert!(lines[2].ends_with('…') && lines[2].chars().count() == 2 + EVENT_WIDTH);
        assert_eq!(lines[3], "  (3 events of other processes left out)");
        assert_eq!(lines[4], "  note: a note");
        assert_eq!(
            last_events(&LastEvents::unavailable("the snapshot is a FIFO")),
            "Last events unavailable: the snapshot is a FIFO\n"
        );
        assert_eq!(delta(2_000_000_001), "+2.000000001s");
    }

    #[test]
    fn frames_read_like_gdb_and_systemd() {
        let frame = Frame {
            pc: 0x5555_5555_5169,
            function: Some("bug_one".into()),
            symbol: None,
            function_offset: Some(0),
            module: Some("/tmp/crash".into()),
            module_offset: Some(0x1169),
            file: Some("crash.c".into()),
            line: Some(5),
        };
        assert_eq!(
            frame_text(&frame),
            "0x0000555555555169 in bug_one + 0x0 (crash + 0x1169) at crash.c:5"
        );
    }
}
