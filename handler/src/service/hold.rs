//! `lttng-coredump serve --hold`: the crash service for machines without
//! systemd's socket activation. A small parent process binds the listening
//! socket and keeps it for as long as it runs; the service proper runs as
//! its child, the socket on its standard input ([`crate::service::listen`]), and is
//! started again whenever it dies (SIGKILL, an OOM kill, a crash of its
//! own). Meanwhile the kernel's connections wait in the socket's backlog,
//! each crashing process held, and the next service takes them: no core
//! is dropped because the service was restarting. The crashes the killed
//! service had accepted are not the holder's: each is handled by a process
//! of its own, which outlives the service (`serve`).
//!
//! The holder does nothing else: no configuration, no session daemon, no
//! crash; it is not dumpable. SIGTERM, SIGINT or SIGHUP stop it: the
//! service gets SIGTERM (it puts the pipe line back in core_pattern, then
//! finishes the crashes in hand), the holder waits for it (at most
//! [`STOP_TIMEOUT`], then SIGKILL), puts the pipe line back itself when
//! the service could not, and removes the socket.

use crate::base::syslog::Log;
use crate::service::serve::ServeOptions;
use anyhow::Context as _;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a stopping service may take (the snapshot deadline of the
/// crashes in hand, then their cores).
pub const STOP_TIMEOUT: Duration = Duration::from_secs(90);
/// The first pause before a restart, doubled while the service keeps dying
/// at once, up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// A service that ran this long before it died is restarted after the
/// first pause again.
const STABLE: Duration = Duration::from_secs(10);
/// How often the holder looks at its child.
const TICK: Duration = Duration::from_millis(50);

/// The child's command line: `serve` with the same options, the socket on
/// standard input.
fn service_command(options: &ServeOptions) -> anyhow::Result<Command> {
    let program = std::env::current_exe().context("cannot tell where this program is")?;
    let mut command = Command::new(program);
    command
        .arg("serve")
        .arg("--socket-on-stdin")
        .arg("--socket")
        .arg(&options.socket)
        .arg("--workers")
        .arg(options.workers.to_string())
        .arg("--backup")
        .arg(&options.backup)
        .arg("--proc-sys-kernel")
        .arg(
            options
                .kernel
                .core_pattern
                .parent()
                .unwrap_or(std::path::Path::new(
                    crate::kernel::settings::DEFAULT_PROC_SYS_KERNEL,
                )),
        );
    if let Some(config) = &options.config {
        command.arg("--config").arg(config);
    }
    Ok(command)
}

/// Runs the holder until SIGTERM, SIGINT or SIGHUP.
pub fn run(options: &ServeOptions) -> anyhow::Result<()> {
    rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable)
        .context("cannot mark the holder not dumpable")?;
    let mut log = Log::default().with_stderr();
    let listener = crate::service::listen::bind(&options.socket)?;
    let stopping = Arc::new(AtomicBool::new(false));
    {
        let stopping = stopping.clone();
        ctrlc::set_handler(move || stopping.store(true, Ordering::SeqCst))
            .context("cannot handle SIGTERM")?;
    }
    log.notice(format!(
        "holder {}: holding {}; the crash service runs as its child and is restarted whenever \
         it dies (crashes wait in the socket's backlog meanwhile)",
        std::process::id(),
        options.socket.display()
    ));
    let mut backoff = FIRST_BACKOFF;
    let mut ended_cleanly = false;
    while !stopping.load(Ordering::SeqCst) {
        let socket = listener
            .try_clone()
            .context("cannot duplicate the listening socket")?;
        let started = Instant::now();
        let mut child = match service_command(options)?
            .stdin(Stdio::from(std::os::fd::OwnedFd::from(socket)))
            .stdout(Stdio::null())
            .spawn()
        {
            Ok(child) => child,
            Err(err) => {
                log.error(format!("cannot start the crash service: {err}"));
                pause(&stopping, backoff);
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
        };
        log.notice(format!(
            "holder {}: started the crash service (serve {})",
            std::process::id(),
            child.id()
        ));
        let status = loop {
            if stopping.load(Ordering::SeqCst) {
                break None;
            }
            match child.try_wait() {
                Ok(Some(status)) => break Some(status),
                Ok(None) => std::thread::sleep(TICK),
                Err(err) => {
                    log.error(format!("cannot wait for the crash service: {err}"));
                    std::thread::sleep(TICK);
                }
            }
        };
        let Some(status) = status else {
            ended_cleanly = stop(&mut child, &mut log);
            break;
        };
        log.warning(format!(
            "holder {}: the crash service (serve {}) ended ({status}); crashes wait in {} until \
             it is started again",
            std::process::id(),
            child.id(),
            options.socket.display()
        ));
        if started.elapsed() >= STABLE {
            backoff = FIRST_BACKOFF;
        }
        pause(&stopping, backoff);
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
    // The service puts the pipe line back when it stops cleanly; when it
    // was not running (or was killed), the holder does, before the socket
    // goes: the kernel would drop every core sent to it.
    if !ended_cleanly {
        match crate::service::serve::give_back_core_pattern(options) {
            Ok(said) => log.notice(said),
            Err(err) => log.error(format!("{err:#}")),
        }
    }
    drop(listener);
    let _ = std::fs::remove_file(&options.socket);
    log.notice(format!("holder {}: stopped", std::process::id()));
    Ok(())
}

/// Waits `delay` unless a stop is asked for meanwhile.
fn pause(stopping: &AtomicBool, delay: Duration) {
    let until = Instant::now() + delay;
    while Instant::now() < until && !stopping.load(Ordering::SeqCst) {
        std::thread::sleep(TICK.min(until.saturating_duration_since(Instant::now())));
    }
}

/// SIGTERM to the service, then waits for it (at most [`STOP_TIMEOUT`],
/// then SIGKILL). Whether it ended by itself with success.
fn stop(child: &mut Child, log: &mut Log) -> bool {
    if let Some(pid) = rustix::process::Pid::from_raw(child.id() as i32) {
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
    }
    let deadline = Instant::now() + STOP_TIMEOUT;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return status.success(),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(TICK),
            _ => {
                log.error(format!(
                    "the crash service (serve {}) did not stop within {} s: killed",
                    child.id(),
                    STOP_TIMEOUT.as_secs()
                ));
                let _ = child.kill();
                let _ = child.wait();
                return false;
            }
        }
    }
}
