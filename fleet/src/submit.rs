//! The submitter: sends what the spool holds to every destination, marks an
//! item done for a destination only once that destination acknowledged it,
//! and moves it to `sent/` when all have. A destination that fails is
//! retried with a back-off (doubling from `retry_initial` up to
//! `retry_max`); its last error, its failures in a row and its next
//! attempt are kept in `state/DESTINATION.json` for `status`.
//!
//! A failed batch is retried one item at a time until one succeeds, and an
//! item that fails alone goes behind the others (as corewatcher put failed
//! submissions at the end of its queue), so one entry a destination
//! refuses never holds back the rest.
//!
//! One submitter at a time (`submit.lock`): `lttng-coredump submit` while
//! `serve` submits says so and leaves the work to it.

use crate::destination::Destination;
use crate::dirs::Dir;
use crate::http::Failure;
use crate::spool::{self, now_us, Spool, SpoolError, SpoolLimits};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// How serious a message of the submitter is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Info,
    Warning,
    Error,
}

/// Where the submitter's messages go (the integration: syslog/journald).
pub type Logger = Box<dyn Fn(Level, &str) + Send>;

/// A destination's state, as `status` shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DestinationState {
    pub name: String,
    pub target: String,
    pub last_attempt_us: Option<u64>,
    pub last_success_us: Option<u64>,
    /// The last failure, kept after a later success (with its time).
    pub last_error: Option<DestinationError>,
    /// Failures since the last success (0: it works).
    pub consecutive_failures: u32,
    /// When the next attempt is due (none while it works).
    pub next_attempt_us: Option<u64>,
    /// Crashes it acknowledged, in total.
    pub delivered: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DestinationError {
    pub time_us: u64,
    pub message: String,
    /// The HTTP status the destination answered, when it answered.
    pub http_status: Option<u16>,
    /// `unreachable`, `tls`, `refused` or `other`.
    pub kind: String,
}

/// The back-off bounds and the follow loop's wake-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    pub initial: Duration,
    pub max: Duration,
    /// How often `follow` looks at the queue when nothing woke it.
    pub poll: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Retry {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(300),
            poll: Duration::from_secs(30),
        }
    }
}

impl Retry {
    /// The wait after `failures` failures in a row.
    pub fn delay(&self, failures: u32) -> Duration {
        let doubled = self.initial.saturating_mul(
            1u32.checked_shl(failures.saturating_sub(1))
                .unwrap_or(u32::MAX),
        );
        doubled.min(self.max)
    }
}

struct Target {
    destination: Box<dyn Destination + Send>,
    state: DestinationState,
    batch: usize,
}

/// What one pass over the queue did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pass {
    /// Acknowledgements received (an item counts once per destination).
    pub acknowledged: usize,
    /// Items moved to `sent/`.
    pub completed: usize,
    /// Items still waiting for some destination.
    pub remaining: usize,
    /// Destinations that failed in this pass.
    pub failures: Vec<(String, String)>,
}

pub struct Submitter {
    spool: Spool,
    targets: Vec<Target>,
    limits: SpoolLimits,
    retry: Retry,
    log: Logger,
    /// Failures of an item sent alone, per destination: such items go
    /// behind the others.
    blamed: HashMap<(usize, String), u32>,
}

impl Submitter {
    /// A submitter of `spool` to `destinations` (in their order). The
    /// destinations' earlier states (failures, back-off) are read back.
    pub fn new(
        spool: Spool,
        destinations: Vec<Box<dyn Destination + Send>>,
        limits: SpoolLimits,
        retry: Retry,
        log: Logger,
    ) -> Submitter {
        let state_dir = spool.state_dir().ok();
        let targets = destinations
            .into_iter()
            .map(|destination| {
                let mut state = state_dir
                    .as_ref()
                    .and_then(|dir| read_state(dir, destination.name()))
                    .unwrap_or_default();
                state.name = destination.name().to_owned();
                state.target = destination.target().to_owned();
                let batch = destination.max_batch();
                Target {
                    destination,
                    state,
                    batch,
                }
            })
            .collect();
        Submitter {
            spool,
            targets,
            limits,
            retry,
            log,
            blamed: HashMap::new(),
        }
    }

    pub fn spool(&self) -> &Spool {
        &self.spool
    }

    fn names(&self) -> Vec<&'static str> {
        self.targets.iter().map(|t| t.destination.name()).collect()
    }

    /// Sends what is queued and returns (`lottng-coredump submit`): each
    /// destination is tried now whatever its back-off, and again as long as
    /// it acknowledges; one that fails is left for the next run.
    pub fn submit_queued(&mut self) -> Result<Pass, SpoolError> {
        let mut total = Pass::default();
        let mut given_up = vec![false; self.targets.len()];
        loop {
            let pass = self.pass(|i, _| !given_up[i])?;
            for (name, _) in &pass.failures {
                if let Some(i) = self.targets.iter().position(|t| t.state.name == *name) {
                    given_up[i] = true;
                }
            }
            total.acknowledged += pass.acknowledged;
            total.completed += pass.completed;
            total.failures.extend(pass.failures.clone());
            total.remaining = pass.remaining;
            if pass.acknowledged == 0 {
                return Ok(total);
            }
        }
    }

    /// Keeps sending until `stop` is set (`submit --follow`, and `serve`):
    /// woken by new items (inotify on `queue/`), by a destination's
    /// back-off ending, and every `retry.poll` in any case.
    pub fn follow(&mut self, stop: &AtomicBool) -> Result<(), SpoolError> {
        let watch = QueueWatch::new(self.spool.path());
        while !stop.load(Ordering::Relaxed) {
            let now = now_us();
            let pass = self.pass(|_, state| state.next_attempt_us.is_none_or(|t| t <= now))?;
            if pass.acknowledged > 0 {
                continue;
            }
            let now = now_us();
            let mut wait = self.retry.poll;
            for target in &self.targets {
                if let Some(next) = target.state.next_attempt_us {
                    wait = wait.min(Duration::from_micros(next.saturating_sub(now)));
                }
            }
            watch.wait(wait.max(Duration::from_millis(10)), stop);
        }
        Ok(())
    }

    /// One pass: each destination `due` gets the items it has not
    /// acknowledged, a batch at a time, until it fails or has them all.
    fn pass(&mut self, due: impl Fn(usize, &DestinationState) -> bool) -> Result<Pass, SpoolError> {
        let mut pass = Pass::default();
        let names = self.names();
        // Items every destination acknowledged whose move to sent/ did not
        // happen (destinations configured differently since).
        pass.completed += self
            .spool
            .complete_acknowledged(&names, self.limits.keep_sent)?;
        for i in 0..self.targets.len() {
            if !due(i, &self.targets[i].state) {
                continue;
            }
            // What it lacks, listed once a pass (crashes queued meanwhile
            // go in the next one).
            let mut pending: std::collections::VecDeque<String> = self.pending(i)?.into();
            // Items of a failed batch, sent again one at a time.
            let mut singles = 0usize;
            // Whether it took something this pass: then an item it refuses
            // is the item's fault, and the others still go.
            let mut took_some = false;
            loop {
                let take = if singles > 0 {
                    1
                } else {
                    self.targets[i].batch
                }
                .min(pending.len());
                singles = singles.saturating_sub(1);
                let batch: Vec<String> = pending.drain(..take).collect();
                if batch.is_empty() {
                    break;
                }
                let mut items = Vec::with_capacity(batch.len());
                for name in &batch {
                    match self
                        .spool
                        .load_item(name, self.targets[i].destination.sends_report())
                    {
                        Ok(item) => items.push(item),
                        // Dropped from a full spool, or completed by an
                        // earlier run, meanwhile.
                        Err(_) if !self.spool.queued()?.contains(name) => {}
                        Err(e) => return Err(e),
                    }
                }
                if items.is_empty() {
                    continue;
                }
                let attempted = now_us();
                let result = self.targets[i].destination.deliver(&mut items);
                let (acknowledged, failure) = match result {
                    Ok(()) => (items.len(), None),
                    Err((n, failure)) => (n, Some(failure)),
                };
                let answered: Vec<&str> = items[..acknowledged]
                    .iter()
                    .map(|item| item.name.as_str())
                    .collect();
                pass.completed +=
                    self.spool
                        .acknowledge(&answered, names[i], &names, self.limits.keep_sent)?;
                for name in &answered {
                    self.blamed.remove(&(i, name.to_string()));
                }
                pass.acknowledged += acknowledged;
                took_some |= acknowledged > 0;
                let target = &mut self.targets[i];
                target.state.last_attempt_us = Some(attempted);
                target.state.delivered += acknowledged as u64;
                match failure {
                    None => {
                        if target.state.consecutive_failures > 0 {
                            (self.log)(
                                Level::Info,
                                &format!(
                                    "{} ({}) acknowledges crashes again, after {} failed attempts",
                                    target.state.name,
                                    target.state.target,
                                    target.state.consecutive_failures
                                ),
                            );
                        }
                        target.state.last_success_us = Some(now_us());
                        target.state.consecutive_failures = 0;
                        target.state.next_attempt_us = None;
                        target.batch = target.destination.max_batch();
                        self.save_state(i);
                    }
                    // A destination that answered (or dropped the
                    // connection) but took a batch of several: perhaps one
                    // entry it refuses. Retried at once one at a time, so
                    // the others go through.
                    Some(failure)
                        if items.len() - acknowledged > 1
                            && failure.kind != crate::http::FailureKind::Unreachable =>
                    {
                        singles = items.len() - acknowledged;
                        for item in items[acknowledged..].iter().rev() {
                            pending.push_front(item.name.clone());
                        }
                    }
                    Some(failure) => {
                        let refused_alone = items.len() - acknowledged == 1
                            && took_some
                            && failure.kind != crate::http::FailureKind::Unreachable;
                        self.record_failure(i, &items[acknowledged..], &failure);
                        pass.failures
                            .push((names[i].to_owned(), failure.message.clone()));
                        if !refused_alone {
                            break;
                        }
                    }
                }
            }
        }
        pass.remaining = self.spool.queued()?.len();
        Ok(pass)
    }

    fn record_failure(
        &mut self,
        i: usize,
        unacknowledged: &[spool::LoadedItem],
        failure: &Failure,
    ) {
        if unacknowledged.len() == 1 {
            *self
                .blamed
                .entry((i, unacknowledged[0].name.clone()))
                .or_default() += 1;
        }
        let target = &mut self.targets[i];
        // Retried one at a time until one goes through.
        target.batch = 1;
        let changed = target
            .state
            .last_error
            .as_ref()
            .is_none_or(|e| e.message != failure.message)
            || target.state.consecutive_failures == 0;
        target.state.consecutive_failures = target.state.consecutive_failures.saturating_add(1);
        let delay = self.retry.delay(target.state.consecutive_failures);
        target.state.next_attempt_us = Some(now_us() + delay.as_micros() as u64);
        target.state.last_error = Some(DestinationError {
            time_us: now_us(),
            message: failure.message.clone(),
            http_status: failure.http_status(),
            kind: match failure.kind {
                crate::http::FailureKind::Unreachable => "unreachable",
                crate::http::FailureKind::Tls => "tls",
                crate::http::FailureKind::Refused(_) => "refused",
                crate::http::FailureKind::Other => "other",
            }
            .into(),
        });
        if changed {
            (self.log)(
                Level::Error,
                &format!(
                    "{}: {} ({} crashes wait in the spool {}; retrying, at most every {:?})",
                    target.state.name,
                    failure.message,
                    self.spool.queued().map(|q| q.len()).unwrap_or(0),
                    self.spool.path().display(),
                    self.retry.max
                ),
            );
        }
        self.save_state(i);
    }

    /// The items destination `i` has not acknowledged: the ones that never
    /// failed alone first, oldest first.
    fn pending(&self, i: usize) -> Result<Vec<String>, SpoolError> {
        let name = self.targets[i].destination.name();
        let queue = self.spool.path().join(spool::QUEUE);
        let mut pending: Vec<(u32, String)> = self
            .spool
            .queued()?
            .into_iter()
            .filter(|item| !queue.join(item).join(format!("done.{name}")).exists())
            .map(|item| {
                (
                    self.blamed.get(&(i, item.clone())).copied().unwrap_or(0),
                    item,
                )
            })
            .collect();
        pending.sort();
        Ok(pending.into_iter().map(|(_, item)| item).collect())
    }

    fn save_state(&self, i: usize) {
        let state = &self.targets[i].state;
        let result = self
            .spool
            .state_dir()
            .and_then(|dir| write_state(&dir, state).map_err(SpoolError::from));
        if let Err(e) = result {
            (self.log)(
                Level::Warning,
                &format!("cannot save the state of {}: {e}", state.name),
            );
        }
    }

    /// The destinations' states as this submitter knows them.
    pub fn states(&self) -> Vec<DestinationState> {
        self.targets.iter().map(|t| t.state.clone()).collect()
    }
}

/// Reads `state/NAME.json`.
pub fn read_state(dir: &Dir, name: &str) -> Option<DestinationState> {
    use std::io::Read;
    let mut text = String::new();
    dir.open_file(&format!("{name}.json"))
        .ok()?
        .take(1 << 20)
        .read_to_string(&mut text)
        .ok()?;
    serde_json::from_str(&text).ok()
}

fn write_state(dir: &Dir, state: &DestinationState) -> std::io::Result<()> {
    let tmp = format!(".{}.json.tmp", state.name);
    dir.remove_file(&tmp)?;
    let mut file = dir.create_file(&tmp, 0o600)?;
    file.write_all(&serde_json::to_vec_pretty(state).expect("the state serializes"))?;
    drop(file);
    dir.replace(&tmp, &format!("{}.json", state.name))
}

/// inotify on `queue/`: a new item wakes the follow loop at once. Without
/// inotify (or when it fails) the loop polls.
struct QueueWatch {
    fd: Option<std::os::fd::OwnedFd>,
}

impl QueueWatch {
    fn new(spool: &std::path::Path) -> QueueWatch {
        use rustix::fs::inotify;
        let fd = inotify::init(inotify::CreateFlags::CLOEXEC | inotify::CreateFlags::NONBLOCK)
            .ok()
            .filter(|fd| {
                inotify::add_watch(
                    fd,
                    spool.join(spool::QUEUE),
                    inotify::WatchFlags::MOVED_TO | inotify::WatchFlags::CREATE,
                )
                .is_ok()
            });
        QueueWatch { fd }
    }

    /// Waits up to `timeout` for a new item (or `stop`), in steps short
    /// enough to see `stop`.
    fn wait(&self, timeout: Duration, stop: &AtomicBool) {
        use rustix::event::{poll, PollFd, PollFlags, Timespec};
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let now = std::time::Instant::now();
            if now >= deadline || stop.load(Ordering::Relaxed) {
                return;
            }
            let step = (deadline - now).min(Duration::from_millis(200));
            match &self.fd {
                Some(fd) => {
                    let mut fds = [PollFd::new(fd, PollFlags::IN)];
                    let timeout = Timespec {
                        tv_sec: step.as_secs() as _,
                        tv_nsec: step.subsec_nanos() as _,
                    };
                    if poll(&mut fds, Some(&timeout)).unwrap_or(0) > 0 {
                        let mut buf = [0u8; 4096];
                        while rustix::io::read(fd, &mut buf).is_ok_and(|n| n > 0) {}
                        return;
                    }
                }
                None => std::thread::sleep(step),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_back_off_doubles_up_to_its_bound() {
        let retry = Retry {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(60),
            poll: Duration::from_secs(30),
        };
        let delays: Vec<u64> = (1..=9).map(|n| retry.delay(n).as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(retry.delay(1000), Duration::from_secs(60));
    }
}
