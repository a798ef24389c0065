//! Unprivileged test users: created for a test, with their own session
//! daemon when the test needs one, and deleted afterwards.

use crate::lock::FileLock;
use crate::sessiond::start_daemon;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Makes sure an unprivileged test user exists (with a home directory), in
/// the `tracing` group when asked; returns its uid and gid.
pub fn ensure_test_user(name: &str, in_tracing_group: bool) -> (u32, u32) {
    let _lock = FileLock::acquire("users");
    let exists = Command::new("id")
        .arg(name)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !exists {
        let mut cmd = Command::new("useradd");
        cmd.args(["--create-home", "--shell", "/bin/sh"]);
        if in_tracing_group {
            cmd.args(["--groups", "tracing"]);
        }
        let status = cmd.arg(name).status().expect("running useradd");
        assert!(status.success(), "useradd {name} failed");
    } else if in_tracing_group {
        let status = Command::new("usermod")
            .args(["-a", "-G", "tracing", name])
            .status()
            .expect("running usermod");
        assert!(status.success(), "usermod -a -G tracing {name} failed");
    }
    let id = |flag: &str| -> u32 {
        let out = Command::new("id")
            .args([flag, name])
            .output()
            .expect("running id");
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .expect("id prints a number")
    };
    (id("-u"), id("-g"))
}

/// A user's own session daemon, after `env -i HOME=...`.
const SESSIOND: [&str; 4] = [
    "PATH=/usr/local/bin:/usr/bin:/bin",
    "lttng-sessiond",
    "--daemonize",
    "--no-kernel",
];

/// An unprivileged user created for one test and deleted (with its home
/// directory, and after its session daemon is stopped) when dropped.
pub struct TestUser {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: PathBuf,
    sessiond_pid: Option<i32>,
    // Held until the user is deleted: the same test run from another
    // worktree at the same time would otherwise share (and delete) the
    // user and its daemon. Dropped after `drop` has run.
    _lock: FileLock,
}

impl TestUser {
    /// Sets an OnAnyCoreDump trigger on `session` in this user's own
    /// session daemon, acting as the user from this root process, and fails
    /// the test unless the engine reports success.
    pub fn set_trigger_in_own_daemon(
        &self,
        session: &str,
        action: lttng_coredump_engine::ActionKind,
    ) {
        let identity = lttng_coredump_engine::identity::Identity::of_user(self.uid)
            .unwrap()
            .with_lttng_home(&self.home)
            .per_user_daemon();
        let set = lttng_coredump_engine::identity::run_as(
            Duration::from_secs(10),
            Some(&identity),
            || {
                let result = lttng_coredump_engine::set_trigger(session, action)
                    .map(|_| ())
                    .map_err(|e| e.to_string());
                format!("{result:?}").into_bytes()
            },
        )
        .unwrap();
        assert_eq!(String::from_utf8_lossy(&set), "Ok(())");
    }

    pub fn create(name: &str, in_tracing_group: bool) -> TestUser {
        let lock = FileLock::acquire(&format!("user-{name}"));
        let (uid, gid) = ensure_test_user(name, in_tracing_group);
        end_leftover_processes(uid);
        let home = PathBuf::from(format!("/home/{name}"));
        assert!(home.is_dir(), "{} has no home directory", name);
        TestUser {
            name: name.to_string(),
            uid,
            gid,
            home,
            sessiond_pid: None,
            _lock: lock,
        }
    }

    /// A command run as this user, with a clean environment pointing at
    /// their home.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new("runuser");
        cmd.args(["-u", &self.name, "--", "env", "-i"])
            .arg(format!("HOME={}", self.home.display()))
            .arg("PATH=/usr/local/bin:/usr/bin:/bin")
            .arg(program)
            .stdin(Stdio::null());
        cmd
    }

    /// Runs the lttng CLI as this user, panicking on failure.
    pub fn lttng_ok(&self, args: &[&str]) -> String {
        let out = self.command("lttng").args(args).output().unwrap();
        assert!(
            out.status.success(),
            "lttng {args:?} as {} failed: {}{}",
            self.name,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn run_dir(&self) -> PathBuf {
        self.home.join(".lttng")
    }

    /// Starts the user's own session daemon and waits until it answers.
    pub fn start_sessiond(&mut self) -> i32 {
        self.start_sessiond_with_env(&[])
    }

    /// Starts the user's own session daemon with `env` added to its
    /// environment (what a user may do to their own daemon, such as
    /// `LD_PRELOAD`), and waits until it answers.
    pub fn start_sessiond_with_env(&mut self, env: &[(&str, &str)]) -> i32 {
        let mut command = self.command("env");
        command
            .args(env.iter().map(|(k, v)| format!("{k}={v}")))
            .args(["lttng-sessiond", "--daemonize", "--no-kernel"]);
        let pid = start_daemon(command, &self.run_dir(), &self.name);
        self.sessiond_pid = Some(pid);
        pid
    }

    /// Starts the user's own session daemon without their supplementary
    /// groups, and waits until it answers: a member of the `tracing` group
    /// cannot start one otherwise while root's runs (lttng-sessiond asks
    /// liblttng-ctl whether a daemon answers, and that reaches root's).
    pub fn start_sessiond_outside_groups(&mut self) -> i32 {
        // setpriv with no supplementary group, `env -i` clearing the rest.
        let mut command = crate::crasher::traced_command_as(self.uid, self.gid, "env");
        command
            .arg("-i")
            .arg(format!("HOME={}", self.home.display()))
            .args(SESSIOND);
        let pid = start_daemon(command, &self.run_dir(), &self.name);
        self.sessiond_pid = Some(pid);
        pid
    }

    /// Starts the user's own session daemon inside namespace `ns` of a
    /// test network (its consumer daemon then reaches that network: a
    /// relay daemon on the collector), and waits until it answers. The
    /// network's teardown kills it (declare the user before the network).
    pub fn start_sessiond_in(&self, network: &crate::netns::TestNetwork, ns: &str) -> i32 {
        let mut daemon = network.command(ns, "runuser");
        daemon
            .args(["-u", &self.name, "--", "env", "-i"])
            .arg(format!("HOME={}", self.home.display()))
            .args(SESSIOND);
        start_daemon(daemon, &self.run_dir(), &self.name)
    }

    /// Creates the snapshot-mode session `session` in the user's own
    /// daemon (snapshots written under `output`), tracing the crasher's
    /// events, and starts it.
    pub fn start_snapshot_session(&self, session: &str, output: &Path) {
        self.lttng_ok(&[
            "create",
            session,
            "--snapshot",
            "-o",
            output.to_str().expect("a UTF-8 path"),
        ]);
        self.lttng_ok(&[
            "enable-event",
            "-u",
            crate::sessions::CRASHER_EVENTS,
            "-s",
            session,
        ]);
        self.lttng_ok(&["start", session]);
    }

    /// The crasher run as this user (add its arguments), with the
    /// registration timeout a loaded machine needs (see [`crate::crasher`]).
    pub fn crasher_command(&self) -> Command {
        let mut command = Command::new("runuser");
        command
            .args(["-u", &self.name, "--", "env", "-i"])
            .arg(format!("HOME={}", self.home.display()))
            .arg("PATH=/usr/local/bin:/usr/bin:/bin")
            .arg(format!(
                "LTTNG_UST_REGISTER_TIMEOUT={}",
                crate::crasher::REGISTER_TIMEOUT_MS
            ))
            .arg(crate::crasher::crasher_path())
            .stdin(Stdio::null());
        command
    }

    fn stop_sessiond(&mut self) {
        let Some(pid) = self.sessiond_pid.take() else {
            return;
        };
        // SAFETY: signals to the daemon this test started, by its pid.
        unsafe {
            libc::kill(pid, libc::SIGCONT);
            libc::kill(pid, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        // SAFETY: as above; it did not stop in time.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        // Its consumer daemons exit with it; wait until the user owns no
        // process, or userdel refuses.
        let deadline = Instant::now() + Duration::from_secs(10);
        while user_has_processes(self.uid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn user_has_processes(uid: u32) -> bool {
    use std::os::unix::fs::MetadataExt;
    fs::read_dir("/proc")
        .map(|entries| {
            entries.flatten().any(|e| {
                e.file_name()
                    .to_str()
                    .is_some_and(|n| n.parse::<u32>().is_ok())
                    && e.metadata().is_ok_and(|m| m.uid() == uid)
            })
        })
        .unwrap_or(false)
}

impl Drop for TestUser {
    fn drop(&mut self) {
        self.stop_sessiond();
        let _ = Command::new("userdel")
            .args(["--remove", &self.name])
            .stderr(Stdio::null())
            .status();
    }
}

/// Ends what an earlier run left running as this test user (its session
/// daemon, whose presence makes a new one refuse to start): the user's lock
/// is ours, so no live test uses them. A process that does not die (one
/// stuck on a file system that never answers) is waited for a bounded time
/// only.
fn end_leftover_processes(uid: u32) {
    use crate::process::{process_id, processes, signal};
    let leftovers: Vec<_> = processes()
        .into_iter()
        .filter(|(_, _, _, owner)| *owner == uid)
        .map(|(id, ..)| id)
        .collect();
    for &(pid, _) in &leftovers {
        signal(pid, libc::SIGCONT);
        signal(pid, libc::SIGKILL);
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while leftovers
        .iter()
        .any(|&(pid, started)| process_id(pid) == Some((pid, started)))
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}
