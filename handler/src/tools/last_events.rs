//! The user-side task behind a crash report's last events
//! ([`crate::crash::last_events`]), run by this binary's trampoline once it
//! has become the user whose files it reads:
//!
//! - `last-events PID PROCNAME MAX snapshot DIR...`: babeltrace2 reads each
//!   snapshot directory; the events of process PID (by the `vpid` context,
//!   else `procname`; all of them when a channel records neither, with a
//!   note) are kept, the last MAX;
//! - `last-events PID PROCNAME MAX core OUTPUT SEARCH...`: the core on
//!   standard input (a descriptor root handed over) is recovered as `trace
//!   --from-core` does, into OUTPUT, created here (and removed afterwards;
//!   by the caller, as this user, when this child was killed), its
//!   metadata searched in the session's `--shm-path` and
//!   in SEARCH; babeltrace2 then reads the traces the same way.
//!
//! It prints one JSON [`Answer`]. Each line babeltrace2 prints is read up
//! to [`MAX_LINE`] bytes (the rest of a longer one is skipped), each event
//! kept cut to [`MAX_EVENT_BYTES`]; a path that is not a directory (a FIFO,
//! a link) is refused before babeltrace2 sees it. Its parent bounds its
//! time and output, and kills its process group (babeltrace2 with it).

use crate::crash::last_events::{cut, Answer, WireEvent, MAX_EVENT_BYTES};
use crate::tools::trace::babeltrace_text::Event;
use anyhow::{anyhow, Context, Result};
use lttng_coredump_recover::{self as recover, metadata, Options};
use std::collections::VecDeque;
use std::ffi::OsString;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

/// The longest babeltrace2 line read as one event.
pub const MAX_LINE: usize = 256 * 1024;
/// Bytes of babeltrace2's standard error kept.
const MAX_ERRORS: u64 = 16 * 1024;

/// What the task is asked.
struct Wanted {
    pid: i64,
    procname: Option<String>,
    max: usize,
}

/// The task (see the module's documentation).
pub fn task(args: &[OsString]) -> ExitCode {
    match run(args) {
        Ok(answer) => {
            let mut out = std::io::stdout().lock();
            match serde_json::to_writer(&mut out, &answer)
                .map_err(anyhow::Error::from)
                .and_then(|()| out.flush().map_err(anyhow::Error::from))
            {
                Ok(()) => ExitCode::SUCCESS,
                Err(err) => {
                    eprintln!("lttng-coredump: {err:#}");
                    ExitCode::from(2)
                }
            }
        }
        Err(err) => {
            eprintln!("lttng-coredump: {err:#}");
            ExitCode::from(2)
        }
    }
}

fn run(args: &[OsString]) -> Result<Answer> {
    let [pid, procname, max, mode, rest @ ..] = args else {
        return Err(anyhow!(
            "usage: last-events PID PROCNAME MAX snapshot DIR... | core OUTPUT SEARCH..."
        ));
    };
    let wanted = Wanted {
        pid: pid.to_string_lossy().parse().context("PID")?,
        procname: Some(procname.to_string_lossy().into_owned()).filter(|n| n != "-"),
        max: max.to_string_lossy().parse().context("MAX")?,
    };
    let mut reading = Reading::default();
    match mode.to_str() {
        Some("snapshot") => {
            for dir in rest {
                let dir = Path::new(dir);
                reading.trace(dir, &wanted, &dir.to_string_lossy());
            }
        }
        Some("core") => from_core(rest, &wanted, &mut reading)?,
        _ => return Err(anyhow!("unknown mode {mode:?}")),
    }
    Ok(reading.answer())
}

/// The events kept so far.
#[derive(Default)]
struct Reading {
    kept: VecDeque<WireEvent>,
    answer: Answer,
}

impl Reading {
    fn answer(mut self) -> Answer {
        self.answer.events = self.kept.into();
        self.answer
    }

    /// Reads the trace at `dir` (`what` it is, for the answer).
    fn trace(&mut self, dir: &Path, wanted: &Wanted, what: &str) {
        match self.read_trace(dir, wanted) {
            Ok(()) => self.answer.read.push(what.to_string()),
            Err(err) => self.answer.notes.push(format!("{what}: {err:#}")),
        }
    }

    fn read_trace(&mut self, dir: &Path, wanted: &Wanted) -> Result<()> {
        // The directory itself, not what a link points at; never a FIFO or
        // a device babeltrace2 would open.
        let meta = std::fs::symlink_metadata(dir).context("cannot look at it")?;
        if meta.file_type().is_symlink() {
            return Err(anyhow!("it is a symbolic link, not a snapshot directory"));
        }
        if !meta.is_dir() {
            return Err(anyhow!("it is not a directory"));
        }
        let mut child = Command::new("babeltrace2")
            .args([
                "--names=all",
                "--clock-seconds",
                "--no-delta",
                "--color=never",
            ])
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("cannot run babeltrace2 (apt-get install babeltrace2)")?;
        let stderr = child.stderr.take().expect("piped");
        let errors = std::thread::spawn(move || {
            let mut text = Vec::new();
            let _ = stderr.take(MAX_ERRORS).read_to_end(&mut text);
            String::from_utf8_lossy(&text).into_owned()
        });
        let mut reader = BufReader::new(child.stdout.take().expect("piped"));
        let mut line = Vec::new();
        let mut kept_here: VecDeque<WireEvent> = VecDeque::new();
        loop {
            match read_line(&mut reader, &mut line)? {
                None => break,
                Some(false) => continue,
                Some(true) => {}
            }
            let text = String::from_utf8_lossy(&line);
            let Some(event) = Event::parse(text.trim_end_matches('\n')) else {
                continue;
            };
            if !self.of_process(&event, wanted) {
                self.answer.other_processes += 1;
                continue;
            }
            self.answer.total += 1;
            kept_here.push_back(wire(&event));
            if kept_here.len() > wanted.max {
                kept_here.pop_front();
            }
        }
        let status = child.wait().context("waiting for babeltrace2")?;
        let errors = errors.join().unwrap_or_default();
        if !status.success() {
            let last = errors.lines().rev().find(|l| !l.trim().is_empty());
            return Err(anyhow!(
                "babeltrace2 failed ({status}): {}",
                cut(last.unwrap_or("no message"), 400)
            ));
        }
        self.kept.extend(kept_here);
        let mut all: Vec<WireEvent> = std::mem::take(&mut self.kept).into();
        all.sort_by_key(|e| e.unix_ns.unwrap_or(i64::MIN));
        let skip = all.len().saturating_sub(wanted.max);
        self.kept = all.into_iter().skip(skip).collect();
        Ok(())
    }

    /// Whether `event` is the crashing process's: by `vpid`, else by
    /// `procname`; an event with neither is kept, and counted in a note.
    fn of_process(&mut self, event: &Event, wanted: &Wanted) -> bool {
        match (event.context("vpid"), event.context("procname")) {
            (Some(vpid), _) => vpid.as_i64() == Some(wanted.pid),
            (None, Some(name)) => {
                let name: Option<String> = name.as_str().map(|n| n.chars().take(15).collect());
                let wanted: Option<String> = wanted
                    .procname
                    .as_ref()
                    .map(|n| n.chars().take(15).collect());
                wanted.is_some() && name == wanted
            }
            (None, None) => {
                if !self.answer.notes.iter().any(|n| n.starts_with(NO_CONTEXT)) {
                    self.answer.notes.push(format!(
                        "{NO_CONTEXT}: they are kept whatever process they are from (lttng \
                         add-context -u -t vpid)"
                    ));
                }
                true
            }
        }
    }
}

const NO_CONTEXT: &str = "some events carry no vpid or procname context";

/// One event as the answer carries it: its context and fields as
/// babeltrace2 printed them, cut.
fn wire(event: &Event) -> WireEvent {
    let parts: Vec<&str> = ["stream.event.context", "event.fields"]
        .iter()
        .filter_map(|label| event.item(label).map(|i| i.text.as_str()))
        .collect();
    WireEvent {
        timestamp: cut(&event.timestamp, 64),
        unix_ns: event.unix_ns().and_then(|ns| i64::try_from(ns).ok()),
        name: cut(&event.name, 256),
        fields: cut(&parts.join(", "), MAX_EVENT_BYTES),
    }
}

/// The next line into `line`: `None` at the end, `Some(false)` for a line
/// longer than [`MAX_LINE`] (skipped to its end), `Some(true)` otherwise.
fn read_line(reader: &mut impl BufRead, line: &mut Vec<u8>) -> Result<Option<bool>> {
    line.clear();
    let n = reader
        .by_ref()
        .take(MAX_LINE as u64)
        .read_until(b'\n', line)
        .context("reading babeltrace2's output")?;
    if n == 0 {
        return Ok(None);
    }
    if line.ends_with(b"\n") || n < MAX_LINE {
        return Ok(Some(true));
    }
    // Too long: the rest of it, up to its end, is skipped.
    loop {
        let buffer = reader.fill_buf().context("reading babeltrace2's output")?;
        if buffer.is_empty() {
            return Ok(Some(false));
        }
        match buffer.iter().position(|&b| b == b'\n') {
            Some(at) => {
                reader.consume(at + 1);
                return Ok(Some(false));
            }
            None => {
                let len = buffer.len();
                reader.consume(len);
            }
        }
    }
}

/// Removes the recovery's directory when dropped.
struct OwnDir(PathBuf);

impl Drop for OwnDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The core on standard input recovered into a directory of this
/// child's, and each trace with its metadata read.
fn from_core(args: &[OsString], wanted: &Wanted, reading: &mut Reading) -> Result<()> {
    let [output, search @ ..] = args else {
        return Err(anyhow!(
            "usage: last-events PID PROCNAME MAX core OUTPUT SEARCH..."
        ));
    };
    let core = std::io::stdin()
        .as_fd()
        .try_clone_to_owned()
        .context("the core's descriptor")?;
    let core =
        recover::reader::core_of_file(std::fs::File::from(core)).context("reading the core")?;
    let output = PathBuf::from(output);
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&output)
        .with_context(|| format!("cannot create {}", output.display()))?;
    let output = OwnDir(output);
    let options = Options {
        core: PathBuf::from("the saved core"),
        output: output.0.clone(),
        metadata: None,
        recorded_snapshots: Vec::new(),
        search: search.iter().map(PathBuf::from).collect(),
    };
    let report = recover::recover_from(core, &options).map_err(|e| anyhow!("{e}"))?;
    if report.status == recover::EXIT_NO_BUFFERS || report.traces.is_empty() {
        return Err(anyhow!("the core holds no LTTng-UST trace"));
    }
    for trace in &report.traces {
        let uuid = metadata::format_uuid(&trace.uuid);
        if trace.metadata.is_none() {
            reading.answer.notes.push(format!(
                "trace {uuid}: no metadata with its UUID was found (in the snapshots the \
                 records name, nor in a --shm-path directory): its events cannot be read"
            ));
            continue;
        }
        reading.trace(&trace.dir, wanted, &format!("trace {uuid}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_removal_the_crash_side_asks_for_is_the_user_sides() {
        assert_eq!(
            crate::crash::last_events::REMOVE_TASK,
            crate::tools::user_side::REMOVE
        );
    }

    #[test]
    fn a_link_or_a_fifo_in_place_of_a_snapshot_is_refused_before_babeltrace2() {
        let dir = std::env::temp_dir().join(format!("lcd-last-events-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).unwrap();
        let link = dir.join("link");
        std::os::unix::fs::symlink("/", &link).unwrap();
        let fifo = dir.join("fifo");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &fifo,
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        let wanted = Wanted {
            pid: 1,
            procname: None,
            max: 5,
        };
        let mut reading = Reading::default();
        reading.trace(&link, &wanted, "the link");
        reading.trace(&fifo, &wanted, "the fifo");
        let _ = std::fs::remove_dir_all(&dir);
        let answer = reading.answer();
        assert!(answer.read.is_empty());
        assert_eq!(
            answer.notes,
            [
                "the link: it is a symbolic link, not a snapshot directory",
                "the fifo: it is not a directory"
            ]
        );
    }

    #[test]
    fn a_line_longer_than_the_bound_is_skipped_whole() {
        let mut text = vec![b'a'; MAX_LINE * 2 + 3];
        text.extend_from_slice(b"\nshort\n");
        let mut reader = BufReader::with_capacity(4096, &text[..]);
        let mut line = Vec::new();
        assert_eq!(read_line(&mut reader, &mut line).unwrap(), Some(false));
        assert_eq!(read_line(&mut reader, &mut line).unwrap(), Some(true));
        assert_eq!(line, b"short\n");
        assert_eq!(read_line(&mut reader, &mut line).unwrap(), None);
    }

    #[test]
    fn events_are_the_processs_by_vpid_else_procname() {
        let wanted = Wanted {
            pid: 42,
            procname: Some("crasher".into()),
            max: 2,
        };
        let mut reading = Reading::default();
        let line = |context: &str| {
            Event::parse(&format!(
                "timestamp = 1.000000001, name = app:step, stream.event.context = {{ {context} }}, \
                 event.fields = {{ seq = 1 }}"
            ))
            .unwrap()
        };
        assert!(reading.of_process(&line("vpid = 42"), &wanted));
        assert!(!reading.of_process(&line("vpid = 43"), &wanted));
        assert!(reading.of_process(&line("procname = \"crasher\""), &wanted));
        assert!(!reading.of_process(&line("procname = \"other\""), &wanted));
        let event = line("vpid = 42");
        let wired = wire(&event);
        assert_eq!(wired.unix_ns, Some(1_000_000_001));
        assert_eq!(wired.fields, "{ vpid = 42 }, { seq = 1 }");
    }
}
