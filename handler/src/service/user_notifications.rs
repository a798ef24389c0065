//! A user's notification child: the first piece of following users' own
//! triggers (`[live]`), not yet wired into `serve`.
//!
//! # Why a child, and which daemon
//! A session daemon sends a notification channel only the notifications
//! of the triggers owned by the connecting uid (root's channel hears only
//! root's). To hear a user's triggers, the channel must be that user's: a
//! child acting as the user ([`crate::base::user_child`]: the user's ids
//! and groups, a new session, not dumpable, `no_new_privs`, dying with its
//! parent, a clean environment with the user's `HOME`) connects it. The
//! daemon is the one liblttng-ctl picks for that user, the one where the
//! user's own `lttng add-trigger` registers their triggers: root's daemon
//! for a member of the `tracing` group (when it runs), the user's own
//! (`$HOME/.lttng`) otherwise. So one child per user covers both cases,
//! each with the daemon the user's triggers actually live in.
//!
//! # What it sends
//! The child ([`task`], run by the trampoline as [`TASK`]) lists its
//! user's triggers every [`RELIST_INTERVAL`], subscribes to those of the
//! names it was given that are the user's own, have a notify action and
//! capture both `$ctx.vpid` and `$ctx.pid_ns`, and writes one JSON line to
//! its standard output per event ([`Line`]). Nothing in a line is trusted
//! by the parent beyond "the user's daemon said so": the owner uid is the
//! child's own (the parent checks it equals the user's), the captured
//! values are the traced program's claims (checked as root's are,
//! `live_events::check_target`).
//!
//! # Bounds
//! At most [`MAX_LINES_PER_SECOND`] notifications a second are written
//! (the rest counted, the count written once the second is over), each
//! line at most [`MAX_LINE`] bytes (captured values cut, then dropped);
//! the parent reads at most [`MAX_LINE`] bytes a line and the child's
//! whole output is bounded by [`MAX_OUTPUT`] (past it the child is killed
//! and started again by its parent).

use crate::base::user_child::{Running, UserCommand, Who};
use lttng_ctl::notification::{FieldValue, Notification, NotificationChannel, Received};
use lttng_ctl::trigger::{ActionInfo, TriggerList};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::ffi::OsString;
use std::io::{BufRead, Read, Write};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The user-side task's name.
pub const TASK: &str = "follow-notifications";
/// Longest line, in bytes, either side writes or reads.
pub const MAX_LINE: usize = 16 * 1024;
/// Notifications written per second, at most.
pub const MAX_LINES_PER_SECOND: u32 = 20;
/// Bytes read from one child before it is killed and started again.
pub const MAX_OUTPUT: u64 = 64 << 20;
/// How often the child lists its user's triggers again.
pub const RELIST_INTERVAL: Duration = Duration::from_secs(5);
/// The longest wait for a notification between two looks at the clock.
const WAIT: Duration = Duration::from_millis(500);
/// Exit status of a child whose daemon did not answer or closed the
/// channel (the parent starts it again after a back-off).
pub const EXIT_NO_DAEMON: u8 = 3;

/// One line of the child, decoded.
#[derive(Debug, Clone, PartialEq)]
pub enum Line {
    /// Now following the trigger `name` of the child's user.
    Following {
        name: String,
        event_rule: Option<String>,
    },
    /// A trigger of a followed name not followed, and why.
    NotFollowed { name: String, why: String },
    /// An event of a followed trigger.
    Event {
        trigger: String,
        owner_uid: u32,
        vpid: Option<i64>,
        pid_ns: Option<u64>,
        /// `EXPR = VALUE`, for the record.
        captured: Vec<String>,
    },
    /// Notifications not written (past the per-second bound).
    Skipped(u64),
    /// The daemon dropped notifications for this channel.
    Dropped,
}

impl Line {
    fn to_json(&self) -> Value {
        match self {
            Line::Following { name, event_rule } => {
                json!({"following": name, "event_rule": event_rule})
            }
            Line::NotFollowed { name, why } => json!({"not_followed": name, "why": why}),
            Line::Event {
                trigger,
                owner_uid,
                vpid,
                pid_ns,
                captured,
            } => json!({
                "trigger": trigger,
                "owner_uid": owner_uid,
                "vpid": vpid,
                "pid_ns": pid_ns,
                "captured": captured,
            }),
            Line::Skipped(n) => json!({ "skipped": n }),
            Line::Dropped => json!({ "dropped": true }),
        }
    }

    /// The line as written: JSON, at most [`MAX_LINE`] bytes with its
    /// newline (an event's captured values are dropped when too long).
    pub fn encode(&self) -> String {
        let mut text = self.to_json().to_string();
        if text.len() >= MAX_LINE {
            if let Line::Event {
                trigger,
                owner_uid,
                vpid,
                pid_ns,
                ..
            } = self
            {
                let mut name = trigger.clone();
                name.truncate(1024);
                text = Line::Event {
                    trigger: name,
                    owner_uid: *owner_uid,
                    vpid: *vpid,
                    pid_ns: *pid_ns,
                    captured: vec!["(captured values too long)".into()],
                }
                .to_json()
                .to_string();
            } else {
                text = json!({ "skipped": 1 }).to_string();
            }
        }
        text.push('\n');
        text
    }

    /// Decodes a line of the child (`None`: not one of its lines).
    pub fn decode(text: &str) -> Option<Line> {
        if text.len() > MAX_LINE {
            return None;
        }
        let value: Value = serde_json::from_str(text.trim_end()).ok()?;
        let string = |key: &str| value.get(key)?.as_str().map(str::to_string);
        if let Some(name) = string("following") {
            return Some(Line::Following {
                name,
                event_rule: string("event_rule"),
            });
        }
        if let Some(name) = string("not_followed") {
            return Some(Line::NotFollowed {
                name,
                why: string("why").unwrap_or_default(),
            });
        }
        if let Some(n) = value.get("skipped") {
            return n.as_u64().map(Line::Skipped);
        }
        if value.get("dropped").is_some() {
            return Some(Line::Dropped);
        }
        Some(Line::Event {
            trigger: string("trigger")?,
            owner_uid: u32::try_from(value.get("owner_uid")?.as_u64()?).ok()?,
            vpid: value.get("vpid").and_then(Value::as_i64),
            pid_ns: value.get("pid_ns").and_then(Value::as_u64),
            captured: value
                .get("captured")?
                .as_array()?
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
        })
    }
}

/// Starts the notification child of `who`, following the triggers of
/// `names` that are theirs; read its lines with [`Reader`].
pub fn spawn(who: Who, names: &[String]) -> anyhow::Result<Running> {
    UserCommand::task(Some(who), TASK)
        .args(names)
        // It runs as long as the service: bounded by its output instead.
        .deadline(Duration::from_secs(100 * 365 * 24 * 3600))
        .max_output(MAX_OUTPUT)
        .spawn(crate::base::user_child::Input::Null)
}

/// Reads a child's lines, each at most [`MAX_LINE`] bytes (a longer one
/// is skipped whole).
pub struct Reader<R: BufRead> {
    inner: R,
}

impl<R: BufRead> Reader<R> {
    pub fn new(inner: R) -> Reader<R> {
        Reader { inner }
    }

    /// The next line of the child; `None` once its output ended (or
    /// failed: killed for its bound).
    pub fn next_line(&mut self) -> Option<Line> {
        loop {
            let mut line = Vec::new();
            let mut too_long = false;
            loop {
                let buf = match self.inner.fill_buf() {
                    Ok(buf) => buf,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(_) => return None,
                };
                if buf.is_empty() {
                    return None;
                }
                let (take, end) = match buf.iter().position(|&b| b == b'\n') {
                    Some(i) => (i + 1, true),
                    None => (buf.len(), false),
                };
                if line.len() + take <= MAX_LINE + 1 {
                    line.extend_from_slice(&buf[..take]);
                } else {
                    too_long = true;
                    line.clear();
                }
                self.inner.consume(take);
                if end {
                    break;
                }
            }
            if too_long {
                continue;
            }
            if let Some(decoded) = std::str::from_utf8(&line).ok().and_then(Line::decode) {
                return Some(decoded);
            }
        }
    }
}

/// Lines of one user's child waiting for the service, at most: past it,
/// that user's lines are dropped (counted), nobody else's.
pub const QUEUE: usize = 16;
/// The first wait before a child that ended is started again; doubled at
/// each end in a row that came sooner than [`STEADY`], up to
/// [`MAX_BACKOFF`].
pub const MIN_BACKOFF: Duration = Duration::from_secs(1);
pub const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// A child that ran this long before it ended starts the back-off over.
pub const STEADY: Duration = Duration::from_secs(60);

/// A child's output, and how to end it.
pub trait Stream: Read + Send {
    /// Kills what is left of the child, reaps it, says how it ended.
    fn end(self: Box<Self>) -> String;
}

impl Stream for Running {
    fn end(self: Box<Self>) -> String {
        match self.finish() {
            Ok(finished) => match finished.last_error_line() {
                Some(line) => format!(
                    "{} ({line})",
                    crate::base::user_child::describe_status(&finished.status)
                ),
                None => crate::base::user_child::describe_status(&finished.status),
            },
            Err(e) => format!("{e:#}"),
        }
    }
}

/// One user's notification child, started again with a back-off whenever
/// it ends, its lines queued (at most [`QUEUE`]) for the service.
pub struct Follower {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    lines: Receiver<Line>,
    /// Lines dropped because the queue was full.
    pub dropped: Arc<AtomicU64>,
    /// Children started.
    pub started: Arc<AtomicU64>,
}

impl Follower {
    /// Follows `names` among the triggers of `who`, with their child.
    pub fn start(who: Who, names: Vec<String>) -> Follower {
        Follower::start_with(
            move || spawn(who.clone(), &names).map(|r| Box::new(r) as Box<dyn Stream>),
            MIN_BACKOFF,
        )
    }

    /// Follows what `start` starts (each time the last one ended, after
    /// the back-off, from `min_backoff`).
    pub fn start_with<F>(mut start: F, min_backoff: Duration) -> Follower
    where
        F: FnMut() -> anyhow::Result<Box<dyn Stream>> + Send + 'static,
    {
        let stop = Arc::new(AtomicBool::new(false));
        let dropped = Arc::new(AtomicU64::new(0));
        let started = Arc::new(AtomicU64::new(0));
        let (send, lines) = std::sync::mpsc::sync_channel(QUEUE);
        let thread = {
            let (stop, dropped, started) = (stop.clone(), dropped.clone(), started.clone());
            std::thread::spawn(move || {
                let mut backoff = min_backoff;
                while !stop.load(Ordering::SeqCst) {
                    let began = Instant::now();
                    if let Ok(stream) = start() {
                        started.fetch_add(1, Ordering::SeqCst);
                        relay(stream, &send, &dropped, &stop);
                    }
                    if began.elapsed() >= STEADY {
                        backoff = min_backoff;
                    }
                    let until = Instant::now() + backoff;
                    while !stop.load(Ordering::SeqCst) && Instant::now() < until {
                        std::thread::sleep(Duration::from_millis(20).min(backoff));
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF.max(min_backoff));
                }
            })
        };
        Follower {
            stop,
            thread: Some(thread),
            lines,
            dropped,
            started,
        }
    }

    /// The next queued line, if any (never waits).
    pub fn try_next(&self) -> Option<Line> {
        self.lines.try_recv().ok()
    }

    /// The next line, waiting at most `timeout`.
    pub fn next_within(&self, timeout: Duration) -> Option<Line> {
        self.lines.recv_timeout(timeout).ok()
    }
}

impl Drop for Follower {
    /// Stops starting children. The thread is not joined: it may be
    /// reading a child that says nothing; that child dies with the
    /// service (`PR_SET_PDEATHSIG`), and the thread once it ends.
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        drop(self.thread.take());
    }
}

/// Reads a child's lines into the queue until its output ends (or the
/// service stops and the next line comes), then ends it.
fn relay(stream: Box<dyn Stream>, send: &SyncSender<Line>, dropped: &AtomicU64, stop: &AtomicBool) {
    let mut reader = Reader::new(std::io::BufReader::new(stream));
    while let Some(line) = reader.next_line() {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        match send.try_send(line) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                dropped.fetch_add(1, Ordering::SeqCst);
            }
            Err(TrySendError::Disconnected(_)) => break,
        }
    }
    let _ = reader.inner.into_inner().end();
}

/// The child's task: `follow-notifications NAME...`.
pub fn task(args: &[OsString]) -> ExitCode {
    let names: BTreeSet<String> = args
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let mut out = std::io::stdout().lock();
    match follow(&names, &mut out) {
        Ok(()) => ExitCode::SUCCESS,
        Err(why) => {
            eprintln!("lttng-coredump: {why}");
            ExitCode::from(EXIT_NO_DAEMON)
        }
    }
}

/// Writes `line`; an error (the parent is gone) ends the child.
fn write_line(out: &mut impl Write, line: &Line) -> Result<(), String> {
    out.write_all(line.encode().as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| format!("writing to the service: {e}"))
}

fn follow(names: &BTreeSet<String>, out: &mut impl Write) -> Result<(), String> {
    let uid = rustix::process::getuid().as_raw();
    let mut channel = NotificationChannel::connect().map_err(|e| e.to_string())?;
    let mut followed: BTreeSet<String> = BTreeSet::new();
    let mut said: BTreeSet<String> = BTreeSet::new();
    let mut listed_at: Option<Instant> = None;
    let mut lines = super::rate_window::RateWindow::new(MAX_LINES_PER_SECOND);
    loop {
        if listed_at.is_none_or(|at| at.elapsed() >= RELIST_INTERVAL) {
            listed_at = Some(Instant::now());
            let list = TriggerList::fetch().map_err(|e| format!("listing the triggers: {e}"))?;
            for trigger in list.iter() {
                let info = trigger.info();
                let Some(name) = info.name.clone() else {
                    continue;
                };
                if !names.contains(&name) || followed.contains(&name) {
                    continue;
                }
                let why_not = if info.owner_uid != uid {
                    // Not expected from a daemon (it lists a user's own),
                    // and never followed: the notifications would not
                    // come, and the owner is someone else.
                    Some(format!("it is uid {}'s", info.owner_uid))
                } else if !info.actions.contains(&ActionInfo::Notify) {
                    Some("it has no notify action".to_string())
                } else {
                    let captures = trigger.captures();
                    (!captures.contains(&super::live_events::vpid_expr())
                        || !captures.contains(&super::live_events::pid_ns_expr()))
                    .then(|| "it does not capture both $ctx.vpid and $ctx.pid_ns".to_string())
                };
                if let Some(why) = why_not {
                    if said.len() < 1024 && said.insert(name.clone()) {
                        write_line(out, &Line::NotFollowed { name, why })?;
                    }
                    continue;
                }
                match channel.subscribe(&trigger) {
                    Ok(()) => {}
                    // Another followed trigger has the same condition.
                    Err(e) if e.code() == lttng_ctl::ErrorCode::Invalid => {}
                    Err(e) => return Err(format!("subscribing: {e}")),
                }
                let event_rule = match &info.condition {
                    lttng_ctl::trigger::ConditionInfo::UserTracepoint { name_pattern, .. } => {
                        Some(name_pattern.clone())
                    }
                    _ => None,
                };
                write_line(
                    out,
                    &Line::Following {
                        name: name.clone(),
                        event_rule,
                    },
                )?;
                followed.insert(name);
            }
        }
        match channel.next(WAIT).map_err(|e| e.to_string())? {
            Received::Timeout => {}
            Received::Dropped => write_line(out, &Line::Dropped)?,
            Received::Notification(notification) => {
                if let Some(skipped) = lines.roll(Instant::now()).filter(|n| *n > 0) {
                    write_line(out, &Line::Skipped(skipped))?;
                }
                if !lines.take() {
                    continue;
                }
                write_line(out, &event_line(&notification))?;
            }
        }
    }
}

fn event_line(notification: &Notification) -> Line {
    Line::Event {
        trigger: notification.trigger_name.clone().unwrap_or_default(),
        owner_uid: notification.owner_uid,
        vpid: notification
            .value_of(&super::live_events::vpid_expr())
            .and_then(FieldValue::as_i64),
        pid_ns: notification
            .value_of(&super::live_events::pid_ns_expr())
            .and_then(FieldValue::as_u64),
        captured: super::live_events::captured_text(notification),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_go_through_encoded_and_bounded() {
        let lines = [
            Line::Following {
                name: "t".into(),
                event_rule: Some("a:b".into()),
            },
            Line::NotFollowed {
                name: "u".into(),
                why: "no".into(),
            },
            Line::Event {
                trigger: "t".into(),
                owner_uid: 1000,
                vpid: Some(42),
                pid_ns: Some(4026531836),
                captured: vec!["$ctx.vpid = 42".into()],
            },
            Line::Skipped(7),
            Line::Dropped,
        ];
        let text: String = lines.iter().map(Line::encode).collect();
        let mut reader = Reader::new(text.as_bytes());
        for line in &lines {
            assert_eq!(reader.next_line().as_ref(), Some(line));
        }
        assert_eq!(reader.next_line(), None);
        // A huge capture: the event is kept, its values are not.
        let huge = Line::Event {
            trigger: "t".into(),
            owner_uid: 1000,
            vpid: Some(1),
            pid_ns: Some(2),
            captured: vec!["x".repeat(4 * MAX_LINE)],
        };
        let encoded = huge.encode();
        assert!(encoded.len() <= MAX_LINE);
        assert!(matches!(
            Line::decode(&encoded),
            Some(Line::Event {
                vpid: Some(1),
                pid_ns: Some(2),
                ..
            })
        ));
    }

    #[test]
    fn the_reader_skips_overlong_and_foreign_lines() {
        let mut text = "y".repeat(3 * MAX_LINE);
        text.push('\n');
        text.push_str("not json\n");
        text.push_str("{\"trigger\": \"t\"}\n");
        text.push_str(&Line::Skipped(1).encode());
        let mut reader = Reader::new(std::io::BufReader::with_capacity(64, text.as_bytes()));
        assert_eq!(reader.next_line(), Some(Line::Skipped(1)));
        assert_eq!(reader.next_line(), None);
    }

    /// A child standing for the user's: `sh -c SCRIPT`, reaped when ended.
    struct Shell(std::process::Child, std::process::ChildStdout);

    impl Read for Shell {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            self.1.read(buf)
        }
    }

    impl Stream for Shell {
        fn end(mut self: Box<Self>) -> String {
            let _ = self.0.kill();
            format!("{:?}", self.0.wait())
        }
    }

    fn shell(script: String) -> anyhow::Result<Box<dyn Stream>> {
        let mut child = std::process::Command::new("sh")
            .args(["-c", &script])
            .stdout(std::process::Stdio::piped())
            .spawn()?;
        let out = child.stdout.take().unwrap();
        Ok(Box::new(Shell(child, out)))
    }

    #[test]
    fn a_child_that_ends_is_started_again() {
        // Each child says which run it is, then dies.
        let mut run = 0u64;
        let follower = Follower::start_with(
            move || {
                run += 1;
                shell(format!("printf '%s' '{}'", Line::Skipped(run).encode()))
            },
            Duration::from_millis(1),
        );
        for want in 1..=3 {
            // A hang guard, not a timing claim.
            let line = follower.next_within(Duration::from_secs(300));
            assert_eq!(line, Some(Line::Skipped(want)));
        }
        assert!(follower.started.load(Ordering::SeqCst) >= 3);
    }

    #[test]
    fn a_flooding_child_fills_its_own_queue_only() {
        // A child writing far more lines than the queue holds, then
        // ending (and not started again within the test: the back-off is
        // an hour): its lines past the queue are dropped and counted; the
        // queue keeps the first ones.
        let line = Line::Skipped(1).encode();
        let script =
            format!("i=0; while [ $i -lt 200 ]; do printf '%s' '{line}'; i=$((i+1)); done");
        let follower =
            Follower::start_with(move || shell(script.clone()), Duration::from_secs(3600));
        // A hang guard, not a timing claim.
        let deadline = Instant::now() + Duration::from_secs(300);
        while follower.dropped.load(Ordering::SeqCst) < 200 - QUEUE as u64 {
            assert!(Instant::now() < deadline, "the lines were never all read");
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(follower.dropped.load(Ordering::SeqCst), 200 - QUEUE as u64);
        let queued = std::iter::from_fn(|| follower.try_next()).count();
        assert_eq!(queued, QUEUE);
    }
}
