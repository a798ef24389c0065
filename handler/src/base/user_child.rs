//! A child-process runner for programs exec'd as a crash's user: whatever
//! root's tools do to a user's files (read their snapshots with
//! babeltrace2, debug their program's core with gdb, search their trees
//! for a trace's metadata) is done by such a child, never by root. Usable
//! by any command; when the caller is the crash's owner (or no identity
//! is to be taken) the child keeps the caller's ids and the rest holds.
//!
//! The child is this binary executed again (`/proc/self/exe`) with
//! [`TRAMPOLINE`] first, in a clean environment, and, before anything
//! else, being a new single-threaded process:
//! - closes every descriptor but 0, 1 and 2 (one its parent inherited
//!   without close-on-exec, a terminal of root's, does not get through);
//! - starts a new session (`setsid`): no controlling terminal, its own
//!   process group; on a terminal of its own (below) makes that terminal
//!   its controlling one;
//! - takes the user's groups, gid and uid, in that order, and checks them
//!   in `/proc/self/status` (real, effective, saved and file-system ids,
//!   and the groups), and that root cannot be taken back;
//! - sets `no_new_privs`, is not dumpable until it execs, dies with its
//!   parent (`PR_SET_PDEATHSIG`), and moves to `/`;
//! - execs the program, or runs one of this binary's own user-side tasks
//!   (a function registered with [`trampoline`]).
//!
//! Root only relays bytes. With pipes ([`UserCommand::spawn`]): the
//! child's standard output is read under a wall-time deadline and a byte
//! bound, its standard error kept (bounded); at the deadline, past the
//! bound, or once it exits, its whole process group is SIGKILLed, and it
//! is reaped within [`REAP_GRACE`] or left behind (a wait the kernel does
//! not interrupt, on a user's FUSE file system, survives SIGKILL). On a
//! terminal ([`UserCommand::run_on_terminal`]), as util-linux `su --pty`
//! does: a new pseudo-terminal whose slave is the child's only terminal,
//! root's terminal in raw mode (restored on exit and on SIGTERM, SIGHUP,
//! SIGINT and SIGQUIT), its size passed on (SIGWINCH), bytes relayed both
//! ways; the child never holds a descriptor of root's terminal.

use anyhow::{anyhow, bail, Context, Result};
use rustix::event::{poll, PollFd, PollFlags};
use rustix::process::{Pid, PidfdFlags, Signal};
use rustix::termios::{OptionalActions, Termios};
use std::ffi::{OsStr, OsString};
use std::io::{self, Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Child, ChildStderr, ChildStdout, Command, ExitCode, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A user-side task: its name, and what it runs (given its arguments) once
/// the trampoline has become the user.
pub type Task = (&'static str, fn(&[OsString]) -> ExitCode);

/// The first argument that makes this binary the child's trampoline.
pub const TRAMPOLINE: &str = "--user-child-trampoline";
/// How long a killed child is waited for before it is left behind.
pub const REAP_GRACE: Duration = Duration::from_millis(500);
/// Exit status of a trampoline that could not take the identity or run
/// the program (it says why on its standard error).
pub const EXIT_SETUP_FAILED: u8 = 126;
/// Standard error kept from a child (its last bytes).
const MAX_ERRORS: usize = 64 * 1024;
/// The `PATH` the child gets.
const SAFE_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// Who a child acts as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Who {
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups, the primary one included.
    pub groups: Vec<u32>,
    pub name: String,
    pub home: PathBuf,
}

impl Who {
    /// The user with `uid`, from the user database (with every group of
    /// theirs); a uid nobody has (a user deleted since the crash) gets
    /// `fallback_gid`, no other group, and `/` as home.
    pub fn user(uid: u32, fallback_gid: u32) -> Who {
        match lttng_coredump_engine::identity::Identity::of_user(uid) {
            Ok(id) => Who::of(&id),
            Err(_) => Who {
                uid,
                gid: fallback_gid,
                groups: vec![fallback_gid],
                name: uid.to_string(),
                home: PathBuf::from("/"),
            },
        }
    }

    /// The user `id` names (the engine's identity, read from the user
    /// database).
    pub fn of(id: &lttng_coredump_engine::identity::Identity) -> Who {
        Who {
            uid: id.uid(),
            gid: id.gid(),
            groups: id.groups().to_vec(),
            name: id.user_name().to_string(),
            home: id.home().to_path_buf(),
        }
    }

    /// `user NAME (uid UID)`, for messages.
    pub fn describe(&self) -> String {
        format!("user {} (uid {})", self.name, self.uid)
    }
}

/// Who a tool acts as over the files of the user `owner` (a crash's uid,
/// with `gid`): that user when the caller is root and the owner is not;
/// `None` (the caller's own ids) otherwise: root's own crash, or a caller
/// who cannot take another identity anyway.
pub fn acting_as(owner: Option<u64>, gid: Option<u64>) -> Option<Who> {
    let owner = u32::try_from(owner?).ok()?;
    if owner == 0 || !rustix::process::geteuid().is_root() {
        return None;
    }
    let gid = gid.and_then(|g| u32::try_from(g).ok()).unwrap_or(65534);
    Some(Who::user(owner, gid))
}

/// What the child is given on its standard input.
pub enum Input {
    Null,
    /// Written by a thread of the caller's (a child that does not read
    /// them blocks only that thread, until the child is killed).
    Bytes(Vec<u8>),
    /// A file the caller opened (a core only root may open by path, read
    /// through the descriptor it is handed: nothing else of root's).
    File(std::fs::File),
    /// A descriptor of the caller's (one end of a socket pair, to pass it
    /// more descriptors after the trampoline closed every other one).
    Fd(OwnedFd),
}

/// A program (or a user-side task of this binary) to run as [`Who`].
pub struct UserCommand {
    who: Option<Who>,
    task: bool,
    /// The program, or the task's name, then the arguments.
    argv: Vec<OsString>,
    envs: Vec<(OsString, OsString)>,
    /// No `PATH`, `HOME`, user name or locale either.
    empty_env: bool,
    deadline: Duration,
    max_output: u64,
}

impl UserCommand {
    /// `program` (looked up in a fixed `PATH`), run as `who` (`None`: the
    /// caller's ids).
    pub fn program(who: Option<Who>, program: impl Into<OsString>) -> UserCommand {
        UserCommand {
            who,
            task: false,
            argv: vec![program.into()],
            envs: Vec::new(),
            empty_env: false,
            deadline: Duration::from_secs(300),
            max_output: 1 << 30,
        }
    }

    /// This binary's user-side task `name` (see [`trampoline`]).
    pub fn task(who: Option<Who>, name: &str) -> UserCommand {
        UserCommand {
            task: true,
            ..UserCommand::program(who, name)
        }
    }

    pub fn arg(mut self, arg: impl Into<OsString>) -> UserCommand {
        self.argv.push(arg.into());
        self
    }

    pub fn args<I: IntoIterator<Item = S>, S: Into<OsString>>(mut self, args: I) -> UserCommand {
        self.argv.extend(args.into_iter().map(Into::into));
        self
    }

    /// Adds to the child's (otherwise clean) environment.
    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> UserCommand {
        self.envs.push((key.into(), value.into()));
        self
    }

    /// An empty environment: not even the `PATH`, `HOME`, user name and
    /// locale a child gets otherwise (for a task of this binary that needs
    /// none of them).
    pub fn empty_environment(mut self) -> UserCommand {
        self.empty_env = true;
        self
    }

    /// The wall time the child may take (default 300 s).
    pub fn deadline(mut self, deadline: Duration) -> UserCommand {
        self.deadline = deadline;
        self
    }

    /// The bytes of standard output read at most (default 1 GiB).
    pub fn max_output(mut self, bytes: u64) -> UserCommand {
        self.max_output = bytes;
        self
    }

    /// `PROGRAM as user NAME (uid UID)`, for messages.
    fn describe(&self) -> String {
        let what = self.argv[0].to_string_lossy();
        match &self.who {
            Some(who) => format!("{what} (as {})", who.describe()),
            None => what.into_owned(),
        }
    }

    fn command(&self, terminal: bool) -> Command {
        let mut command = Command::new("/proc/self/exe");
        let ids = match &self.who {
            Some(who) => format!(
                "{}:{}:{}",
                who.uid,
                who.gid,
                who.groups
                    .iter()
                    .map(u32::to_string)
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            None => "-".into(),
        };
        command
            .arg(TRAMPOLINE)
            .arg(std::process::id().to_string())
            .arg(ids)
            .arg(if terminal { "terminal" } else { "-" })
            .arg(if self.task { "task" } else { "exec" })
            .args(&self.argv)
            .env_clear();
        if self.empty_env {
            return command;
        }
        command.env("PATH", SAFE_PATH);
        let (home, name) = match &self.who {
            Some(who) => (who.home.clone().into_os_string(), OsString::from(&who.name)),
            None => (
                std::env::var_os("HOME").unwrap_or_else(|| "/".into()),
                std::env::var_os("USER").unwrap_or_default(),
            ),
        };
        command
            .env("HOME", home)
            .env("USER", &name)
            .env("LOGNAME", &name);
        for key in ["LANG", "LC_ALL", "LC_CTYPE", "LC_MESSAGES", "TZ"] {
            if let Some(value) = std::env::var_os(key) {
                command.env(key, value);
            }
        }
        if terminal {
            command.env(
                "TERM",
                std::env::var_os("TERM").unwrap_or_else(|| "vt100".into()),
            );
        }
        for (key, value) in &self.envs {
            command.env(key, value);
        }
        command
    }

    /// Starts the child with pipes: its standard output is read from the
    /// returned [`Running`] (under the deadline and the byte bound), its
    /// standard error kept.
    pub fn spawn(self, input: Input) -> Result<Running> {
        let what = self.describe();
        let mut command = self.command(false);
        let (stdin, bytes) = match input {
            Input::Null => (Stdio::null(), None),
            Input::Bytes(bytes) => (Stdio::piped(), Some(bytes)),
            Input::File(file) => (Stdio::from(file), None),
            Input::Fd(fd) => (Stdio::from(fd), None),
        };
        command
            .stdin(stdin)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let started = Instant::now();
        let mut child = command
            .spawn()
            .with_context(|| format!("cannot start {what}"))?;
        // The caller's descriptor is the child's alone now.
        drop(command);
        let pidfd = pidfd_of(&child);
        if let (Some(bytes), Some(mut stdin)) = (bytes, child.stdin.take()) {
            std::thread::spawn(move || {
                let _ = stdin.write_all(&bytes);
            });
        }
        let stdout = child.stdout.take().expect("piped");
        let stderr = child.stderr.take().expect("piped");
        Ok(Running {
            child,
            pidfd,
            stdout: Some(stdout),
            stderr: Some(stderr),
            errors: Vec::new(),
            errors_dropped: false,
            started,
            deadline: self.deadline,
            max_output: self.max_output,
            read: 0,
            what,
            failure: None,
        })
    }

    /// Runs the child to its end on a pseudo-terminal of its own, relayed
    /// to and from this process's terminal (its standard input, which must
    /// be one), as `su --pty` does; returns how it ended.
    pub fn run_on_terminal(self) -> Result<ExitStatus> {
        let what = self.describe();
        let terminal = rustix::stdio::stdin();
        if !rustix::termios::isatty(terminal) {
            bail!("{what}: standard input is not a terminal");
        }
        let pty = Pty::open().context("cannot allocate a pseudo-terminal")?;
        if let Ok(settings) = rustix::termios::tcgetattr(terminal) {
            let _ = rustix::termios::tcsetattr(&pty.slave, OptionalActions::Now, &settings);
        }
        if let Ok(size) = rustix::termios::tcgetwinsize(terminal) {
            let _ = rustix::termios::tcsetwinsize(&pty.master, size);
        }
        let mut command = self.command(true);
        command
            .stdin(pty.slave.try_clone()?)
            .stdout(pty.slave.try_clone()?)
            .stderr(pty.slave.try_clone()?);
        let started = Instant::now();
        let child = command
            .spawn()
            .with_context(|| format!("cannot start {what}"))?;
        // The parent keeps no descriptor of the slave: the relay then sees
        // the end of the child's side.
        drop(command);
        let Pty { master, slave } = pty;
        drop(slave);
        let pidfd = pidfd_of(&child);
        let mut signals = Signals::register()?;
        let raw = RawTerminal::enter()?;
        let outcome = relay(
            &master,
            pidfd.as_ref(),
            &mut signals,
            &raw,
            started,
            self.deadline,
        );
        let pgid = child.id();
        kill_group(pgid);
        let status = reap_within(child, pidfd.as_ref(), REAP_GRACE);
        drop(raw);
        drop(signals);
        match outcome {
            Relayed::Ended => status.ok_or_else(|| anyhow!("{what} could not be reaped")),
            Relayed::TimedOut => bail!(
                "{what} did not end within {} s: killed",
                self.deadline.as_secs()
            ),
            Relayed::Signalled(signal) => {
                bail!("interrupted by signal {signal}: {what} killed")
            }
            Relayed::Failed(err) => Err(err).with_context(|| format!("relaying {what}")),
        }
    }
}

/// A pidfd of `child`, to poll for its end (kernels without pidfds: none,
/// and the child is polled by `try_wait`).
fn pidfd_of(child: &Child) -> Option<OwnedFd> {
    let pid = Pid::from_raw(i32::try_from(child.id()).ok()?)?;
    rustix::process::pidfd_open(pid, PidfdFlags::empty()).ok()
}

/// SIGKILLs the process group `pgid` (the child's: it is its session's
/// leader). The leader is not reaped yet, so the group cannot be another.
fn kill_group(pgid: u32) {
    if let Some(pid) = i32::try_from(pgid).ok().and_then(Pid::from_raw) {
        let _ = rustix::process::kill_process_group(pid, Signal::KILL);
    }
}

/// Waits at most `grace` for `child` to end, then reaps it; `None` (and
/// the child left behind) when it has not ended.
fn reap_within(mut child: Child, pidfd: Option<&OwnedFd>, grace: Duration) -> Option<ExitStatus> {
    let until = Instant::now() + grace;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        let left = until.checked_duration_since(Instant::now())?;
        match pidfd {
            Some(fd) => {
                let mut fds = [PollFd::new(fd, PollFlags::IN)];
                let _ = poll(&mut fds, Some(&timespec(left)));
            }
            None => std::thread::sleep(left.min(Duration::from_millis(10))),
        }
    }
}

fn timespec(duration: Duration) -> rustix::event::Timespec {
    rustix::event::Timespec {
        tv_sec: duration.as_secs().min(i64::MAX as u64) as i64,
        tv_nsec: i64::from(duration.subsec_nanos()),
    }
}

/// A child started with pipes. Reading it reads the child's standard
/// output, within the deadline and the byte bound (an error once either
/// is passed: the child's process group is then killed).
pub struct Running {
    child: Child,
    pidfd: Option<OwnedFd>,
    stdout: Option<ChildStdout>,
    stderr: Option<ChildStderr>,
    errors: Vec<u8>,
    errors_dropped: bool,
    started: Instant,
    deadline: Duration,
    max_output: u64,
    read: u64,
    what: String,
    /// Why the child was killed, when it was.
    failure: Option<String>,
}

/// How a child run with pipes ended.
#[derive(Debug)]
pub struct Finished {
    pub status: ExitStatus,
    /// Its standard error (the last [`MAX_ERRORS`] bytes), as text.
    pub errors: String,
}

impl Finished {
    /// The last non-empty line of its standard error.
    pub fn last_error_line(&self) -> Option<&str> {
        self.errors
            .lines()
            .rfind(|l| !l.trim().is_empty())
            .map(str::trim)
    }
}

impl Running {
    fn left(&self) -> Option<Duration> {
        self.deadline.checked_sub(self.started.elapsed())
    }

    fn fail(&mut self, why: String) -> io::Error {
        kill_group(self.child.id());
        self.stdout = None;
        self.stderr = None;
        self.failure = Some(why.clone());
        io::Error::new(io::ErrorKind::TimedOut, why)
    }

    fn keep_errors(&mut self, bytes: &[u8]) {
        self.errors.extend_from_slice(bytes);
        if self.errors.len() > MAX_ERRORS {
            let cut = self.errors.len() - MAX_ERRORS;
            self.errors.drain(..cut);
            self.errors_dropped = true;
        }
    }

    /// Waits (within the deadline) until standard output or standard error
    /// has something, reads standard error's; true when standard output
    /// is readable (or at its end).
    fn wait_for_output(&mut self) -> io::Result<bool> {
        loop {
            let Some(left) = self.left() else {
                let why = format!(
                    "{} did not end within {} s: killed",
                    self.what,
                    self.deadline.as_secs()
                );
                return Err(self.fail(why));
            };
            let (out_ready, err_ready) = {
                let mut fds = Vec::with_capacity(2);
                if let Some(out) = &self.stdout {
                    fds.push(PollFd::new(out, PollFlags::IN));
                }
                if let Some(err) = &self.stderr {
                    fds.push(PollFd::new(err, PollFlags::IN));
                }
                if fds.is_empty() {
                    return Ok(true);
                }
                match poll(&mut fds, Some(&timespec(left))) {
                    Ok(_) => {}
                    Err(rustix::io::Errno::INTR) => continue,
                    Err(err) => return Err(err.into()),
                }
                let ready = |fd: &PollFd| !fd.revents().is_empty();
                let mut it = fds.iter();
                let out = self.stdout.as_ref().map(|_| ready(it.next().unwrap()));
                let err = self.stderr.as_ref().map(|_| ready(it.next().unwrap()));
                (out.unwrap_or(false), err.unwrap_or(false))
            };
            if err_ready {
                let mut chunk = [0u8; 8192];
                let n = match self.stderr.as_mut().map(|e| e.read(&mut chunk)) {
                    Some(Ok(n)) => n,
                    Some(Err(err)) if err.kind() == io::ErrorKind::Interrupted => continue,
                    _ => 0,
                };
                if n == 0 {
                    self.stderr = None;
                } else {
                    self.keep_errors(&chunk[..n]);
                }
            }
            if out_ready || self.stdout.is_none() {
                return Ok(true);
            }
        }
    }

    /// Reads what is left, kills the child's process group (a program it
    /// left running, too), reaps it within [`REAP_GRACE`], and says how it
    /// ended; an error when it was killed for its deadline or its output.
    pub fn finish(mut self) -> Result<Finished> {
        let mut sink = [0u8; 16 * 1024];
        // Its output is read to its end, or until it exits (a program it
        // started may hold the pipes open after it).
        while self.failure.is_none() && (self.stdout.is_some() || self.stderr.is_some()) {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            match self.read(&mut sink) {
                Ok(0) if self.stderr.is_none() => break,
                Ok(_) => {}
                Err(_) => break,
            }
        }
        // The child itself, within what is left of the deadline.
        if self.failure.is_none() {
            loop {
                if let Ok(Some(_)) = self.child.try_wait() {
                    break;
                }
                let Some(left) = self.left() else {
                    let why = format!(
                        "{} did not end within {} s: killed",
                        self.what,
                        self.deadline.as_secs()
                    );
                    self.fail(why);
                    break;
                };
                match &self.pidfd {
                    Some(fd) => {
                        let mut fds = [PollFd::new(fd, PollFlags::IN)];
                        let _ = poll(&mut fds, Some(&timespec(left)));
                    }
                    None => std::thread::sleep(left.min(Duration::from_millis(10))),
                }
            }
        }
        // What it wrote on standard error before it ended.
        while let Some(err) = self.stderr.as_mut() {
            let mut fds = [PollFd::new(&*err, PollFlags::IN)];
            if !matches!(poll(&mut fds, Some(&timespec(Duration::ZERO))), Ok(1)) {
                break;
            }
            let mut chunk = [0u8; 8192];
            match err.read(&mut chunk) {
                Ok(n) if n > 0 => self.keep_errors(&chunk[..n]),
                _ => self.stderr = None,
            }
        }
        let pgid = self.child.id();
        kill_group(pgid);
        let what = self.what.clone();
        let failure = self.failure.take();
        let mut errors = String::from_utf8_lossy(&self.errors).into_owned();
        if self.errors_dropped {
            errors.insert_str(0, "[...]\n");
        }
        let pidfd = self.pidfd.take();
        let status = reap_within(self.child, pidfd.as_ref(), REAP_GRACE);
        if let Some(why) = failure {
            let left = if status.is_none() {
                " (it does not die: left behind)"
            } else {
                ""
            };
            bail!("{why}{left}");
        }
        let status = status.ok_or_else(|| anyhow!("{what} could not be reaped"))?;
        Ok(Finished { status, errors })
    }
}

impl Read for Running {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(why) = &self.failure {
            return Err(io::Error::new(io::ErrorKind::TimedOut, why.clone()));
        }
        loop {
            if self.stdout.is_none() {
                return Ok(0);
            }
            self.wait_for_output()?;
            let Some(out) = self.stdout.as_mut() else {
                return Ok(0);
            };
            let want = buf
                .len()
                .min(usize::try_from(self.max_output + 1 - self.read).unwrap_or(usize::MAX));
            match out.read(&mut buf[..want]) {
                Ok(0) => {
                    self.stdout = None;
                    return Ok(0);
                }
                Ok(n) => {
                    self.read += n as u64;
                    if self.read > self.max_output {
                        let why = format!(
                            "{} wrote more than {} bytes: killed",
                            self.what, self.max_output
                        );
                        return Err(self.fail(why));
                    }
                    return Ok(n);
                }
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) => return Err(err),
            }
        }
    }
}

/// A new pseudo-terminal: the master stays with the relay, the slave goes
/// to the child.
struct Pty {
    master: OwnedFd,
    slave: std::fs::File,
}

impl Pty {
    fn open() -> io::Result<Pty> {
        use rustix::pty::OpenptFlags;
        let master =
            rustix::pty::openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC)?;
        rustix::pty::grantpt(&master)?;
        rustix::pty::unlockpt(&master)?;
        let name = rustix::pty::ptsname(&master, Vec::new())?;
        let slave = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(rustix::fs::OFlags::NOCTTY.bits() as i32)
            .open(OsStr::from_bytes(name.as_bytes()))?;
        rustix::io::ioctl_fionbio(&master, true)?;
        Ok(Pty { master, slave })
    }
}

/// This process's terminal (standard input) in raw mode while it lives;
/// put back as it was when dropped.
struct RawTerminal {
    saved: Termios,
}

impl RawTerminal {
    fn enter() -> Result<RawTerminal> {
        let terminal = rustix::stdio::stdin();
        let saved = rustix::termios::tcgetattr(terminal).context("reading the terminal's mode")?;
        let raw = RawTerminal { saved };
        raw.apply()?;
        Ok(raw)
    }

    /// (Again, after SIGCONT: a shell may have reset the terminal.)
    fn apply(&self) -> Result<()> {
        let mut raw = self.saved.clone();
        raw.make_raw();
        rustix::termios::tcsetattr(rustix::stdio::stdin(), OptionalActions::Flush, &raw)
            .context("putting the terminal in raw mode")
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        let _ =
            rustix::termios::tcsetattr(rustix::stdio::stdin(), OptionalActions::Flush, &self.saved);
    }
}

/// The signals the relay hears, through a self-pipe it polls.
struct Signals {
    wake: std::os::unix::net::UnixStream,
    /// (signal, flag set when it came, registration)
    flags: Vec<(Signal, Arc<AtomicBool>, signal_hook::SigId)>,
}

impl Signals {
    const HEARD: [Signal; 6] = [
        Signal::WINCH,
        Signal::CONT,
        Signal::TERM,
        Signal::HUP,
        Signal::INT,
        Signal::QUIT,
    ];

    fn register() -> Result<Signals> {
        let (wake, write) = std::os::unix::net::UnixStream::pair()?;
        wake.set_nonblocking(true)?;
        let mut flags = Vec::new();
        for signal in Self::HEARD {
            let flag = Arc::new(AtomicBool::new(false));
            let id = signal_hook::flag::register(signal.as_raw(), Arc::clone(&flag))
                .context("setting a signal handler")?;
            flags.push((signal, flag, id));
            let id = signal_hook::low_level::pipe::register(signal.as_raw(), write.try_clone()?)
                .context("setting a signal handler")?;
            flags.push((signal, Arc::new(AtomicBool::new(false)), id));
        }
        Ok(Signals { wake, flags })
    }

    /// The signals that came since the last call.
    fn take(&mut self) -> Vec<Signal> {
        let mut drain = [0u8; 64];
        while matches!(self.wake.read(&mut drain), Ok(n) if n > 0) {}
        self.flags
            .iter()
            .filter(|(_, flag, _)| flag.swap(false, Ordering::SeqCst))
            .map(|(signal, _, _)| *signal)
            .collect()
    }
}

impl Drop for Signals {
    fn drop(&mut self) {
        for (_, _, id) in self.flags.drain(..) {
            signal_hook::low_level::unregister(id);
        }
    }
}

enum Relayed {
    Ended,
    TimedOut,
    Signalled(i32),
    Failed(io::Error),
}

/// Input from root's terminal kept for a child that does not read it;
/// past this, more is dropped (root's terminal never waits on the child).
const MAX_PENDING_INPUT: usize = 64 * 1024;

/// Relays root's terminal and the pseudo-terminal's master until the
/// child ends, the deadline passes or a terminating signal comes.
fn relay(
    master: &OwnedFd,
    pidfd: Option<&OwnedFd>,
    signals: &mut Signals,
    raw: &RawTerminal,
    started: Instant,
    deadline: Duration,
) -> Relayed {
    let terminal = rustix::stdio::stdin();
    let mut out = io::stdout().lock();
    let mut pending: Vec<u8> = Vec::new();
    let mut terminal_open = true;
    let mut chunk = [0u8; 16 * 1024];
    loop {
        let Some(left) = deadline.checked_sub(started.elapsed()) else {
            return Relayed::TimedOut;
        };
        let mut master_events = PollFlags::IN;
        if !pending.is_empty() {
            master_events |= PollFlags::OUT;
        }
        let mut fds = vec![
            PollFd::new(master, master_events),
            PollFd::new(&signals.wake, PollFlags::IN),
        ];
        if terminal_open {
            fds.push(PollFd::new(&terminal, PollFlags::IN));
        }
        if let Some(fd) = pidfd {
            fds.push(PollFd::new(fd, PollFlags::IN));
        }
        // Without a pidfd the child's end shows as the master's hang-up.
        match poll(&mut fds, Some(&timespec(left.min(Duration::from_secs(1))))) {
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(err) => return Relayed::Failed(err.into()),
        }
        let master_ready = fds[0].revents();
        let terminal_ready = terminal_open && !fds[2].revents().is_empty();
        let child_ended = pidfd.is_some() && !fds[fds.len() - 1].revents().is_empty();
        drop(fds);
        for signal in signals.take() {
            match signal {
                Signal::WINCH => {
                    if let Ok(size) = rustix::termios::tcgetwinsize(terminal) {
                        let _ = rustix::termios::tcsetwinsize(master, size);
                    }
                }
                Signal::CONT => {
                    let _ = raw.apply();
                }
                other => return Relayed::Signalled(other.as_raw()),
            }
        }
        // The child's output, to root's terminal.
        if master_ready.intersects(PollFlags::IN | PollFlags::HUP | PollFlags::ERR) {
            match rustix::io::read(master, &mut chunk) {
                Ok(0) => return Relayed::Ended,
                Ok(n) => {
                    if out
                        .write_all(&chunk[..n])
                        .and_then(|()| out.flush())
                        .is_err()
                    {
                        return Relayed::Ended;
                    }
                }
                Err(rustix::io::Errno::AGAIN) | Err(rustix::io::Errno::INTR) => {}
                // EIO: every descriptor of the slave is closed.
                Err(_) => return Relayed::Ended,
            }
        }
        // Root's typing, to the child.
        if terminal_ready {
            match rustix::io::read(terminal, &mut chunk) {
                Ok(0) => terminal_open = false,
                Ok(n) => {
                    let room = MAX_PENDING_INPUT.saturating_sub(pending.len());
                    pending.extend_from_slice(&chunk[..n.min(room)]);
                }
                Err(rustix::io::Errno::AGAIN) | Err(rustix::io::Errno::INTR) => {}
                Err(_) => terminal_open = false,
            }
        }
        if !pending.is_empty() {
            match rustix::io::write(master, &pending) {
                Ok(n) => {
                    pending.drain(..n);
                }
                Err(rustix::io::Errno::AGAIN) | Err(rustix::io::Errno::INTR) => {}
                Err(_) => pending.clear(),
            }
        }
        if child_ended {
            // What it wrote last is still in the master: relayed (the
            // master is non-blocking) before the relay ends.
            loop {
                match rustix::io::read(master, &mut chunk) {
                    Ok(n) if n > 0 => {
                        let _ = out.write_all(&chunk[..n]);
                    }
                    _ => break,
                }
            }
            let _ = out.flush();
            return Relayed::Ended;
        }
    }
}

/// Runs the trampoline when this process is one (its first argument is
/// [`TRAMPOLINE`]): call it first thing in `main`; `None` otherwise.
/// `tasks` are the user-side tasks a [`UserCommand::task`] may name.
pub fn trampoline(tasks: &[Task]) -> Option<ExitCode> {
    let args: Vec<OsString> = std::env::args_os().collect();
    if args.get(1).map(OsString::as_os_str) != Some(OsStr::new(TRAMPOLINE)) {
        return None;
    }
    Some(match become_and_run(&args[2..], tasks) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("lttng-coredump: {err:#}");
            ExitCode::from(EXIT_SETUP_FAILED)
        }
    })
}

/// The ids `UID:GID:G1,G2,...` given to the trampoline.
fn parse_ids(text: &str) -> Result<Option<(u32, u32, Vec<u32>)>> {
    if text == "-" {
        return Ok(None);
    }
    let mut parts = text.splitn(3, ':');
    let mut number = |what: &str| -> Result<u32> {
        parts
            .next()
            .and_then(|p| p.parse().ok())
            .ok_or_else(|| anyhow!("bad {what} in {text:?}"))
    };
    let uid = number("uid")?;
    let gid = number("gid")?;
    let groups = match parts.next() {
        Some("") | None => Vec::new(),
        Some(list) => list
            .split(',')
            .map(|g| g.parse().map_err(|_| anyhow!("bad group in {text:?}")))
            .collect::<Result<_>>()?,
    };
    Ok(Some((uid, gid, groups)))
}

/// A line `NAME:\tA\tB...` of `/proc/self/status`, as numbers.
fn status_ids(status: &str, name: &str) -> Option<Vec<u32>> {
    let line = status.lines().find(|l| l.starts_with(name))?;
    line[name.len()..]
        .split_whitespace()
        .map(|n| n.parse().ok())
        .collect()
}

/// Takes the ids `uid`, `gid` and `groups` for good (real, effective and
/// saved), checked in `/proc/self/status`, and checks that root cannot be
/// taken back. The kernel's calls change the calling thread only: the
/// caller must be single-threaded ([`single_threaded`]).
pub fn become_ids(uid: u32, gid: u32, groups: &[u32]) -> Result<()> {
    use rustix::process::{Gid, Uid};
    use rustix::thread::{set_thread_groups, set_thread_res_gid, set_thread_res_uid};
    let gids: Vec<Gid> = groups.iter().map(|&g| Gid::from_raw(g)).collect();
    set_thread_groups(&gids).context("setgroups")?;
    let (g, u) = (Gid::from_raw(gid), Uid::from_raw(uid));
    set_thread_res_gid(g, g, g).context("setresgid")?;
    set_thread_res_uid(u, u, u).context("setresuid")?;
    let status =
        std::fs::read_to_string("/proc/self/status").context("reading /proc/self/status")?;
    let mut want_groups = groups.to_vec();
    want_groups.sort_unstable();
    want_groups.dedup();
    let mut have_groups = status_ids(&status, "Groups:").unwrap_or_default();
    have_groups.sort_unstable();
    if status_ids(&status, "Uid:") != Some(vec![uid; 4])
        || status_ids(&status, "Gid:") != Some(vec![gid; 4])
        || have_groups != want_groups
    {
        bail!("the ids of uid {uid} did not take");
    }
    if uid != 0 && set_thread_res_uid(Uid::ROOT, Uid::ROOT, Uid::ROOT).is_ok() {
        bail!("root could be taken back after dropping it");
    }
    Ok(())
}

/// Whether this process has one thread (what [`become_ids`] needs).
pub fn single_threaded() -> Result<bool> {
    let status =
        std::fs::read_to_string("/proc/self/status").context("reading /proc/self/status")?;
    Ok(status_ids(&status, "Threads:").as_deref() == Some(&[1]))
}

fn become_and_run(args: &[OsString], tasks: &[Task]) -> Result<ExitCode> {
    let arg = |i: usize| -> Result<&str> {
        args.get(i)
            .and_then(|a| a.to_str())
            .ok_or_else(|| anyhow!("the trampoline's argument {i} is missing"))
    };
    // Nothing of this process is open yet: what is there above 2 came
    // from the parent without close-on-exec.
    lttng_coredump_engine::identity::close_descriptors_from_3()
        .context("closing inherited descriptors")?;
    let parent: u32 = arg(0)?.parse().context("bad parent pid")?;
    let ids = parse_ids(arg(1)?)?;
    let on_terminal = arg(2)? == "terminal";
    let kind = arg(3)?;
    let rest = &args[4..];
    let status =
        std::fs::read_to_string("/proc/self/status").context("reading /proc/self/status")?;
    // The ids below are changed for the calling thread only (the kernel's
    // own calls): this must be the only one.
    if status_ids(&status, "Threads:").as_deref() != Some(&[1]) {
        bail!("the trampoline is not single-threaded");
    }
    rustix::process::setsid().context("starting a new session")?;
    if on_terminal {
        rustix::process::ioctl_tiocsctty(rustix::stdio::stdin())
            .context("taking the new terminal as the controlling one")?;
    }
    if let Some((uid, gid, groups)) = ids {
        become_ids(uid, gid, &groups)?;
    }
    rustix::thread::set_no_new_privs(true).context("no_new_privs")?;
    rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable)
        .context("PR_SET_DUMPABLE")?;
    rustix::process::set_parent_process_death_signal(Some(Signal::KILL))
        .context("PR_SET_PDEATHSIG")?;
    if rustix::process::getppid().map(Pid::as_raw_nonzero)
        != Pid::from_raw(parent as i32).map(Pid::as_raw_nonzero)
    {
        bail!("the parent is gone");
    }
    std::env::set_current_dir("/").context("chdir /")?;
    let Some((name, rest)) = rest.split_first() else {
        bail!("nothing to run");
    };
    match kind {
        "exec" => {
            let err = Command::new(name).args(rest).exec();
            bail!("cannot run {}: {err}", name.to_string_lossy())
        }
        "task" => {
            let task = tasks
                .iter()
                .find(|(n, _)| OsStr::new(n) == name.as_os_str())
                .ok_or_else(|| anyhow!("no task {}", name.to_string_lossy()))?;
            Ok((task.1)(rest))
        }
        other => bail!("unknown kind {other:?}"),
    }
}

/// A shell-free description of a signal-ended status, for messages.
pub fn describe_status(status: &ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        _ => status.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_read_back() {
        assert_eq!(parse_ids("-").unwrap(), None);
        assert_eq!(
            parse_ids("1000:100:100,27").unwrap(),
            Some((1000, 100, vec![100, 27]))
        );
        assert_eq!(parse_ids("1000:100:").unwrap(), Some((1000, 100, vec![])));
        assert!(parse_ids("x:1:").is_err());
        assert!(parse_ids("1:2:a").is_err());
        let status = "Name:\tx\nUid:\t1\t2\t3\t4\nGroups:\t5 6 \nThreads:\t1\n";
        assert_eq!(status_ids(status, "Uid:"), Some(vec![1, 2, 3, 4]));
        assert_eq!(status_ids(status, "Groups:"), Some(vec![5, 6]));
        assert_eq!(status_ids(status, "Threads:"), Some(vec![1]));
    }
}
