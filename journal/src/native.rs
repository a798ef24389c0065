//! Sending an entry to journald over its native protocol: one datagram to
//! its socket (`/run/systemd/journal/socket`, or a path the caller
//! configures), or, for an entry too large for a datagram, the entry in a
//! sealed memfd passed with `SCM_RIGHTS` in an empty datagram (what
//! `sd_journal_sendv` does).
//!
//! Nothing waits without a bound: a journald that does not read its socket
//! costs the send timeout. Where journald does not run, the error says so
//! ([`SendError::NotRunning`]), and the caller keeps its syslog line.

use crate::fields::Fields;
use rustix::fs::{MemfdFlags, SealFlags};
use rustix::io::Errno;
use rustix::net::{
    AddressFamily, SendAncillaryBuffer, SendAncillaryMessage, SendFlags, SocketAddrUnix, SocketType,
};
use std::fmt;
use std::io::IoSlice;
use std::mem::MaybeUninit;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// journald's native socket on a system that runs it.
pub const SOCKET: &str = "/run/systemd/journal/socket";

/// How an entry went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sent {
    /// In one datagram.
    Datagram,
    /// In a memfd (too large for a datagram).
    Memfd,
}

/// Why an entry was not sent.
#[derive(Debug)]
pub enum SendError {
    /// No journald listens on the socket (it does not exist, or nobody
    /// reads it): the caller's syslog line is the record.
    NotRunning {
        socket: PathBuf,
        cause: std::io::Error,
    },
    /// journald did not take the entry within the timeout.
    Timeout { socket: PathBuf, after: Duration },
    /// Anything else, with what was being done.
    Io {
        socket: PathBuf,
        doing: &'static str,
        cause: std::io::Error,
    },
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::NotRunning { socket, cause } => write!(
                f,
                "journald does not run here (no one listens on {}: {cause})",
                socket.display()
            ),
            SendError::Timeout { socket, after } => write!(
                f,
                "journald did not take the entry within {} ms ({})",
                after.as_millis(),
                socket.display()
            ),
            SendError::Io {
                socket,
                doing,
                cause,
            } => write!(f, "{doing} for journald ({}): {cause}", socket.display()),
        }
    }
}

impl std::error::Error for SendError {}

/// Sends `fields` to the journald listening on `socket`, waiting at most
/// `timeout` for it to take them.
pub fn send(fields: &Fields, socket: &Path, timeout: Duration) -> Result<Sent, SendError> {
    let io = |doing: &'static str| {
        let socket = socket.to_path_buf();
        move |e: Errno| SendError::Io {
            socket,
            doing,
            cause: e.into(),
        }
    };
    let address = SocketAddrUnix::new(socket).map_err(io("naming the socket"))?;
    let fd = rustix::net::socket_with(
        AddressFamily::UNIX,
        SocketType::DGRAM,
        rustix::net::SocketFlags::CLOEXEC,
        None,
    )
    .map_err(io("creating a socket"))?;
    rustix::net::sockopt::set_socket_timeout(
        &fd,
        rustix::net::sockopt::Timeout::Send,
        Some(timeout.max(Duration::from_millis(1))),
    )
    .map_err(io("setting the send timeout"))?;
    // A larger send buffer lets larger entries go as one datagram (the
    // kernel caps it at net.core.wmem_max; failing is harmless).
    let _ = rustix::net::sockopt::set_socket_send_buffer_size(&fd, 8 << 20);
    let payload = fields.to_native();
    let classify = |e: Errno, doing: &'static str| match e {
        Errno::NOENT | Errno::CONNREFUSED | Errno::NOTDIR => SendError::NotRunning {
            socket: socket.to_path_buf(),
            cause: e.into(),
        },
        Errno::AGAIN => SendError::Timeout {
            socket: socket.to_path_buf(),
            after: timeout,
        },
        other => SendError::Io {
            socket: socket.to_path_buf(),
            doing,
            cause: other.into(),
        },
    };
    let mut no_control = SendAncillaryBuffer::default();
    match rustix::net::sendmsg_addr(
        &fd,
        &address,
        &[IoSlice::new(&payload)],
        &mut no_control,
        SendFlags::NOSIGNAL,
    ) {
        Ok(_) => return Ok(Sent::Datagram),
        Err(Errno::MSGSIZE) | Err(Errno::NOBUFS) => {}
        Err(e) => return Err(classify(e, "sending the entry")),
    }
    // Too large for one datagram: a sealed memfd journald reads.
    let memfd = rustix::fs::memfd_create(
        "journal-entry",
        MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING,
    )
    .map_err(io("creating a memfd"))?;
    let mut done = 0;
    while done < payload.len() {
        done += rustix::io::write(&memfd, &payload[done..]).map_err(io("writing the memfd"))?;
    }
    rustix::fs::fcntl_add_seals(
        &memfd,
        SealFlags::SHRINK | SealFlags::GROW | SealFlags::WRITE | SealFlags::SEAL,
    )
    .map_err(io("sealing the memfd"))?;
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    let fds = [memfd.as_fd()];
    if !control.push(SendAncillaryMessage::ScmRights(&fds)) {
        return Err(SendError::Io {
            socket: socket.to_path_buf(),
            doing: "passing the memfd",
            cause: std::io::Error::other("no room for SCM_RIGHTS"),
        });
    }
    rustix::net::sendmsg_addr(&fd, &address, &[], &mut control, SendFlags::NOSIGNAL)
        .map_err(|e| classify(e, "sending the memfd"))?;
    Ok(Sent::Memfd)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixDatagram;

    fn temp_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("journal-native-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn entry() -> Fields {
        let mut fields = Fields::new();
        fields.push("MESSAGE", "hello");
        fields
    }

    #[test]
    fn where_journald_does_not_run_the_error_says_so() {
        let dir = temp_dir("absent");
        // No socket at all.
        let err = send(&entry(), &dir.join("socket"), Duration::from_secs(1)).unwrap_err();
        assert!(matches!(err, SendError::NotRunning { .. }), "{err}");
        assert!(
            err.to_string().contains("journald does not run here"),
            "{err}"
        );
        // A socket file nobody reads any more (a journald that died).
        let stale = dir.join("stale");
        drop(UnixDatagram::bind(&stale).unwrap());
        let err = send(&entry(), &stale, Duration::from_secs(1)).unwrap_err();
        assert!(matches!(err, SendError::NotRunning { .. }), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_journald_that_does_not_read_costs_the_timeout() {
        let dir = temp_dir("stuck");
        let path = dir.join("socket");
        let receiver = UnixDatagram::bind(&path).unwrap();
        let queue: usize = std::fs::read_to_string("/proc/sys/net/unix/max_dgram_qlen")
            .map_or(512, |q| q.trim().parse().unwrap_or(512));
        let timeout = Duration::from_millis(100);
        let mut outcome = None;
        for _ in 0..queue + 64 {
            let started = std::time::Instant::now();
            if let Err(err) = send(&entry(), &path, timeout) {
                outcome = Some((err, started.elapsed()));
                break;
            }
        }
        let (err, took) = outcome.expect("the queue never filled");
        assert!(matches!(err, SendError::Timeout { .. }), "{err}");
        assert!(took >= timeout && took < Duration::from_secs(5), "{took:?}");
        drop(receiver);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
