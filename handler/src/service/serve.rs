//! `lttng-coredump serve`: the resident crash service on the kernel's
//! coredump socket (`core_pattern` = `@@PATH` on Linux 6.17+, `@PATH` on
//! 6.16). Each crash is handled on a thread of a bounded pool by the same
//! per-crash code as `handle` (snapshots first, while the kernel holds the
//! process, then the core read from the socket, the stops, the record);
//! only the transport differs: the crash's identity comes from the peer's
//! pidfd instead of the command line, and the core from the socket instead
//! of a pipe.
//!
//! What this machine's kernel (6.18) was seen to do, and the system tests
//! (`tests/socket_*.rs`) check:
//! - it connects with the crashing process's credentials (SO_PEERCRED is
//!   its PID and uid), SO_PEERPIDFD names the process, and PIDFD_GET_INFO's
//!   `coredump_mask` has PIDFD_COREDUMPED for that connection only: a
//!   program that merely connects, root or not, gets PIDFD_COREDUMP_USER
//!   alone. That is what a peer must prove to be treated as a crash;
//! - it looks the socket up from the initial mount namespace's root with
//!   its own credentials: the socket can be 0600 in a 0700 directory (no
//!   one but root can connect to it) and still take every user's crashes,
//!   also from a private mount namespace;
//! - `@@`: a 16-byte request (size 16, size_ack 16, mask
//!   KERNEL|USERSPACE|REJECT|WAIT), the process held while we answer, a
//!   4-byte mark (0: accepted), then with KERNEL the core, the kernel's side
//!   shut, and with WAIT the process held until we close; REJECT lets it go
//!   at once with no core. USERSPACE makes the kernel write nothing;
//! - `@`: the core at once; the process held after the last byte only when
//!   core_pipe_limit is non-zero;
//! - nothing listening: "Coredump socket connection PATH failed -2" in the
//!   kernel log, and the core is gone. Hence `install --socket` refuses
//!   unless the service answers, and the service puts the pipe line back
//!   when it stops.
//!
//! The service runs as root: it reads every crashing process's `/proc`,
//! writes root-owned cores, fires in the root session daemon and in each
//! user's own, and rewrites `core_pattern`. It marks itself not dumpable,
//! so that a crash of its own never waits on itself.
//!
//! Crashes wait for a worker in a queue fair between users (`fair_queue`):
//! one uid's crashes hold at most its share of the workers
//! (`max_crashes_in_progress_per_user`, at most all workers but one), so
//! that stalled dumps or a hung session daemon of one user never keep
//! another user's crash waiting; that user's further crashes wait, held by
//! the kernel (its socket mode takes no `core_pipe_limit` slot), and past
//! [`super::fair_queue::MAX_WAITING_PER_UID`] are refused at once. Reading a core
//! is bounded by `core_stall_timeout`, as in the pipe handler (`stall`).
//!
//! Each crash it accepts is handled by a process of its own
//! (`serve --crash-on-stdin`, [`run_one_crash`]), started as the
//! connection is accepted, holding it, and told by a worker when to go:
//! the service holds no crash that its own death would drop. Killed
//! outright (SIGKILL, an OOM kill, a crash of its own), the service takes
//! nothing with it: the crashes being read are finished by their
//! processes, the ones waiting for a worker see the service gone (their
//! line to it ends) and go on at once, and the crashes not yet accepted
//! wait in the listening socket's backlog, held by the holder or by
//! systemd, for the restarted service. (Keeping a crash in the service's
//! memory, or a copy of its descriptor in the holder, cannot survive a
//! kill in the middle of the core: the bytes read so far die with the
//! reader, and the kernel sends them once.) The cost is one process a
//! crash, as in pipe mode, and an idle one for each crash waiting for a
//! worker; starting it is off the crash's clock: the service keeps the
//! next crash's process started ahead (`spare`) and hands it the
//! connection.
//!
//! The fires of a crash's process run in the service's resident children,
//! kept from one crash to the next, one per identity (engine `workers`),
//! asked through the process's line to the service (`relay`), instead of a
//! child forked per daemon per crash: a fork, a change of identity and a
//! reap cost 1 to 3 ms, more as the service's memory grows. Once the
//! service is gone, the process forks its own. After each crash handled in
//! the service itself (when its process could not be started) it gives
//! back to the system what it freed (`malloc_trim`).

use crate::base::config::Config;
use crate::base::syslog::Log;
use crate::crash::context::CrashContext;
use crate::crash::pipeline::{self, Transport};
use crate::kernel::backup::Backup;
use crate::kernel::settings::KernelFiles;
use crate::service::fair_queue::FairQueue;
use crate::service::probe::GREETING;
use crate::service::relay;
use crate::service::spare::Spare;
use anyhow::Context as _;
use coredump_socket::{
    self, CoredumpReq, Mark, PeerCrash, COREDUMP_KERNEL, COREDUMP_REJECT, COREDUMP_WAIT,
    PIDFD_INFO_COREDUMP,
};
use lttng_coredump_engine::Workers;
use std::cell::Cell;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Where the service listens unless told otherwise (short: core_pattern
/// keeps 127 bytes, and a socket path at most 107).
pub const DEFAULT_SOCKET: &str = "/run/lttng-coredump/coredump.socket";
/// Crashes handled at once; more wait, held by the kernel, in the listen
/// queue.
pub const DEFAULT_WORKERS: usize = 16;
/// The kernel sends its request (or the core's first bytes) as it
/// connects; a peer silent this long is not the kernel at work.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a released process may take to exit before its signal is
/// left unknown.
const EXIT_TIMEOUT: Duration = Duration::from_secs(2);
/// How often, while every worker has a crash waiting for it, the service
/// looks whether one was taken.
const SATURATED_RECHECK: rustix::event::Timespec = rustix::event::Timespec {
    tv_sec: 0,
    tv_nsec: 50_000_000,
};
/// How long the service waits for its first resident child to be ready.
const WARM_TIMEOUT: Duration = Duration::from_secs(5);
/// How often, with no connection, idle resident children are let go.
const TIDY_INTERVAL: rustix::event::Timespec = rustix::event::Timespec {
    tv_sec: 10,
    tv_nsec: 0,
};

#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub socket: PathBuf,
    /// The configuration given to every crash (default: the default file).
    pub config: Option<PathBuf>,
    pub workers: usize,
    pub kernel: KernelFiles,
    /// The install backup, which says whether the socket line is wanted.
    pub backup: PathBuf,
    /// Take the listening socket from standard input (`serve --hold`
    /// passes it so); a socket a service manager passed is taken anyway
    /// ([`crate::service::listen`]).
    pub socket_on_stdin: bool,
}

/// Runs the service until SIGTERM, SIGINT or SIGHUP.
pub fn run(options: &ServeOptions) -> anyhow::Result<()> {
    // A crash of the service itself must not be sent to the service.
    rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable)
        .context("cannot mark the service not dumpable")?;
    // Freed compressor memory goes back to the system, not into the arena
    // of whichever thread compressed.
    if !coredump_socket::limit_retained_memory() {
        Log::default()
            .with_stderr()
            .warning("cannot set the allocator's thresholds: freed memory may be kept");
    }
    let (listener, origin) =
        crate::service::listen::listener(&options.socket, options.socket_on_stdin)?;
    let (wake_read, wake_write) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
        .context("cannot create a pipe")?;
    let stopping = Arc::new(AtomicBool::new(false));
    {
        let stopping = stopping.clone();
        ctrlc::set_handler(move || {
            stopping.store(true, Ordering::SeqCst);
            let _ = rustix::io::write(&wake_write, b"x");
        })
        .context("cannot handle SIGTERM")?;
    }
    let mut log = Log::default().with_stderr();
    match take_over_core_pattern(options) {
        Ok(said) => log.notice(said),
        Err(err) => log.error(format!("{err:#}")),
    }
    log.notice(format!(
        "{GREETING} {}: listening on {} ({}) with {} workers",
        std::process::id(),
        options.socket.display(),
        origin.describe(),
        options.workers.max(1)
    ));

    // The children that talk to the session daemons, kept from one crash
    // to the next (engine `workers`), asked by each crash's process through
    // its line to the service (`relay`); the root one is forked now, while
    // the service is small and before the first crash needs it.
    let residents = Arc::new(Workers::new());
    if let Err(err) = residents.warm(WARM_TIMEOUT) {
        log.warning(format!(
            "cannot start the child that talks to the root session daemon: {err} (each crash \
             will try again)"
        ));
    }
    // Waiting crashes each hold a connection and a pidfd.
    if let Err(err) = raise_open_files_limit() {
        log.warning(format!(
            "cannot raise the open files limit: {err} (crashes past it cannot be accepted)"
        ));
    }
    let _submitter =
        crate::service::submitter::SubmitterChild::start(options.config.as_deref(), &mut log);
    let _live_events =
        crate::service::live_events::LiveEvents::start(options.config.as_deref(), &mut log);
    let queue = Arc::new(FairQueue::<Waiting>::new(None));
    // The next crash's process, started ahead (`spare`).
    let mut spare = None;
    refill_spare(&mut spare, options, &mut log);
    let workers: Vec<_> = (0..options.workers.max(1))
        .map(|n| {
            let queue = queue.clone();
            let config = options.config.clone();
            let residents = residents.clone();
            std::thread::Builder::new()
                .name(format!("crash-{n}"))
                .spawn(move || work(&queue, config.as_deref(), &residents))
                .context("cannot start a worker thread")
        })
        .collect::<Result<_, _>>()?;

    while !stopping.load(Ordering::SeqCst) {
        // As many crashes as there are workers already wait for one: new
        // connections stay in the listening socket's backlog (where they
        // outlive a service killed outright), looked at again shortly.
        // Those waiting only on their uid's share do not count: another
        // user's crash behind them must be seen.
        let saturated = queue.runnable_waiting() >= options.workers.max(1);
        let mut fds = [
            rustix::event::PollFd::new(&wake_read, rustix::event::PollFlags::IN),
            rustix::event::PollFd::new(&listener, rustix::event::PollFlags::IN),
        ];
        let watched = if saturated {
            &mut fds[..1]
        } else {
            &mut fds[..]
        };
        let timeout = if saturated {
            &SATURATED_RECHECK
        } else {
            &TIDY_INTERVAL
        };
        match rustix::event::poll(watched, Some(timeout)) {
            Ok(0) if saturated => continue,
            Ok(0) => {
                residents.tidy();
                continue;
            }
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => continue,
            Err(err) => {
                log.error(format!("waiting for connections failed: {err}"));
                break;
            }
        }
        if stopping.load(Ordering::SeqCst) {
            break;
        }
        if saturated {
            continue;
        }
        match listener.accept() {
            Ok((stream, _)) => dispatch(stream, &queue, options, &mut spare, &mut log),
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => log.warning(format!("accepting a connection failed: {err}")),
        }
    }

    // New crashes go to the pipe handler from now on; the ones already
    // accepted are finished first.
    // (The backup is read again: `install --socket` may have run since
    // the service started.)
    match give_back_core_pattern(options) {
        Ok(said) => log.notice(said),
        Err(err) => log.error(format!("{err:#}")),
    }
    // Crashes that connected before the switch wait in the listen queue:
    // closing the socket would drop them (and their cores), so they are
    // taken first.
    if listener.set_nonblocking(true).is_ok() {
        while let Ok((stream, _)) = listener.accept() {
            let _ = stream.set_nonblocking(false);
            dispatch(stream, &queue, options, &mut spare, &mut log);
        }
    }
    drop(listener);
    if let Some(spare) = spare.take() {
        spare.dismiss();
    }
    // A socket held by another process stays: crashes wait in it for the
    // next service.
    if !origin.held() {
        let _ = std::fs::remove_file(&options.socket);
    }
    queue.close();
    for worker in workers {
        let _ = worker.join();
    }
    log.notice(format!("{GREETING} {}: stopped", std::process::id()));
    Ok(())
}

/// The (socket line, pipe line) `install --socket` recorded for this
/// service's socket, or why there are none.
fn installed_lines(options: &ServeOptions) -> anyhow::Result<Result<(String, String), String>> {
    let Some(backup) = Backup::read(&options.backup)? else {
        return Ok(Err(format!(
            "not installed (no backup at {})",
            options.backup.display()
        )));
    };
    let (Some(socket_line), Some(pipe_line)) = (backup.socket_line, backup.pipe_line) else {
        return Ok(Err("installed in pipe mode".into()));
    };
    if crate::kernel::pattern::socket_of_line(&socket_line) != Some(options.socket.as_path()) {
        return Ok(Err(format!(
            "installed for another socket ({socket_line:?})"
        )));
    }
    Ok(Ok((socket_line, pipe_line)))
}

/// When `install --socket` chose a socket line for this socket, puts it in
/// `core_pattern` in place of the pipe line a clean stop left. Says what
/// was done.
fn take_over_core_pattern(options: &ServeOptions) -> anyhow::Result<String> {
    let (socket_line, pipe_line) = match installed_lines(options)? {
        Ok(lines) => lines,
        Err(why) => return Ok(format!("{why}: core_pattern is left as it is")),
    };
    let pattern = options.kernel.read_pattern()?;
    if pattern == socket_line {
        return Ok(format!("core_pattern is {socket_line:?}"));
    }
    if pattern != pipe_line {
        return Ok(format!(
            "core_pattern was changed since the install ({pattern:?}): left as it is"
        ));
    }
    crate::kernel::settings::write_setting(&options.kernel.core_pattern, &socket_line)?;
    Ok(format!(
        "core_pattern set to {socket_line:?} (it was the pipe line)"
    ))
}

/// Puts the pipe line back when `core_pattern` still points at us, so that
/// no core is lost while nothing listens.
pub(crate) fn give_back_core_pattern(options: &ServeOptions) -> anyhow::Result<String> {
    let (socket_line, pipe_line) = match installed_lines(options)? {
        Ok(lines) => lines,
        Err(why) => return Ok(format!("{why}: core_pattern is left as it is")),
    };
    let pattern = options.kernel.read_pattern()?;
    if pattern != socket_line {
        return Ok(format!(
            "core_pattern is {pattern:?}, no longer this service's: left as it is"
        ));
    }
    crate::kernel::settings::write_setting(&options.kernel.core_pattern, &pipe_line)?;
    Ok(format!(
        "core_pattern set back to the pipe line {pipe_line:?}"
    ))
}

/// A crash's connection, as its process or the service itself reads it.
struct Connection {
    stream: UnixStream,
    pidfd: OwnedFd,
    crash: PeerCrash,
    /// Its uid's share of the workers when it was queued.
    share: Option<u32>,
}

/// A crash waiting for a worker: its own process (which holds the
/// connection and waits for a word on its line to the service), or, when
/// that process could not be started, the connection itself.
enum Waiting {
    Process {
        child: std::process::Child,
        /// The service's end of the process's line (`relay`): its word
        /// lets it go or drops the crash; its end (the service killed)
        /// makes it go on alone.
        line: UnixStream,
    },
    Here(Connection),
}

/// Raises the soft limit on open files to the hard one.
fn raise_open_files_limit() -> io::Result<()> {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current != limit.maximum {
        limit.current = limit.maximum;
        setrlimit(Resource::Nofile, limit)?;
    }
    Ok(())
}

/// Starts a spare when there is none (`spare`); a service that cannot
/// start one starts each crash's process as the crash comes.
fn refill_spare(spare: &mut Option<Spare>, options: &ServeOptions, log: &mut Log) {
    if spare.is_some() {
        return;
    }
    match Spare::start(options.config.as_deref()) {
        Ok(started) => *spare = Some(started),
        Err(err) => log.warning(format!(
            "{err:#}: the next crash's process is started when it comes"
        )),
    }
}

/// A new connection: a client that is not the kernel gets the greeting at
/// once (and nothing else); a crash waits for a worker in its uid's queue,
/// or is refused at once when too many of that uid's already wait. The
/// crash's process is the spare, or one started for it; once the crash
/// waits, the next spare is started.
fn dispatch(
    stream: UnixStream,
    queue: &FairQueue<Waiting>,
    options: &ServeOptions,
    spare: &mut Option<Spare>,
    log: &mut Log,
) {
    let (pidfd, crash) = match peer_crash(&stream) {
        Ok(found) => found,
        Err(reason) => {
            // A probe (`status`, `install`) or someone else: it gets to
            // know the service is alive, and nothing is written or fired.
            // Never waited on: the line fits in the socket's buffer.
            let _ = stream.set_nonblocking(true);
            let _ = writeln!(
                &stream,
                "{GREETING} {}: not a crash ({reason}); nothing done",
                std::process::id()
            );
            return;
        }
    };
    // The configuration is read for each crash, as each crash's handling
    // does; one worker is always left to the other users.
    let configured = Config::load(options.config.as_deref())
        .config
        .max_crashes_in_progress_per_user;
    let share =
        crate::crash::limits::crash_share::effective(configured, options.workers.max(1) as u32);
    queue.set_share(share.map(|share| share as usize));
    let (pid, uid) = (crash.pid, crash.uid);
    if let Err(why) = queue.room_for(uid) {
        log.error(format!(
            "crash of process {pid} (uid {uid}) refused, its core lost: {why} \
             (max_crashes_in_progress_per_user)"
        ));
        // Closed unanswered: the kernel dumps nothing and lets it go.
        return;
    }
    let handed = spare.take().map(|ready| {
        ready.hand(&stream, share).map_err(|err| {
            log.warning(format!(
                "crash of process {pid} (uid {uid}): {err:#}; a process is started for it"
            ))
        })
    });
    let process = match handed {
        Some(Ok(process)) => Ok(process),
        Some(Err(())) | None => start_crash_process(&stream, options, share),
    };
    let waiting = match process {
        Ok((child, line)) => {
            // The process holds the connection now; the service keeps none.
            drop(stream);
            Waiting::Process { child, line }
        }
        Err(err) => {
            log.warning(format!(
                "crash of process {pid} (uid {uid}): cannot start its own process ({err:#}); \
                 the service handles it (a kill of the service would lose it)"
            ));
            Waiting::Here(Connection {
                stream,
                pidfd,
                crash,
                share,
            })
        }
    };
    if let Err((refused, why)) = queue.push(uid, waiting) {
        log.error(format!(
            "crash of process {pid} (uid {uid}) refused, its core lost: {why} \
             (max_crashes_in_progress_per_user)"
        ));
        // Closed unanswered: the kernel dumps nothing and lets it go.
        if let Waiting::Process { mut child, line } = refused {
            let _ = (&line).write_all(&[relay::REFUSED]);
            drop(line);
            let _ = child.wait();
        }
    }
    refill_spare(spare, options, log);
}

/// Starts the process that handles the crash on `stream`: this program's
/// `serve --crash-on-stdin`, the connection on its standard input, its end
/// of its line to the service (`relay`) on its standard output, the
/// service's standard error (its log) on its own. It waits for the
/// service's word before it reads anything ([`run_one_crash`]).
fn start_crash_process(
    stream: &UnixStream,
    options: &ServeOptions,
    share: Option<u32>,
) -> anyhow::Result<(std::process::Child, UnixStream)> {
    let program = std::env::current_exe().context("cannot tell where this program is")?;
    // Both ends close on exec: only the crash's process gets its end (as
    // its standard output), and the service's end stays the service's
    // alone, so that its end means the service is gone.
    let (ours, theirs) = UnixStream::pair().context("cannot create a socket pair")?;
    let connection = stream
        .try_clone()
        .context("cannot duplicate the connection")?;
    let mut command = std::process::Command::new(program);
    command.arg("serve").arg("--crash-on-stdin");
    if let Some(config) = &options.config {
        command.arg("--config").arg(config);
    }
    if let Some(share) = share {
        command.arg("--share").arg(share.to_string());
    }
    let child = command
        .stdin(std::process::Stdio::from(OwnedFd::from(connection)))
        .stdout(std::process::Stdio::from(OwnedFd::from(theirs)))
        .spawn()
        .context("cannot start it")?;
    Ok((child, ours))
}

/// A worker: lets crashes be handled, one at a time, until the service
/// stops.
fn work(queue: &FairQueue<Waiting>, config: Option<&Path>, workers: &Arc<Workers>) {
    while let Some(mut ticket) = queue.pop() {
        match ticket.item.take() {
            None => continue,
            Some(Waiting::Process { mut child, line }) => {
                // Its fires run in this service's resident children until
                // it ends (a process that died meanwhile took its crash
                // with it; its end is waited for all the same).
                relay::serve_crash(&line, workers);
                drop(line);
                let _ = child.wait();
            }
            Some(Waiting::Here(connection)) => {
                let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    handle_connection(connection, config, workers.clone() as Arc<_>)
                }));
                if outcome.is_err() {
                    Log::default()
                        .with_stderr()
                        .error("handling a connection panicked; the service goes on");
                }
                // What the crash freed (above all a compressor's memory)
                // goes back to the system instead of staying in this
                // thread's arena.
                coredump_socket::release_free_memory();
            }
        }
    }
}

/// `serve --crash-on-stdin`: the process of one crash, started by the
/// service as it accepted the connection (on standard input). It waits
/// for the service's word on its line (standard output, `relay`): go, when
/// a worker is free within the uid's share, or drop the crash; when the
/// line ends without a word, the service was killed, and it goes on at
/// once (the service that follows knows nothing of it). Whether or not the
/// service lives on, it handles the crash to its record; its fires run in
/// the service's resident children while the service lives, else in
/// children of its own.
///
/// A spare (`spare`) has nothing on its standard input: it waits for its
/// crash's connection and share on its line first ([`crate::service::spare`]),
/// and exits with nothing done when the line ends before.
pub fn run_one_crash(config: Option<&Path>, share: Option<u32>, spare: bool) -> anyhow::Result<()> {
    // A crash of its own must not be sent to the service.
    rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable)
        .context("cannot mark the crash's process not dumpable")?;
    let line = UnixStream::from(
        io::stdout()
            .as_fd()
            .try_clone_to_owned()
            .context("cannot take the service's line on standard output")?,
    );
    let (stream, share) = if spare {
        match crate::service::spare::wait_for_crash(&line)
            .context("waiting for the crash as a spare")?
        {
            Some(crash) => crash,
            None => return Ok(()),
        }
    } else {
        let stream = UnixStream::from(
            io::stdin()
                .as_fd()
                .try_clone_to_owned()
                .context("cannot take the connection on standard input")?,
        );
        (stream, share)
    };
    let null = std::fs::File::options()
        .read(true)
        .write(true)
        .open("/dev/null")
        .context("cannot open /dev/null")?;
    rustix::stdio::dup2_stdin(&null).context("cannot point standard input at /dev/null")?;
    rustix::stdio::dup2_stdout(&null).context("cannot point standard output at /dev/null")?;
    drop(null);
    let mut log = Log::default().with_stderr();
    let (pidfd, crash) = peer_crash(&stream).map_err(|why| anyhow::anyhow!("{why}"))?;
    let relay = relay::ServiceRelay::new(line);
    let share = match relay.wait_word() {
        relay::Word::Go => share,
        relay::Word::Refused => return Ok(()),
        relay::Word::ServiceGone => {
            log.warning(format!(
                "process {}: the crash service ended while this crash waited for a worker; it \
                 is handled now",
                crash.pid
            ));
            // No worker was given: the record says nothing of a share.
            None
        }
    };
    handle_connection(
        Connection {
            stream,
            pidfd,
            crash,
            share,
        },
        config,
        Arc::new(relay),
    );
    Ok(())
}

/// Which protocol the kernel speaks on a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    /// `@@`: request, acknowledgement, mark, then the core.
    Request,
    /// `@`: the core at once.
    Plain,
}

/// One crash from the kernel, on a worker.
fn handle_connection(
    connection: Connection,
    config: Option<&Path>,
    workers: Arc<dyn crate::crash::snapshot::Residents>,
) {
    let Connection {
        mut stream,
        pidfd,
        crash,
        share,
    } = connection;
    let mut log = Log::default();
    let _ = stream.set_read_timeout(Some(REQUEST_TIMEOUT));
    let _ = stream.set_write_timeout(Some(REQUEST_TIMEOUT));
    // The first bytes of a core are ELF's magic; a request starts with its
    // size (16).
    let mut first = [0u8; 4];
    let protocol = match rustix::net::recv(
        stream.as_fd(),
        &mut first,
        rustix::net::RecvFlags::PEEK | rustix::net::RecvFlags::WAITALL,
    ) {
        Ok((4, _)) if &first == b"\x7fELF" => Protocol::Plain,
        Ok((4, _)) => Protocol::Request,
        Ok(_) | Err(_) => Protocol::Plain,
    };
    let request = match protocol {
        Protocol::Plain => None,
        Protocol::Request => match coredump_socket::read_request(&mut stream) {
            Ok(request) => Some(request),
            Err(err) => {
                log.error(format!(
                    "process {}: cannot read the kernel's coredump request: {err}; the kernel \
                     gets no answer and dumps no core",
                    crash.pid
                ));
                None
            }
        },
    };
    // The core's stream is waited on with the configured stall bound.
    let _ = stream.set_read_timeout(None);
    let context = CrashContext::from_socket_peer(&crash, &pidfd);
    let acked = Cell::new(false);
    let mut core = SocketCore {
        stream: &stream,
        request,
        acked: &acked,
    };
    let stream_ref = &stream;
    let release = || -> io::Result<()> {
        // A core nobody wants is refused before a byte of it is dumped.
        if let (Some(request), false) = (request, acked.get()) {
            acked.set(true);
            let mut writer = stream_ref;
            let _ = acknowledge_on(&mut writer, &request, COREDUMP_REJECT);
        }
        stream_ref.shutdown(std::net::Shutdown::Both)
    };
    // Let go, the process exits at once; its wait status has the signal
    // (which Linux tells before then only from 6.19).
    let signal_from_exit = || coredump_socket::exit_signal(pidfd.as_fd(), EXIT_TIMEOUT);
    pipeline::handle_crash(
        context,
        config,
        Transport::Socket { workers, share },
        &mut core,
        release,
        signal_from_exit,
        &mut log,
    );
}

/// The peer's pidfd and crash, or why the peer is not a crash.
fn peer_crash(stream: &UnixStream) -> Result<(OwnedFd, PeerCrash), String> {
    let pidfd = coredump_socket::peer_pidfd(stream.as_fd())
        .map_err(|err| format!("no pidfd for the peer: {err}"))?;
    let info = coredump_socket::pidfd_info(pidfd.as_fd(), PIDFD_INFO_COREDUMP)
        .map_err(|err| format!("PIDFD_GET_INFO failed: {err}"))?;
    let crash = coredump_socket::crash_of(&info).map_err(|reason| reason.to_string())?;
    Ok((pidfd, crash))
}

/// The core as `handle` reads it: on a `@@` connection, the first read
/// accepts the core (KERNEL|WAIT: the kernel writes it and then holds the
/// process until we close); a core never read is refused in `release`.
struct SocketCore<'a> {
    stream: &'a UnixStream,
    request: Option<CoredumpReq>,
    acked: &'a Cell<bool>,
}

impl SocketCore<'_> {
    /// Accepts the core, once, on a `@@` connection.
    fn accept(&mut self) -> io::Result<()> {
        if let (Some(request), false) = (self.request, self.acked.get()) {
            self.acked.set(true);
            let mut stream = self.stream;
            let mark = acknowledge_on(&mut stream, &request, COREDUMP_KERNEL | COREDUMP_WAIT)?;
            if mark != Mark::ReqAck {
                return Err(io::Error::other(format!(
                    "the kernel refused the acknowledgement ({mark:?})"
                )));
            }
        }
        Ok(())
    }
}

impl Read for SocketCore<'_> {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        self.accept()?;
        let mut stream = self.stream;
        stream.read(buffer)
    }
}

impl crate::crash::limits::stall::CoreSource for SocketCore<'_> {
    fn wait_readable(&mut self, timeout: Duration) -> io::Result<bool> {
        self.accept()?;
        crate::crash::limits::stall::wait_fd(self.stream.as_fd(), timeout)
    }
}

/// [`coredump_socket::acknowledge`] on a shared stream.
fn acknowledge_on(stream: &mut &UnixStream, request: &CoredumpReq, mask: u64) -> io::Result<Mark> {
    let mut owned = stream.try_clone()?;
    coredump_socket::acknowledge(&mut owned, request, mask)
}
