//! A live core on an event, not a crash: `serve` follows the LTTng
//! triggers named in `[live]` (event-rule-matches conditions with a notify
//! action capturing `$ctx.vpid` and `$ctx.pid_ns`) on the root session
//! daemon's notification channel, in a thread of its own, and on each
//! notification takes a live core and the snapshots of the process that
//! emitted the event (`crash::live`, as `gcore` does, into the crash
//! store), its record naming the trigger and what it captured.
//!
//! # What is trusted
//! The captured values are computed by lttng-ust inside the traced
//! process: a hostile program can send any `vpid` and any `pid_ns` (it
//! only has to answer `getpid()` itself). So they are read as a claim, and
//! a process is dumped only when, at the moment of the check:
//! - its every uid (real, effective, saved, filesystem) is the trigger's
//!   owner's: the session daemon says who owns the trigger, not the
//!   traced process. A daemon sends a channel only its own uid's
//!   notifications: this thread's channel is root's and hears root's
//!   triggers; the own triggers of the uids in `live.users` are heard by a
//!   notification child of each user (`user_notifications`), whose events
//!   are checked against that user (the owner its line says must be the
//!   user too). So a user's trigger only ever gets cores of that user's own
//!   processes (taken here, with root's rights, into root's store, the
//!   user's copy of the record and the core readable by them);
//! - the captured `pid_ns` is the service's own pid namespace and the
//!   process found lives in it too: a `vpid` is a pid in the emitter's
//!   namespace, so one from a container (or one that does not say its
//!   namespace) is never read as a pid of this namespace. It is refused,
//!   not translated: nothing the process sends can say which process of
//!   another namespace it is.
//!
//! What stays: a program traced by root's daemon that matches root's
//! trigger can name another of root's processes and have it dumped (and
//! paused for milliseconds) within the rate limits; its core is root's.
//! Event rules of followed triggers should match trusted programs only.
//!
//! # Bounds
//! A flood of notifications costs a bounded amount: at most
//! [`MAX_EVALUATIONS_PER_SECOND`] notifications are looked at each second
//! (the rest are only counted; each followed user has a budget of their
//! own, at most 16 of their lines queued, and [`USER_LINES_PER_ROUND`]
//! taken in turn with the others'), at most one core per trigger each
//! `trigger_interval` and one per process each `process_interval`, the
//! processes remembered are at most [`MAX_PROCESSES`], and the session
//! daemon itself drops what this client does not read in time (each drop
//! counted). Each wait for a notification is bounded
//! (`NotificationChannel::next`), so the thread sees the service stop
//! within [`WAIT`]. The log too: at most [`MAX_LOGGED_PER_SECOND`] refusals
//! a second, the others counted and the count said once the second is
//! over (`rate_window`).
//!
//! # One user cannot hold up another
//! This thread only decides; the dumps are made by `live.max_dumps` dump
//! threads (default 2, at most 8), which take them from a queue per owner
//! (`live_queue`; root's triggers are root's): at most one dump of each
//! owner under way, a free thread going to the next owner in turn with one
//! waiting. A user whose dump is stuck (their session daemon hangs during
//! the snapshot, up to `snapshot_deadline`; a huge process, up to the
//! dump's own 15-minute deadline) holds one thread, never more, and every
//! other owner's core waits at most for one dump of each other owner. At
//! most `live.max_pending_per_user` events of one owner wait (default 4);
//! past them, the owner's events are refused, logged (within the log's
//! bound) with how many so far. A waiting event holds the pidfd of the
//! process it names; when its turn comes the process is checked again
//! (still alive, the same start time, still every uid the owner's), and
//! dropped otherwise. The threads are joined when the service stops: this
//! one within [`WAIT`], each dump thread once its dump ends.
//!
//! The process is checked through a pidfd, and that pidfd is what the dump
//! is given (`crash::live`, `lttng_coredump_livecore::dump_pidfd`): a
//! process that ends and whose pid is reused by another before or during
//! the seize is not dumped (the dumper checks, once the threads are seized,
//! that the pidfd's process still lives and the start time is the same),
//! and the process now under that pid is let go without being stopped.

use crate::base::config::Config;
use crate::base::live_config::LiveEventsConfig;
use crate::base::syslog::Log;
use crate::base::user_child::Who;
use crate::crash::live::{self, Destination, Request};
use crate::service::live_queue::LiveQueue;
use crate::service::rate_window::RateWindow;
use crate::service::user_notifications::{Follower, Line};
use crate::store::record::LiveEvent;
use lttng_ctl::notification::{FieldValue, Notification, NotificationChannel, Received};
use lttng_ctl::trigger::{ActionInfo, CaptureExpr, ConditionInfo, TriggerList};
use std::collections::{BTreeMap, HashMap};
use std::os::fd::OwnedFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The longest wait for a notification before looking whether the service
/// stops (and whether new triggers were registered).
pub const WAIT: Duration = Duration::from_millis(500);
/// How often the triggers are listed again (new ones subscribed to).
pub const RELIST_INTERVAL: Duration = Duration::from_secs(5);
/// How long to wait before connecting again to a session daemon that did
/// not answer (or closed the channel).
pub const RECONNECT_INTERVAL: Duration = Duration::from_secs(2);
/// Notifications looked at per second, at most; the rest are counted.
pub const MAX_EVALUATIONS_PER_SECOND: u32 = 20;
/// Processes whose last live core is remembered (for `process_interval`).
pub const MAX_PROCESSES: usize = 1024;
/// Refusals logged per second, at most; the rest are counted, and the
/// count logged once the second is over.
pub const MAX_LOGGED_PER_SECOND: u32 = 5;

/// The capture descriptor naming the emitting process.
pub fn vpid_expr() -> CaptureExpr {
    CaptureExpr::ContextField("vpid".into())
}

/// The capture descriptor naming the emitter's pid namespace.
pub fn pid_ns_expr() -> CaptureExpr {
    CaptureExpr::ContextField("pid_ns".into())
}

/// The thread following the triggers and the dump threads; stopped and
/// joined when dropped.
pub struct LiveEvents {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    dumpers: Vec<JoinHandle<()>>,
}

impl LiveEvents {
    /// Starts following `[live]`'s triggers when the configuration at
    /// `config_path` (the service's) names any; `None` otherwise.
    pub fn start(config_path: Option<&Path>, log: &mut Log) -> Option<LiveEvents> {
        let loaded = Config::load(config_path);
        let live = loaded.config.live.clone()?;
        let stop = Arc::new(AtomicBool::new(false));
        let config_path = config_path
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from(crate::base::config::DEFAULT_CONFIG_PATH));
        let names = live.triggers.clone();
        let users = live.users.clone();
        let config = Arc::new(loaded.config);
        let queue = Arc::new(LiveQueue::new(live.max_dumps, live.max_pending_per_user));
        let mut started = LiveEvents {
            stop: stop.clone(),
            thread: None,
            dumpers: Vec::new(),
        };
        for n in 0..live.max_dumps {
            let (queue, config, config_path, stop) = (
                queue.clone(),
                config.clone(),
                config_path.clone(),
                stop.clone(),
            );
            match std::thread::Builder::new()
                .name(format!("live-dump-{n}"))
                .spawn(move || dump_events(&queue, &config, &config_path, &stop))
            {
                Ok(thread) => started.dumpers.push(thread),
                Err(e) => {
                    log.error(format!("cannot start a live-core dump thread: {e}"));
                    return None;
                }
            }
        }
        let thread = {
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("live-events".into())
                .spawn(move || follow(&live, &config, &queue, &stop))
        };
        match thread {
            Ok(thread) => {
                log.notice(format!(
                    "taking live cores on the notifications of the triggers {names:?} (root's, \
                     and the own ones of uids {users:?}), at most {} at once",
                    started.dumpers.len()
                ));
                started.thread = Some(thread);
                Some(started)
            }
            Err(e) => {
                log.error(format!("cannot start the live-events thread: {e}"));
                None
            }
        }
    }
}

impl Drop for LiveEvents {
    /// Joins the threads: the following one within [`WAIT`], each dump
    /// thread once its dump under way ends (bounded by the dump's own
    /// deadline); the events still waiting are dropped.
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        for thread in self.dumpers.drain(..) {
            let _ = thread.join();
        }
    }
}

/// A log line of the thread, each in a log of its own (the service runs
/// for months: one `Log` would keep every message).
fn say(config: &Config, f: impl FnOnce(&mut Log)) {
    let mut log = Log::default().with_stderr();
    log.set_socket_path(config.syslog_socket.clone());
    f(&mut log);
}

/// A followed trigger: its event rule, for the record.
#[derive(Debug, Clone)]
struct Followed {
    event_rule: Option<String>,
}

/// The thread: connect, subscribe, receive, until the service stops.
fn follow(live: &LiveEventsConfig, config: &Config, queue: &Dumps, stop: &AtomicBool) {
    let mut limits = Limits::new(live);
    let mut users: Vec<UserFeed> = live
        .users
        .iter()
        .map(|&uid| UserFeed::start(uid, live))
        .collect();
    // Triggers of a followed name that are not followed, said once each.
    let mut said: std::collections::HashSet<(u32, String)> = Default::default();
    while !stop.load(Ordering::SeqCst) {
        let mut channel = match NotificationChannel::connect() {
            Ok(channel) => channel,
            Err(e) => {
                say(config, |log| {
                    log.warning(format!(
                        "live events: no notification channel ({e}); trying again in {} s",
                        RECONNECT_INTERVAL.as_secs()
                    ))
                });
                serve_users_for(RECONNECT_INTERVAL, &mut users, config, queue, stop);
                continue;
            }
        };
        let mut followed: BTreeMap<String, Followed> = BTreeMap::new();
        let mut listed_at: Option<Instant> = None;
        loop {
            if stop.load(Ordering::SeqCst) {
                return;
            }
            if listed_at.is_none_or(|at| at.elapsed() >= RELIST_INTERVAL) {
                listed_at = Some(Instant::now());
                if let Err(e) = subscribe_new(&mut channel, live, &mut followed, &mut said, config)
                {
                    say(config, |log| {
                        log.warning(format!("live events: listing the triggers failed: {e}"))
                    });
                    break;
                }
            }
            serve_users(&mut users, config, queue);
            match channel.next(WAIT) {
                Ok(Received::Timeout) => {}
                Ok(Received::Dropped) => {
                    limits.dropped += 1;
                    say(config, |log| {
                        log.warning(
                            "live events: the session daemon dropped notifications (this \
                             service did not read them in time)",
                        )
                    });
                }
                Ok(Received::Notification(notification)) => on_notification(
                    &Event::of(&notification),
                    0,
                    &followed,
                    &mut limits,
                    config,
                    queue,
                ),
                Err(e) => {
                    say(config, |log| {
                        log.warning(format!(
                            "live events: the notification channel failed ({e}); connecting again"
                        ))
                    });
                    break;
                }
            }
        }
        serve_users_for(RECONNECT_INTERVAL, &mut users, config, queue, stop);
    }
}

/// Lines of one user's child looked at per round, at most: each round
/// takes from every user in turn, so one user's flood does not starve
/// another's (and each user's queue, rate and limits are their own).
pub const USER_LINES_PER_ROUND: usize = 4;

/// A user whose own triggers are followed: their notification child
/// (restarted with a back-off), the triggers it follows, their limits.
struct UserFeed {
    uid: u32,
    follower: Follower,
    followed: BTreeMap<String, Followed>,
    limits: Limits,
    dropped_said: u64,
}

impl UserFeed {
    fn start(uid: u32, live: &LiveEventsConfig) -> UserFeed {
        let who = Who::user(uid, 65534);
        UserFeed {
            uid,
            follower: Follower::start(who, live.triggers.clone()),
            followed: BTreeMap::new(),
            limits: Limits::new(live),
            dropped_said: 0,
        }
    }
}

/// One round over the users' queued lines.
fn serve_users(users: &mut [UserFeed], config: &Config, queue: &Dumps) {
    for user in users.iter_mut() {
        for _ in 0..USER_LINES_PER_ROUND {
            let Some(line) = user.follower.try_next() else {
                break;
            };
            on_user_line(user, line, config, queue);
        }
        let dropped = user.follower.dropped.load(Ordering::SeqCst);
        if dropped > user.dropped_said {
            user.dropped_said = dropped;
            say(config, |log| {
                log.warning(format!(
                    "live events: {dropped} lines of uid {}'s notification child dropped so far \
                     (its queue was full)",
                    user.uid
                ))
            });
        }
    }
}

fn on_user_line(user: &mut UserFeed, line: Line, config: &Config, queue: &Dumps) {
    let uid = user.uid;
    match line {
        Line::Following { name, event_rule } => {
            let shown = crate::base::sanitize::for_log(name.as_bytes());
            say(config, |log| {
                log.notice(format!(
                    "live events: following trigger {shown:?} of uid {uid} ({}), in its \
                     notification child",
                    event_rule.as_deref().unwrap_or("event rule")
                ))
            });
            if user.followed.len() < MAX_TRIGGERS_PER_USER {
                user.followed.insert(name, Followed { event_rule });
            }
        }
        Line::NotFollowed { name, why } => {
            let shown = crate::base::sanitize::for_log(name.as_bytes());
            let why = crate::base::sanitize::for_log(why.as_bytes());
            say(config, |log| {
                log.warning(format!(
                    "live events: trigger {shown:?} of uid {uid} is not followed: {why}"
                ))
            });
        }
        Line::Event {
            trigger,
            owner_uid,
            vpid,
            pid_ns,
            captured,
        } => on_notification(
            &Event {
                name: trigger,
                owner_uid,
                vpid: vpid.map(FieldValue::Signed),
                pid_ns: pid_ns.map(FieldValue::Unsigned),
                captured,
            },
            uid,
            &user.followed,
            &mut user.limits,
            config,
            queue,
        ),
        Line::Skipped(n) => user.limits.skipped += n,
        Line::Dropped => user.limits.dropped += 1,
    }
}

/// The most triggers remembered per user (the child follows only the
/// configured names, at most `MAX_TRIGGERS`).
const MAX_TRIGGERS_PER_USER: usize = crate::base::live_config::MAX_TRIGGERS;

/// Serves the users' lines for `duration` (or until the service stops).
fn serve_users_for(
    duration: Duration,
    users: &mut [UserFeed],
    config: &Config,
    queue: &Dumps,
    stop: &AtomicBool,
) {
    let until = Instant::now() + duration;
    while !stop.load(Ordering::SeqCst) && Instant::now() < until {
        serve_users(users, config, queue);
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Subscribes to the conditions of the followed triggers not yet followed:
/// root's, of a configured name, with a notify action and both captures.
fn subscribe_new(
    channel: &mut NotificationChannel,
    live: &LiveEventsConfig,
    followed: &mut BTreeMap<String, Followed>,
    said: &mut std::collections::HashSet<(u32, String)>,
    config: &Config,
) -> lttng_ctl::Result<()> {
    let list = TriggerList::fetch()?;
    for trigger in list.iter() {
        let info = trigger.info();
        let Some(name) = info.name.clone() else {
            continue;
        };
        if !live.triggers.contains(&name) || followed.contains_key(&name) {
            continue;
        }
        if info.owner_uid != 0 && live.users.contains(&info.owner_uid) {
            // That user's own notification child follows it.
            continue;
        }
        let why_not = if info.owner_uid != 0 {
            Some(format!(
                "it is uid {}'s: root's channel hears only root's triggers (the session daemon \
                 sends a channel only its own uid's notifications); add the uid to \
                 live.users to follow its owner's triggers with a child of theirs",
                info.owner_uid
            ))
        } else if !info.actions.contains(&ActionInfo::Notify) {
            Some("it has no notify action".to_string())
        } else {
            let captures = trigger.captures();
            (!captures.contains(&vpid_expr()) || !captures.contains(&pid_ns_expr())).then(|| {
                "it does not capture both $ctx.vpid and $ctx.pid_ns (add --capture '$ctx.vpid' \
                 --capture '$ctx.pid_ns')"
                    .to_string()
            })
        };
        if let Some(why) = why_not {
            if said.len() < 1024 && said.insert((info.owner_uid, name.clone())) {
                say(config, |log| {
                    log.warning(format!(
                        "live events: trigger {name:?} is not followed: {why}"
                    ))
                });
            }
            continue;
        }
        match channel.subscribe(&trigger) {
            Ok(()) => {}
            // Another followed trigger has the same condition: its
            // notifications come already.
            Err(e) if e.code() == lttng_ctl::ErrorCode::Invalid => {}
            Err(e) => return Err(e),
        }
        let event_rule = match &info.condition {
            ConditionInfo::UserTracepoint { name_pattern, .. } => Some(name_pattern.clone()),
            _ => None,
        };
        say(config, |log| {
            log.notice(format!(
                "live events: following trigger {name:?} of uid 0 ({})",
                event_rule.as_deref().unwrap_or("event rule")
            ))
        });
        followed.insert(name, Followed { event_rule });
    }
    Ok(())
}

/// Why a notification gives no core.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Not one of the followed triggers (or not root's).
    NotFollowed,
    /// No usable `$ctx.vpid`.
    NoPid,
    /// `$ctx.pid_ns` missing or not this namespace's, or the process found
    /// lives in another one.
    OtherNamespace(String),
    /// No such process (or it ended).
    NoProcess,
    /// The process is not the trigger owner's in every respect.
    NotTheOwners { uids: [u32; 4] },
    /// A rate limit.
    RateLimited(&'static str),
    /// The owner already has as many events waiting for a dump as may wait.
    Backlog(crate::service::live_queue::Full),
    /// Once its turn came, the process was no longer the one checked (it
    /// ended, or is no longer the owner's in every respect).
    Changed(Box<Refusal>),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::NotFollowed => write!(f, "not a followed trigger"),
            Refusal::NoPid => write!(f, "no $ctx.vpid was captured"),
            Refusal::OtherNamespace(why) => write!(f, "{why}"),
            Refusal::NoProcess => write!(f, "no such process"),
            Refusal::NotTheOwners { uids } => write!(
                f,
                "the process is not the trigger owner's (its uids: {} {} {} {})",
                uids[0], uids[1], uids[2], uids[3]
            ),
            Refusal::RateLimited(which) => write!(f, "rate-limited ({which})"),
            Refusal::Backlog(full) => write!(f, "{full}"),
            Refusal::Changed(why) => write!(f, "by its turn to be dumped: {why}"),
        }
    }
}

/// The rate limits and counts of the thread.
struct Limits {
    trigger_interval: Duration,
    process_interval: Duration,
    /// Last core per trigger name.
    triggers: HashMap<String, Instant>,
    /// Last core per process (pid, start time).
    processes: HashMap<(i32, u64), Instant>,
    /// The evaluation budget; its count over the bound is of the
    /// notifications skipped or refused without a line.
    evaluations: RateWindow,
    /// Refusals logged this second of `evaluations`.
    logged: u32,
    /// Notifications past the evaluation budget, and dropped by the daemon.
    skipped: u64,
    dropped: u64,
}

impl Limits {
    fn new(live: &LiveEventsConfig) -> Limits {
        Limits {
            trigger_interval: live.trigger_interval,
            process_interval: live.process_interval,
            triggers: HashMap::new(),
            processes: HashMap::new(),
            evaluations: RateWindow::new(MAX_EVALUATIONS_PER_SECOND),
            logged: 0,
            skipped: 0,
            dropped: 0,
        }
    }

    /// Whether one more notification may be looked at this second; and,
    /// when a new second starts, how many went without a line before.
    fn evaluate(&mut self, now: Instant) -> (bool, Option<u64>) {
        let quiet = self.evaluations.roll(now);
        if quiet.is_some() {
            self.logged = 0;
        }
        let evaluate = self.evaluations.take();
        if !evaluate {
            self.skipped += 1;
        }
        (evaluate, quiet.filter(|n| *n > 0))
    }

    /// Whether a refusal may be logged this second (else it is counted).
    fn may_log(&mut self) -> bool {
        if self.logged < MAX_LOGGED_PER_SECOND {
            self.logged += 1;
            true
        } else {
            self.evaluations.count_over();
            false
        }
    }

    fn trigger_ok(&self, name: &str, now: Instant) -> bool {
        self.triggers
            .get(name)
            .is_none_or(|at| now.duration_since(*at) >= self.trigger_interval)
    }

    fn process_ok(&mut self, key: (i32, u64), now: Instant) -> Result<(), &'static str> {
        if let Some(at) = self.processes.get(&key) {
            if now.duration_since(*at) < self.process_interval {
                return Err("process_interval");
            }
        }
        if self.processes.len() >= MAX_PROCESSES && !self.processes.contains_key(&key) {
            let interval = self.process_interval;
            self.processes
                .retain(|_, at| now.duration_since(*at) < interval);
            if self.processes.len() >= MAX_PROCESSES {
                return Err("too many processes remembered");
            }
        }
        Ok(())
    }

    fn taken(&mut self, name: &str, key: (i32, u64), now: Instant) {
        self.triggers.insert(name.to_string(), now);
        self.processes.insert(key, now);
    }
}

/// A process that may be dumped: its pid and start time (for the rate
/// limit), checked at one instant through its pidfd, which the dump is
/// given (it dumps that process or none).
#[derive(Debug, Clone)]
pub struct Target {
    pub pid: i32,
    pub start_time: u64,
    pub pidfd: Arc<OwnedFd>,
}

/// This process's pid namespace (its inode number, what lttng-ust's
/// `pid_ns` context holds).
pub fn own_pid_ns() -> Option<u64> {
    std::fs::metadata("/proc/self/ns/pid").ok().map(|m| m.ino())
}

/// Checks the claim of a notification: `vpid` in `pid_ns` names a process
/// of `owner` in this namespace (see the module's documentation).
pub fn check_target(
    vpid: Option<&FieldValue>,
    pid_ns: Option<&FieldValue>,
    owner: u32,
) -> Result<Target, Refusal> {
    let own_ns = own_pid_ns()
        .ok_or_else(|| Refusal::OtherNamespace("this service's pid namespace is unknown".into()))?;
    match pid_ns.and_then(FieldValue::as_u64) {
        Some(ns) if ns == own_ns => {}
        Some(ns) => {
            return Err(Refusal::OtherNamespace(format!(
                "the event came from pid namespace {ns}, not this one ({own_ns}): its vpid is \
                 not a pid here"
            )))
        }
        None => {
            return Err(Refusal::OtherNamespace(
                "no $ctx.pid_ns was captured: the vpid's namespace is unknown".into(),
            ))
        }
    }
    let pid = vpid
        .and_then(FieldValue::as_i64)
        .filter(|p| (1..=i64::from(i32::MAX)).contains(p))
        .ok_or(Refusal::NoPid)? as i32;
    // The pidfd holds the process: while it is alive, /proc/PID is it.
    let pidfd = rustix::process::Pid::from_raw(pid)
        .and_then(|p| rustix::process::pidfd_open(p, rustix::process::PidfdFlags::empty()).ok())
        .ok_or(Refusal::NoProcess)?;
    let ns = std::fs::metadata(format!("/proc/{pid}/ns/pid"))
        .map_err(|_| Refusal::NoProcess)?
        .ino();
    if ns != own_ns {
        return Err(Refusal::OtherNamespace(format!(
            "process {pid} lives in another pid namespace ({ns})"
        )));
    }
    let status =
        std::fs::read_to_string(format!("/proc/{pid}/status")).map_err(|_| Refusal::NoProcess)?;
    let uids =
        crate::crash::procinfo::status_ids(status.as_bytes(), "Uid:").ok_or(Refusal::NoProcess)?;
    let stat =
        std::fs::read_to_string(format!("/proc/{pid}/stat")).map_err(|_| Refusal::NoProcess)?;
    let start_time = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().nth(19))
        .and_then(|s| s.parse().ok())
        .ok_or(Refusal::NoProcess)?;
    // Still alive after the reads: they were of this process.
    if !alive(&pidfd) {
        return Err(Refusal::NoProcess);
    }
    if uids.iter().any(|uid| *uid != owner) {
        return Err(Refusal::NotTheOwners { uids });
    }
    Ok(Target {
        pid,
        start_time,
        pidfd: Arc::new(pidfd),
    })
}

/// Whether the pidfd's process has not exited (a pidfd is readable once it
/// has).
fn alive(pidfd: &OwnedFd) -> bool {
    let mut fds = [rustix::event::PollFd::new(
        pidfd,
        rustix::event::PollFlags::IN,
    )];
    let zero = rustix::event::Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    rustix::event::poll(&mut fds, Some(&zero)).is_ok_and(|n| n == 0)
}

/// `EXPR = VALUE` for the record.
pub(crate) fn captured_text(notification: &Notification) -> Vec<String> {
    notification
        .captured
        .iter()
        .map(|c| {
            let value = match &c.value {
                None => "(unavailable)".to_string(),
                Some(FieldValue::String(s)) => {
                    format!("{:?}", crate::base::sanitize::for_log(s.as_bytes()))
                }
                Some(v) => match v {
                    FieldValue::Unsigned(n) => n.to_string(),
                    FieldValue::Signed(n) => n.to_string(),
                    FieldValue::Real(x) => x.to_string(),
                    _ => "(array)".to_string(),
                },
            };
            format!("{} = {value}", c.expr)
        })
        .collect()
}

/// An event of a followed trigger, from root's channel or a user's child.
struct Event {
    name: String,
    /// The owner the daemon said.
    owner_uid: u32,
    vpid: Option<FieldValue>,
    pid_ns: Option<FieldValue>,
    captured: Vec<String>,
}

impl Event {
    fn of(notification: &Notification) -> Event {
        Event {
            name: notification.trigger_name.clone().unwrap_or_default(),
            owner_uid: notification.owner_uid,
            vpid: notification.value_of(&vpid_expr()).cloned(),
            pid_ns: notification.value_of(&pid_ns_expr()).cloned(),
            captured: captured_text(notification),
        }
    }
}

/// `owner`: whose triggers the channel (root's, or a user's child) is
/// for; an event of anyone else's is not followed.
fn on_notification(
    event: &Event,
    owner: u32,
    followed: &BTreeMap<String, Followed>,
    limits: &mut Limits,
    config: &Config,
    queue: &Dumps,
) {
    let now = Instant::now();
    let (evaluate, quiet) = limits.evaluate(now);
    if let Some(quiet) = quiet {
        say(config, |log| {
            log.warning(format!(
                "live events: {quiet} more notifications skipped or refused without a line \
                 (at most {MAX_EVALUATIONS_PER_SECOND} looked at and {MAX_LOGGED_PER_SECOND} \
                 refusals logged per second)"
            ))
        });
    }
    if !evaluate {
        return;
    }
    let name = event.name.clone();
    let shown = crate::base::sanitize::for_log(name.as_bytes());
    let result = (|| {
        let trigger = followed
            .get(&name)
            .filter(|_| event.owner_uid == owner)
            .ok_or(Refusal::NotFollowed)?;
        if !limits.trigger_ok(&name, now) {
            return Err(Refusal::RateLimited("trigger_interval"));
        }
        let target = check_target(event.vpid.as_ref(), event.pid_ns.as_ref(), owner)?;
        limits
            .process_ok((target.pid, target.start_time), now)
            .map_err(Refusal::RateLimited)?;
        Ok((trigger, target))
    })();
    let refused = |limits: &mut Limits, refusal: Refusal| {
        if !limits.may_log() {
            return;
        }
        let claimed = event
            .vpid
            .as_ref()
            .and_then(FieldValue::as_i64)
            .map(|p| p.to_string())
            .unwrap_or_else(|| "none".into());
        say(config, |log| {
            log.warning(format!(
                "live events: no live core on trigger {shown:?} (vpid {claimed}): {refusal}"
            ))
        });
    };
    let (trigger, target) = match result {
        Ok(found) => found,
        Err(refusal) => return refused(limits, refusal),
    };
    let request = Request {
        pid: target.pid,
        destination: Destination::Store,
        method: None,
        compress: None,
        snapshots: true,
        event: Some(LiveEvent {
            trigger: name.clone(),
            trigger_owner_uid: owner,
            event_rule: trigger.event_rule.clone(),
            captured: event.captured.clone(),
        }),
        // The process checked, not whatever its pid names by the dump.
        pidfd: Some(target.pidfd.clone()),
    };
    let queued = Queued {
        request,
        shown: shown.to_string(),
        owner,
        start_time: target.start_time,
    };
    match queue.push(owner, queued) {
        // Counted by the rate limits once it may be dumped.
        Ok(()) => limits.taken(&name, (target.pid, target.start_time), now),
        // Counted by the queue (the line says how many so far).
        Err(full) => refused(limits, Refusal::Backlog(full)),
    }
}

/// The queue of the live cores waiting for a dump thread.
type Dumps = LiveQueue<Queued>;

/// A live core waiting for its turn.
pub struct Queued {
    request: Request,
    /// The trigger's name, as logged.
    shown: String,
    /// The trigger's owner (whose turn it takes).
    owner: u32,
    /// The process's start time when it was checked.
    start_time: u64,
}

/// A dump thread: takes the next user's live core in turn and takes it,
/// until the service stops (seen within [`WAIT`], or once the dump under
/// way ends).
fn dump_events(queue: &Dumps, config: &Config, config_path: &Path, stop: &AtomicBool) {
    while !stop.load(Ordering::SeqCst) {
        let Some(ticket) = queue.pop(WAIT) else {
            continue;
        };
        let queued = &ticket.item;
        let pid = queued.request.pid;
        let shown = &queued.shown;
        let owner = queued.owner;
        let mut log = Log::default().with_stderr();
        log.set_socket_path(config.syslog_socket.clone());
        // It may have waited: the process must still be the one checked,
        // and still the owner's in every respect.
        if let Err(why) = still_the_same(queued) {
            log.warning(format!(
                "live events: no live core on trigger {shown:?} (vpid {pid}): {}",
                Refusal::Changed(Box::new(why))
            ));
            continue;
        }
        log.notice(format!(
            "live events: trigger {shown:?} of uid {owner}: taking a live core of process {pid}"
        ));
        // Logged by `take`, success or not.
        let _ = live::take(&queued.request, config, config_path, &mut log);
    }
}

/// Checks again, through a new look by its pid, that the process queued
/// is the one its pidfd holds (the same start time) and still the owner's.
fn still_the_same(queued: &Queued) -> Result<(), Refusal> {
    let ns = own_pid_ns().map(FieldValue::Unsigned);
    let pid = FieldValue::Signed(i64::from(queued.request.pid));
    let now = check_target(Some(&pid), ns.as_ref(), queued.owner)?;
    let alive = queued.request.pidfd.as_deref().is_some_and(alive);
    if !alive || now.start_time != queued.start_time {
        return Err(Refusal::NoProcess);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn live(trigger_secs: u64, process_secs: u64) -> LiveEventsConfig {
        LiveEventsConfig {
            triggers: vec!["t".into()],
            users: Vec::new(),
            trigger_interval: Duration::from_secs(trigger_secs),
            process_interval: Duration::from_secs(process_secs),
            ..LiveEventsConfig::default()
        }
    }

    #[test]
    fn evaluations_are_bounded_per_second() {
        let mut limits = Limits::new(&live(0, 0));
        let start = Instant::now();
        let admitted = (0..1000).filter(|_| limits.evaluate(start).0).count();
        assert_eq!(admitted, MAX_EVALUATIONS_PER_SECOND as usize);
        let skipped = 1000 - u64::from(MAX_EVALUATIONS_PER_SECOND);
        assert_eq!(limits.skipped, skipped);
        let logged = (0..100).filter(|_| limits.may_log()).count();
        assert_eq!(logged, MAX_LOGGED_PER_SECOND as usize);
        // The next second: looked at again, and the count of the quiet ones
        // said once.
        assert_eq!(
            limits.evaluate(start + Duration::from_secs(1)),
            (true, Some(skipped + 100 - u64::from(MAX_LOGGED_PER_SECOND)))
        );
        assert_eq!(
            limits.evaluate(start + Duration::from_secs(1)),
            (true, None)
        );
    }

    #[test]
    fn one_core_per_trigger_and_per_process_per_interval() {
        let mut limits = Limits::new(&live(10, 100));
        let t0 = Instant::now();
        assert!(limits.trigger_ok("t", t0));
        assert!(limits.process_ok((5, 1), t0).is_ok());
        limits.taken("t", (5, 1), t0);
        assert!(!limits.trigger_ok("t", t0 + Duration::from_secs(9)));
        assert!(limits.trigger_ok("u", t0));
        assert!(limits.trigger_ok("t", t0 + Duration::from_secs(10)));
        assert!(limits
            .process_ok((5, 1), t0 + Duration::from_secs(99))
            .is_err());
        // The same pid, another process (start time): not limited.
        assert!(limits.process_ok((5, 2), t0).is_ok());
    }

    #[test]
    fn the_processes_remembered_are_bounded() {
        let mut limits = Limits::new(&live(0, 100));
        let t0 = Instant::now();
        for pid in 0..MAX_PROCESSES as i32 {
            limits.taken("t", (pid, 0), t0);
        }
        assert_eq!(
            limits.process_ok((-1, 0), t0 + Duration::from_secs(1)),
            Err("too many processes remembered")
        );
        // Once they expire, room again.
        assert!(limits
            .process_ok((-1, 0), t0 + Duration::from_secs(100))
            .is_ok());
        assert!(limits.processes.is_empty());
    }

    #[test]
    fn a_claim_without_this_namespace_is_not_read_as_a_pid() {
        let me = FieldValue::Signed(i64::from(std::process::id()));
        let ns = FieldValue::Unsigned(own_pid_ns().unwrap());
        let uid = rustix::process::getuid().as_raw();
        // This very process, of this namespace and uid: accepted.
        let target = check_target(Some(&me), Some(&ns), uid).unwrap();
        assert_eq!(target.pid, std::process::id() as i32);
        // No namespace said, or another one: refused before any lookup.
        assert!(matches!(
            check_target(Some(&me), None, uid),
            Err(Refusal::OtherNamespace(_))
        ));
        assert!(matches!(
            check_target(Some(&me), Some(&FieldValue::Unsigned(1)), uid),
            Err(Refusal::OtherNamespace(_))
        ));
        // Another owner than the process's.
        assert!(matches!(
            check_target(Some(&me), Some(&ns), uid.wrapping_add(1)),
            Err(Refusal::NotTheOwners { .. })
        ));
        // Nonsense pids.
        for bad in [
            FieldValue::Signed(0),
            FieldValue::Signed(-1),
            FieldValue::Unsigned(u64::MAX),
            FieldValue::String("1".into()),
        ] {
            assert!(matches!(
                check_target(Some(&bad), Some(&ns), uid),
                Err(Refusal::NoPid)
            ));
        }
    }
}
