//! For the `recover` system tests: a traced crasher run as a test user
//! against the user's private session daemon, which the test can make fail
//! (consumer daemon killed, session daemon stopped) between two bursts of
//! events, then crashed through the real core_pattern with the handler
//! installed; and the trace's metadata (never in the core) read back from a
//! snapshot taken before the failure.
//!
//! The shared root session daemon is never touched, and the crasher cannot
//! see it (see [`Lab::spawn_crasher`]). It runs, though, for as long as the
//! lab lives ([`ensure_sessiond`]): the handler fires in it on every crash,
//! and a socket a killed root daemon left would make that fire fail, which
//! the record's `core_trace` counts as a failed snapshot.

use crate::crasher::{crasher_path, parse_ready, REGISTER_TIMEOUT_MS};
use crate::handler::{config_for, wait_for_record, InstalledHandler, CRASH_TIMEOUT};
use crate::process::{children_of, signal};
use crate::sessiond::{ensure_sessiond, RootSessiondUse};
use crate::sessions::snapshot_dirs;
use crate::temp::{unique_name, TempDir};
use crate::users::TestUser;
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How the test makes the tracing infrastructure fail before the crash.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Failure {
    None,
    /// SIGKILL the user's consumer daemon(s).
    KillConsumer,
    /// SIGSTOP the user's session daemon (it stays hung through the crash).
    StopSessiond,
}

/// One crash to make.
pub struct Scenario<'a> {
    pub user: &'a str,
    pub per_pid: bool,
    /// `--subbuf-size`, `--num-subbuf`.
    pub subbufs: (&'a str, &'a str),
    pub failure: Failure,
    /// Extra handler configuration lines.
    pub config: &'a str,
    /// Events before the failure (seq 0..before).
    pub before: u32,
    /// Events after it (seq before..before+after).
    pub after: u32,
    /// Run the crasher with this coredump_filter (hex), when set.
    pub coredump_filter: Option<&'a str>,
    /// Run the crasher without address-space randomization.
    pub no_aslr: bool,
    /// Run the crasher on this CPU only (its events then go to that
    /// CPU's stream).
    pub cpu: Option<u32>,
    /// Create the session with `--shm-path` under the user's home.
    pub shm_path: bool,
    /// Take a snapshot after the first burst (false when the consumer is
    /// already dead: the newest earlier snapshot then gives the metadata).
    pub snapshot: bool,
}

impl Default for Scenario<'_> {
    fn default() -> Self {
        Scenario {
            user: "lcdrec",
            per_pid: false,
            subbufs: ("64K", "8"),
            failure: Failure::None,
            config: "",
            before: 10,
            after: 10,
            coredump_filter: None,
            no_aslr: false,
            cpu: None,
            shm_path: false,
            snapshot: true,
        }
    }
}

/// What a crash left.
pub struct Crash {
    pub tag: String,
    pub pid: i32,
    pub core: PathBuf,
    pub record: serde_json::Value,
    /// The snapshot taken (as the user) after the first burst, while the
    /// daemons were alive: the source of the trace's metadata.
    pub snapshot: PathBuf,
    /// The UUID of the session's trace for this program (from that
    /// snapshot's metadata).
    pub uuid: String,
    pub shm_dir: Option<PathBuf>,
}

/// A crasher started by [`Lab::spawn_crasher`], waiting at its gate.
pub struct GatedCrasher {
    pub child: Child,
    pub pid: i32,
    pub tag: String,
}

/// A test user with a private daemon and one snapshot session; the
/// handler installed; cleaned up (daemon resumed and stopped, user
/// deleted) when dropped.
pub struct Lab {
    pub user: TestUser,
    pub sessiond: i32,
    pub session: String,
    pub cores: PathBuf,
    pub handler: Option<InstalledHandler>,
    _dir: TempDir,
    _root_sessiond: RootSessiondUse,
}

impl Lab {
    /// Sets up the user, daemon and session of `s`, and installs `handler`
    /// (the binary cargo built: `handler_binary!()`).
    pub fn new(handler: &Path, s: &Scenario) -> Lab {
        let root_sessiond = ensure_sessiond();
        let dir = TempDir::new("lcd-recover");
        let cores = dir.path().join("cores");
        let mut user = TestUser::create(s.user, false);
        let sessiond = user.start_sessiond();
        let session = "rec".to_string();
        let traces = user.home.join("traces");
        let mut create = vec![
            "create".to_string(),
            session.clone(),
            "--snapshot".into(),
            "-o".into(),
            traces.display().to_string(),
        ];
        if s.shm_path {
            create.push("--shm-path".into());
            create.push(user.home.join("shm").display().to_string());
        }
        let create: Vec<&str> = create.iter().map(String::as_str).collect();
        user.lttng_ok(&create);
        let mut channel = vec![
            "enable-channel",
            "-u",
            "ch",
            "-s",
            &session,
            "--overwrite",
            "--subbuf-size",
            s.subbufs.0,
            "--num-subbuf",
            s.subbufs.1,
        ];
        if s.per_pid {
            channel.push("--buffers-pid");
        }
        user.lttng_ok(&channel);
        user.lttng_ok(&[
            "enable-event",
            "-u",
            crate::sessions::CRASHER_EVENTS,
            "-c",
            "ch",
            "-s",
            &session,
        ]);
        user.lttng_ok(&["start", &session]);
        let handler = InstalledHandler::new(
            handler,
            &config_for(
                &cores,
                &format!("snapshot_user_daemon = true\n{}", s.config),
            ),
        );
        Lab {
            user,
            sessiond,
            session,
            cores,
            handler: Some(handler),
            _dir: dir,
            _root_sessiond: root_sessiond,
        }
    }

    /// Starts the crasher as the user, where only the user's daemon sees
    /// it: in a private mount namespace, an empty /run/lttng hides the root
    /// daemon, whose other sessions (other tests') could otherwise trace it
    /// too and change its core (more buffers, another layout). It emits
    /// `s.before` events, prints its pid and waits at its gate; a line on
    /// its stdin makes it emit `s.after` more and crash (SIGSEGV).
    pub fn spawn_crasher(&self, s: &Scenario) -> GatedCrasher {
        let tag = unique_name("rec");
        let mut script = String::new();
        if let Some(filter) = s.coredump_filter {
            script.push_str(&format!("echo {filter} > /proc/self/coredump_filter; "));
        }
        script.push_str(&format!(
            "exec env LTTNG_UST_REGISTER_TIMEOUT={REGISTER_TIMEOUT_MS} {}{}{} --gate --more {} {tag} {} segv",
            if s.no_aslr { "setarch -R " } else { "" },
            s.cpu
                .map(|c| format!("taskset -c {c} "))
                .unwrap_or_default(),
            crasher_path().display(),
            s.after,
            s.before
        ));
        let isolated = format!(
            "mount -t tmpfs tmpfs /run/lttng && exec runuser -u {} -- env -i HOME={} \
             PATH=/usr/local/bin:/usr/bin:/bin /bin/sh -c '{}'",
            self.user.name,
            self.user.home.display(),
            script
        );
        let mut child = Command::new("unshare")
            .args([
                "--mount",
                "--propagation",
                "private",
                "/bin/sh",
                "-c",
                &isolated,
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("running unshare (util-linux)");
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        let pid = parse_ready(&line).unwrap_or_else(|| panic!("the crasher printed {line:?}"));
        GatedCrasher { child, pid, tag }
    }

    /// Runs the crasher: `before` events, a snapshot as the user, the
    /// failure, `after` events, then SIGSEGV through the real core_pattern.
    pub fn crash(&self, s: &Scenario) -> Crash {
        use std::io::Write;
        let traces = self.user.home.join("traces");
        let snapshots_before = snapshot_dirs(&traces);
        let GatedCrasher {
            mut child,
            pid,
            tag,
        } = self.spawn_crasher(s);
        // Metadata for later, while every daemon is alive.
        let snapshot = if s.snapshot {
            self.user
                .lttng_ok(&["snapshot", "record", "-s", &self.session]);
            snapshot_dirs(&traces)
                .into_iter()
                .find(|d| !snapshots_before.contains(d))
                .expect("the snapshot before the failure")
        } else {
            snapshots_before
                .last()
                .cloned()
                .expect("an earlier snapshot of the session")
        };
        match s.failure {
            Failure::None => {}
            Failure::KillConsumer => {
                let consumers: Vec<i32> = children_of(self.sessiond)
                    .into_iter()
                    .filter(|(_, name)| name.starts_with("lttng-consumer"))
                    .map(|(pid, _)| pid)
                    .collect();
                assert!(
                    !consumers.is_empty(),
                    "the user's daemon has no consumer daemon"
                );
                for consumer in consumers {
                    assert!(signal(consumer, libc::SIGKILL), "kill {consumer}");
                }
            }
            Failure::StopSessiond => assert!(
                signal(self.sessiond, libc::SIGSTOP),
                "stop {}",
                self.sessiond
            ),
        }
        // Whatever it took, the process is still being traced: the next
        // burst goes to its buffers in shared memory.
        child.stdin.as_mut().unwrap().write_all(b"go\n").unwrap();
        let started = Instant::now();
        while child.try_wait().unwrap().is_none() {
            assert!(started.elapsed() < CRASH_TIMEOUT, "the crash did not end");
            std::thread::sleep(Duration::from_millis(20));
        }
        let (_, record) = wait_for_record(&self.cores, pid);
        let core = PathBuf::from(
            record["core"]["path"]
                .as_str()
                .unwrap_or_else(|| panic!("no core saved: {record:#}")),
        );
        let metadata = find_metadata(&snapshot, s.per_pid.then_some(pid))
            .unwrap_or_else(|| panic!("no metadata in {}", snapshot.display()));
        let uuid = metadata_uuid(&metadata);
        let shm_dir = s.shm_path.then(|| self.user.home.join("shm"));
        Crash {
            tag,
            pid,
            core,
            record,
            snapshot,
            uuid,
            shm_dir,
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        drop(self.handler.take());
        // The daemon this test started, stopped or not, and what is left of
        // its children (they may be gone); the user's drop stops the daemon.
        signal(self.sessiond, libc::SIGCONT);
        for (leftover, _) in children_of(self.sessiond) {
            signal(leftover, libc::SIGKILL);
        }
    }
}

/// The `metadata` file of a snapshot (of this pid's trace, for per-pid
/// buffers: `ust/pid/NAME-PID-DATE/metadata`).
pub fn find_metadata(dir: &Path, pid: Option<i32>) -> Option<PathBuf> {
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).ok()?.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if entry.file_name() == "metadata" {
                let matches = pid.is_none_or(|pid| {
                    d.file_name()
                        .is_some_and(|n| n.to_string_lossy().contains(&format!("-{pid}-")))
                });
                if matches {
                    return Some(path);
                }
            }
        }
    }
    None
}

/// The UUID of a packetized metadata file, as text.
pub fn metadata_uuid(path: &Path) -> String {
    let bytes = fs::read(path).unwrap();
    assert_eq!(
        &bytes[..4],
        &0x75D1_1D57u32.to_le_bytes(),
        "{}",
        path.display()
    );
    let h: Vec<String> = bytes[4..20].iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        h[0..4].concat(),
        h[4..6].concat(),
        h[6..8].concat(),
        h[8..10].concat(),
        h[10..16].concat()
    )
}
