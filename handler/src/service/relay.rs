//! The line between the crash service and the process of one crash
//! (`serve --crash-on-stdin`): a Unix socket pair, the crash's end on its
//! standard output. The service says when the crash may go (one word:
//! [`GO`] or [`REFUSED`]); then the crash's process asks the service to run
//! its fires in the service's resident children (engine `workers`, kept
//! from one crash to the next), one request a line, one report a line, so
//! that a crash in a process of its own costs no fork per session daemon.
//!
//! The pair ends when either side does: the crash's process ends (the
//! service's worker is free again), or the service is killed, and then the
//! crash's process goes on alone: it handles its crash to its record,
//! firing from children of its own ([`crate::crash::snapshot::Residents`]
//! gives `None`). Every wait is bounded: the service waits for a request
//! without a bound only while the crash's process lives (its end closes
//! when it exits, whatever the cause), and a line is at most
//! [`MAX_LINE`] bytes.

use crate::crash::snapshot::Residents;
use lttng_coredump_engine::{
    ActionPhase, CrashInfo, DaemonTarget, FireOptions, FireReport, Workers,
};
use serde::{Deserialize, Serialize};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

/// The word that lets a crash's process handle its crash.
pub const GO: u8 = b'g';
/// The word that makes a crash's process drop its crash unanswered.
pub const REFUSED: u8 = b'n';
/// The longest request or report line (a report names at most the
/// triggers' actions of one daemon).
const MAX_LINE: u64 = 16 << 20;
/// How long past a fire's deadline the crash's process waits for the
/// service's report before it fires alone. The service's fire is bounded
/// by the engine (the deadline, then a child killed and reaped or left
/// behind); this only bounds a service that stopped answering (stopped,
/// or thrashing), generously: on a loaded machine the engine's own end
/// was seen to take more than 5 s past the deadline.
const SLACK: Duration = Duration::from_secs(30);

/// [`DaemonTarget`], as it crosses the line.
#[derive(Serialize, Deserialize)]
enum Target {
    Default,
    RunDir(PathBuf),
    User(u32),
}

/// One fire, as the crash's process asks for it.
#[derive(Serialize, Deserialize)]
struct Request {
    crash: CrashInfo,
    target: Target,
    deadline_ms: u64,
    extra_sessions: Vec<String>,
    fallback: bool,
    phase: ActionPhase,
}

impl Request {
    fn of(crash: &CrashInfo, options: &FireOptions) -> Request {
        Request {
            crash: crash.clone(),
            target: match &options.daemon {
                DaemonTarget::Default => Target::Default,
                DaemonTarget::RunDir(path) => Target::RunDir(path.clone()),
                DaemonTarget::User(uid) => Target::User(*uid),
            },
            deadline_ms: options.deadline.as_millis().min(u64::MAX as u128) as u64,
            extra_sessions: options.extra_sessions.clone(),
            fallback: options.fallback_to_active_snapshot_sessions,
            phase: options.phase,
        }
    }

    fn options(self) -> (CrashInfo, FireOptions) {
        (
            self.crash,
            FireOptions {
                deadline: Duration::from_millis(self.deadline_ms),
                daemon: match self.target {
                    Target::Default => DaemonTarget::Default,
                    Target::RunDir(path) => DaemonTarget::RunDir(path),
                    Target::User(uid) => DaemonTarget::User(uid),
                },
                extra_sessions: self.extra_sessions,
                fallback_to_active_snapshot_sessions: self.fallback,
                phase: self.phase,
            },
        )
    }
}

/// One line of at most [`MAX_LINE`] bytes; `None` at the end or past the
/// bound.
fn read_line(reader: &mut impl BufRead) -> Option<String> {
    let mut line = String::new();
    match reader.take(MAX_LINE).read_line(&mut line) {
        Ok(0) | Err(_) => None,
        Ok(_) if !line.ends_with('\n') => None,
        Ok(_) => Some(line),
    }
}

/// The service's side, on a worker: lets the crash go, then runs its fires
/// in `workers` until the crash's process closes its end.
pub fn serve_crash(stream: &UnixStream, workers: &Workers) {
    let mut writer = stream;
    if writer.write_all(&[GO]).is_err() {
        return;
    }
    let mut reader = BufReader::new(stream);
    while let Some(line) = read_line(&mut reader) {
        let Ok(request) = serde_json::from_str::<Request>(&line) else {
            return;
        };
        let (crash, options) = request.options();
        let report = lttng_coredump_engine::fire_on_any_core_dump_with(&crash, &options, workers);
        let Ok(mut answer) = serde_json::to_string(&report) else {
            return;
        };
        answer.push('\n');
        if writer.write_all(answer.as_bytes()).is_err() {
            return;
        }
    }
}

/// What the crash's process heard from the service before it may go.
pub enum Word {
    Go,
    Refused,
    /// The service ended without a word.
    ServiceGone,
}

/// The crash's side of the line.
pub struct ServiceRelay {
    stream: Mutex<Option<BufReader<UnixStream>>>,
}

impl ServiceRelay {
    pub fn new(stream: UnixStream) -> ServiceRelay {
        ServiceRelay {
            stream: Mutex::new(Some(BufReader::new(stream))),
        }
    }

    /// Waits for the service's word (without a bound: the service is the
    /// one that decides, and its end closes the line if it dies).
    pub fn wait_word(&self) -> Word {
        let mut guard = self.stream.lock().unwrap_or_else(|p| p.into_inner());
        let Some(reader) = guard.as_mut() else {
            return Word::ServiceGone;
        };
        let mut word = [0u8; 1];
        loop {
            match reader.read(&mut word) {
                Ok(1) if word[0] == GO => return Word::Go,
                Ok(1) => return Word::Refused,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Ok(_) | Err(_) => {
                    *guard = None;
                    return Word::ServiceGone;
                }
            }
        }
    }

    fn ask(
        reader: &mut BufReader<UnixStream>,
        request: &Request,
        wait: Duration,
    ) -> Result<FireReport, String> {
        let gone = |err: io::Error| format!("the crash service ended during the fire ({err})");
        let mut line = serde_json::to_string(request).map_err(|e| e.to_string())?;
        line.push('\n');
        reader
            .get_mut()
            .set_read_timeout(Some(wait))
            .map_err(gone)?;
        reader.get_mut().write_all(line.as_bytes()).map_err(gone)?;
        let mut answer = String::new();
        match reader.take(MAX_LINE).read_line(&mut answer) {
            Err(err)
                if matches!(
                    err.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Err(format!(
                    "the crash service did not answer the fire within {} s",
                    wait.as_secs()
                ))
            }
            Err(err) => return Err(gone(err)),
            Ok(_) if !answer.ends_with('\n') => {
                return Err("the crash service ended during the fire".into())
            }
            Ok(_) => {}
        }
        serde_json::from_str(&answer)
            .map_err(|err| format!("the crash service's report could not be read: {err}"))
    }
}

impl Residents for ServiceRelay {
    fn fire(&self, crash: &CrashInfo, options: &FireOptions) -> Result<FireReport, String> {
        let mut guard = self.stream.lock().unwrap_or_else(|p| p.into_inner());
        let reader = guard
            .as_mut()
            .ok_or_else(|| "the crash service is gone".to_string())?;
        let answer = Self::ask(
            reader,
            &Request::of(crash, options),
            options.deadline + SLACK,
        );
        if answer.is_err() {
            // The service is gone (or out of step): every later fire is
            // done here.
            *guard = None;
        }
        answer
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fire_request_crosses_the_line_whole() {
        let crash = CrashInfo {
            pid: 12,
            uid: 1000,
            gid: 1000,
            exec_name: "x\ny".into(),
            hostname: "h".into(),
            time: 7,
        };
        for daemon in [
            DaemonTarget::Default,
            DaemonTarget::RunDir("/home/u/.lttng".into()),
            DaemonTarget::User(1000),
        ] {
            let options = FireOptions {
                deadline: Duration::from_millis(1500),
                daemon: daemon.clone(),
                extra_sessions: vec!["a".into()],
                fallback_to_active_snapshot_sessions: true,
                phase: ActionPhase::Stops,
            };
            let line = serde_json::to_string(&Request::of(&crash, &options)).unwrap();
            assert!(!line.contains('\n'));
            let (back, again) = serde_json::from_str::<Request>(&line).unwrap().options();
            assert_eq!(back, crash);
            assert_eq!(again.daemon, daemon);
            assert_eq!(again.deadline, options.deadline);
            assert_eq!(again.extra_sessions, options.extra_sessions);
            assert!(again.fallback_to_active_snapshot_sessions);
            assert_eq!(again.phase, ActionPhase::Stops);
        }
    }

    #[test]
    fn a_service_gone_before_its_word_or_during_a_fire_leaves_the_crash_to_itself() {
        let (service, crash) = UnixStream::pair().unwrap();
        let relay = ServiceRelay::new(crash);
        drop(service);
        assert!(matches!(relay.wait_word(), Word::ServiceGone));
        let options = FireOptions {
            deadline: Duration::from_millis(100),
            daemon: DaemonTarget::Default,
            extra_sessions: vec![],
            fallback_to_active_snapshot_sessions: false,
            phase: ActionPhase::Snapshots,
        };
        assert!(relay.fire(&CrashInfo::default(), &options).is_err());

        // The service answers its word, then dies during the fire.
        let (service, crash) = UnixStream::pair().unwrap();
        let relay = ServiceRelay::new(crash);
        (&service).write_all(&[GO]).unwrap();
        assert!(matches!(relay.wait_word(), Word::Go));
        let dying = std::thread::spawn(move || {
            {
                let mut reader = BufReader::new(&service);
                read_line(&mut reader).unwrap();
            }
            drop(service);
        });
        let why = relay.fire(&CrashInfo::default(), &options).unwrap_err();
        assert!(why.contains("ended during the fire"), "{why}");
        dying.join().unwrap();
        // Once gone, never asked again.
        assert_eq!(
            relay.fire(&CrashInfo::default(), &options).unwrap_err(),
            "the crash service is gone"
        );
    }
}
