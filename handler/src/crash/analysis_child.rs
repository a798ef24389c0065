//! The report's analysis in a program of its own: this binary executed
//! again as the analyst (the crashing user, or the service account), not a
//! fork of the handler.
//!
//! Why: a forked child carries the handler's touched pages (11.5 MiB of a
//! handler that links libdw, the engine and everything else), counted
//! again in its RSS on top of what libdw reads (16 MiB of libc6-dbg's
//! decompressed DWARF for the source lines): 32.1-32.4 MiB for the
//! handler's process tree, over the 32 MiB. A fresh program maps
//! the same binary but touches only what the analysis runs.
//!
//! How: the user-child trampoline of `base/user_child.rs` (`/proc/self/exe`,
//! the very binary root runs, even when a package upgrade replaced its
//! path since; a new single-threaded process that closes every inherited
//! descriptor, starts a new session, takes the analyst's groups, gid and
//! uid and checks them, sets no_new_privs, is not dumpable and dies with
//! its parent), run with an empty environment and the task [`TASK`]. Its
//! standard input is one end of a socket pair over which the handler then
//! passes the raw core (reopened read-only) and the held executable
//! (`SCM_RIGHTS`) and the [`Request`] (the limits); the task confines
//! itself as the forked child did (the report crate's sandbox: CPU time,
//! address space beyond what it maps, file sizes, no core, debuginfod only
//! as configured), analyzes,
//! and writes its answer on standard output, which the handler reads at
//! most `max_report_bytes` of within `report_deadline`, after which the
//! child's process group is killed and reaped within the trampoline's
//! grace (or left behind).

use crate::base::user_child::{describe_status, Input, UserCommand, Who};
use lttng_coredump_engine::identity::Identity;
use lttng_coredump_report::exec::{self, Request};
use lttng_coredump_report::{AnalysisFailed, Limits, Report};
use rustix::fs::{Mode, OFlags};
use rustix::net::{
    RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags,
};
use std::ffi::OsString;
use std::fs::File;
use std::io::{IoSlice, IoSliceMut, Read, Write};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::process::ExitCode;

/// The trampoline's task that analyzes a core.
pub const TASK: &str = "analyze-core";

/// The largest request the task reads (the limits as JSON are a few
/// hundred bytes).
const MAX_REQUEST: usize = 64 * 1024;

/// Analyzes the raw core `core` (with the executable `exe` and its path,
/// when held) in this binary executed again as `analyst` (never root),
/// within `limits`.
pub fn analyze(
    core: &File,
    exe: Option<(&OwnedFd, &str)>,
    analyst: &Identity,
    limits: &Limits,
) -> Result<Report, AnalysisFailed> {
    if analyst.uid() == 0 {
        return Err(exec::failure(
            "a core is never parsed as root: the analyst must be an unprivileged user",
        ));
    }
    // A caller that is not root (a test, a person's own run) cannot take
    // another identity: it analyzes as itself, when that is the analyst.
    let who = if rustix::process::geteuid().is_root() {
        Some(Who::of(analyst))
    } else if rustix::process::geteuid().as_raw() == analyst.uid() {
        None
    } else {
        return Err(exec::failure(format!(
            "the child could not act as the crashing user: uid {} cannot become uid {}",
            rustix::process::geteuid().as_raw(),
            analyst.uid()
        )));
    };
    // The child gets the core read-only (the handler's own descriptor of
    // it is the one it was written through).
    let core = rustix::fs::open(
        format!("/proc/self/fd/{}", core.as_raw_fd()),
        OFlags::RDONLY | OFlags::NOCTTY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map(File::from)
    .map_err(|e| exec::failure(format!("reopening the core read-only: {e}")))?;
    let (ours, theirs) = UnixStream::pair()
        .map_err(|e| exec::failure(format!("creating the analysis child's socket: {e}")))?;
    let mut running = UserCommand::task(who, TASK)
        .empty_environment()
        .deadline(limits.deadline)
        .max_output(limits.max_report_bytes as u64)
        .spawn(Input::Fd(theirs.into()))
        .map_err(|e| exec::failure(format!("starting the analysis child: {e:#}")))?;
    let request = Request {
        limits: limits.clone(),
        executable_name: exe.map(|(_, path)| path.to_string()),
    };
    // Sent before the child reads it (the socket buffers it); a child that
    // died at once makes this fail, and its end says why below.
    let sent = send_request(&ours, &core, exe.map(|(fd, _)| fd), &request);
    drop(ours);
    let mut answer = Vec::new();
    let read = running.read_to_end(&mut answer);
    let ended = running.finish();
    match (read, ended) {
        (_, Err(err)) => {
            let why = format!("{err:#}");
            Err(if why.contains("did not end within") {
                exec::failure(format!(
                    "it did not finish within {} ms and was killed",
                    limits.deadline.as_millis()
                ))
            } else {
                exec::failure(format!("the analysis child {why}"))
            })
        }
        (Err(err), Ok(_)) => Err(exec::failure(format!(
            "reading the analysis child's answer: {err}"
        ))),
        (Ok(_), Ok(finished)) if !finished.status.success() => {
            let reason = finished.last_error_line().unwrap_or("").to_string();
            Err(match finished.status.code() {
                Some(code) if code == i32::from(crate::base::user_child::EXIT_SETUP_FAILED) => {
                    exec::failure(format!(
                        "the child could not act as the crashing user: {reason}"
                    ))
                }
                _ => exec::child_ended(&describe_status(&finished.status)),
            })
        }
        (Ok(_), Ok(_)) => {
            if let Err(err) = sent {
                return Err(exec::failure(format!(
                    "passing the core to the analysis child: {err}"
                )));
            }
            exec::read_answer(&answer)
        }
    }
}

/// The request and the descriptors (the core, then the executable) in one
/// message, then the end of the stream.
fn send_request(
    socket: &UnixStream,
    core: &File,
    exe: Option<&OwnedFd>,
    request: &Request,
) -> std::io::Result<()> {
    let payload = serde_json::to_vec(request).map_err(std::io::Error::other)?;
    let mut fds = vec![core.as_fd()];
    if let Some(exe) = exe {
        fds.push(exe.as_fd());
    }
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(2))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if !control.push(SendAncillaryMessage::ScmRights(&fds)) {
        return Err(std::io::Error::other("no room for SCM_RIGHTS"));
    }
    let mut sent = rustix::net::sendmsg(
        socket,
        &[IoSlice::new(&payload)],
        &mut control,
        SendFlags::NOSIGNAL,
    )?;
    while sent < payload.len() {
        sent += rustix::net::send(socket, &payload[sent..], SendFlags::NOSIGNAL)?;
    }
    socket.shutdown(std::net::Shutdown::Write)
}

/// The task, in the executed child (already the analyst): reads the
/// request and the descriptors from standard input, analyzes, writes the
/// answer on standard output.
pub fn task(_args: &[OsString]) -> ExitCode {
    let (request, mut fds) = match receive_request() {
        Ok(received) => received,
        Err(err) => {
            eprintln!("lttng-coredump: reading the analysis request: {err}");
            return ExitCode::from(2);
        }
    };
    let expected = 1 + usize::from(request.executable_name.is_some());
    if fds.len() != expected {
        eprintln!(
            "lttng-coredump: the analysis request came with {} descriptors, not {expected}",
            fds.len()
        );
        return ExitCode::from(2);
    }
    let exe = (expected == 2).then(|| fds.remove(1));
    let core = fds.remove(0);
    let answer = exec::run_here(core.as_fd(), exe.as_ref().map(AsFd::as_fd), &request);
    let mut out = std::io::stdout().lock();
    if out.write_all(&answer).and_then(|()| out.flush()).is_err() {
        return ExitCode::from(2);
    }
    ExitCode::SUCCESS
}

fn receive_request() -> std::io::Result<(Request, Vec<OwnedFd>)> {
    let stdin = rustix::stdio::stdin();
    let mut payload = vec![0u8; MAX_REQUEST];
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(4))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let first = rustix::net::recvmsg(
        stdin,
        &mut [IoSliceMut::new(&mut payload)],
        &mut control,
        RecvFlags::CMSG_CLOEXEC,
    )?;
    let mut fds = Vec::new();
    for message in control.drain() {
        if let RecvAncillaryMessage::ScmRights(received) = message {
            fds.extend(received);
        }
    }
    let mut len = first.bytes;
    while first.bytes > 0 && len < MAX_REQUEST {
        match rustix::io::read(stdin, &mut payload[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(rustix::io::Errno::INTR) => {}
            Err(err) => return Err(err.into()),
        }
    }
    let request = serde_json::from_slice(&payload[..len]).map_err(std::io::Error::other)?;
    Ok((request, fds))
}
