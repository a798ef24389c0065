//! The handler's crash service (`lttng-coredump serve`) run for one test on
//! a socket of its own, and the kernel's core_pattern pointed at it through
//! [`CorePatternGuard`] (which restores core_pattern and core_pipe_limit,
//! also on a panic). The binary is the one cargo built for the test
//! ([`handler_binary!`](crate::handler_binary)).

use crate::core_pattern::CorePatternGuard;
use std::fs;
use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// How long the service may take to answer after it starts.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A socket path of its own, short (a Unix socket path has at most 107
/// bytes) and in a directory the service creates root-only.
pub fn unique_socket() -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    PathBuf::from(format!(
        "/run/lcds-{}-{}/s",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ))
}

/// `lttng-coredump serve` as a child, stopped with SIGKILL when dropped
/// (tests that check a clean stop send SIGTERM themselves).
pub struct Service {
    child: Option<Child>,
    pub socket: PathBuf,
    pub config: PathBuf,
    pub backup: PathBuf,
    /// The service's stderr, where it says what it does.
    pub log: PathBuf,
}

impl Service {
    /// Starts the service with `config_toml` (written next to the log in
    /// `dir`), the install backup `backup`, listening on `socket`, and
    /// waits until it answers there.
    pub fn start(
        built: &Path,
        dir: &Path,
        config_toml: &str,
        socket: &Path,
        backup: &Path,
    ) -> Service {
        Service::start_in(built, dir, config_toml, socket, backup, &[])
    }

    /// [`Service::start`] with `extra` arguments for `serve` (`--workers N`).
    pub fn start_in(
        built: &Path,
        dir: &Path,
        config_toml: &str,
        socket: &Path,
        backup: &Path,
        extra: &[&str],
    ) -> Service {
        let config = dir.join("config.toml");
        fs::write(&config, config_toml).unwrap();
        Service::start_with_args(
            built,
            &config,
            socket,
            backup,
            &dir.join("serve.log"),
            extra,
        )
    }

    /// Starts the service on an existing configuration.
    pub fn start_with(
        built: &Path,
        config: &Path,
        socket: &Path,
        backup: &Path,
        log: &Path,
    ) -> Service {
        Service::start_with_args(built, config, socket, backup, log, &[])
    }

    /// Starts `serve` with `extra` arguments too (`--hold`, `--workers N`).
    pub fn start_with_args(
        built: &Path,
        config: &Path,
        socket: &Path,
        backup: &Path,
        log: &Path,
        extra: &[&str],
    ) -> Service {
        Service::start_command(Command::new(built), config, socket, backup, log, extra)
    }

    /// [`Service::start_with_args`] with the handler run by `command` (the
    /// built handler, or a program that runs it, such as `ip netns exec NS
    /// HANDLER` for a service inside a test network's host).
    pub fn start_command(
        mut command: Command,
        config: &Path,
        socket: &Path,
        backup: &Path,
        log: &Path,
        extra: &[&str],
    ) -> Service {
        let log_file = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap();
        let child = command
            .arg("serve")
            .arg("--socket")
            .arg(socket)
            .arg("--config")
            .arg(config)
            .arg("--backup")
            .arg(backup)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .expect("starting lttng-coredump serve");
        let mut service = Service {
            child: Some(child),
            socket: socket.to_path_buf(),
            config: config.to_path_buf(),
            backup: backup.to_path_buf(),
            log: log.to_path_buf(),
        };
        let deadline = Instant::now() + START_TIMEOUT;
        while !service.answers() {
            if let Some(status) = service.child.as_mut().unwrap().try_wait().unwrap() {
                panic!(
                    "the service ended ({status}) before answering: {}",
                    service.log_text()
                );
            }
            assert!(
                Instant::now() < deadline,
                "the service did not answer on {} within {START_TIMEOUT:?}: {}",
                socket.display(),
                service.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        service
    }

    /// Whether the service answers a client with its greeting.
    pub fn answers(&self) -> bool {
        let Ok(mut stream) = std::os::unix::net::UnixStream::connect(&self.socket) else {
            return false;
        };
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer);
        answer.starts_with("lttng-coredump serve")
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// Sends `signal` and waits (bounded) for the service to end.
    pub fn signal_and_wait(&mut self, signal: i32) -> ExitStatus {
        let mut child = self.child.take().expect("still running");
        // SAFETY: kill(2) on our own child's pid, which we have not reaped.
        let ret = unsafe { libc::kill(child.id() as i32, signal) };
        assert_eq!(ret, 0, "kill: {}", std::io::Error::last_os_error());
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the service did not end after signal {signal}: {}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Some(dir) = self.socket.parent() {
            let _ = fs::remove_dir_all(dir);
        }
    }
}

/// The service listening, and core_pattern pointing at it with `prefix`
/// (`@@` or `@`) for one test; core_pattern comes back when dropped, then
/// the service is killed.
pub struct SocketHandler {
    // Dropped first: core_pattern is restored before the service goes.
    guard: CorePatternGuard,
    pub service: Service,
}

impl SocketHandler {
    pub fn new(built: &Path, dir: &Path, config_toml: &str, prefix: &str) -> SocketHandler {
        SocketHandler::with_args(built, dir, config_toml, prefix, &[])
    }

    /// [`SocketHandler::new`] with `extra` arguments for `serve`
    /// (`--workers N`).
    pub fn with_args(
        built: &Path,
        dir: &Path,
        config_toml: &str,
        prefix: &str,
        extra: &[&str],
    ) -> SocketHandler {
        let guard = CorePatternGuard::acquire();
        let socket = unique_socket();
        let service = Service::start_in(
            built,
            dir,
            config_toml,
            &socket,
            &dir.join("no-install.bkp"),
            extra,
        );
        // Non-zero: `@` then holds the process until the service is done.
        guard.set_pipe_limit(16);
        guard.set(&format!("{prefix}{}", socket.display()));
        SocketHandler { guard, service }
    }

    pub fn guard(&self) -> &CorePatternGuard {
        &self.guard
    }
}

/// Connections waiting in the listen queue of `socket` (what `ss` calls
/// the listening socket's Recv-Q).
pub fn queued_connections(socket: &Path) -> u32 {
    let output = Command::new("ss")
        .args(["-xlnH", "src"])
        .arg(socket)
        .output()
        .expect("running ss (apt-get install -y iproute2)");
    let text = String::from_utf8_lossy(&output.stdout);
    text.split_whitespace()
        .nth(2)
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// Whether a wait status says the kernel dumped a core (WCOREDUMP).
pub fn core_dumped(status: &ExitStatus) -> bool {
    status.core_dumped()
}
