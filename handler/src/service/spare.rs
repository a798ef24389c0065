//! The spare: the process of the next crash, started before that crash
//! comes (`serve --crash-on-stdin --spare`), so that starting a process
//! (the fork and exec, the dynamic linking of liblttng-ctl and the
//! libraries it pulls in: libxml2, ICU, libstdc++, the option parsing) is
//! off the crash's clock. The service keeps one; when a crash is accepted,
//! the spare gets its connection over its line to the service (`relay`),
//! passed with SCM_RIGHTS beside the uid's share of the workers, and from
//! then on it is that crash's process, exactly as one started for it
//! ([`super::serve::run_one_crash`]); the service starts the next spare once
//! the crash waits for its worker.
//!
//! A spare holds no crash until it gets one: when its line ends first
//! (the service stopped, or was killed), it exits having done nothing.
//! When the spare cannot take the connection (it died, or its line broke),
//! the service starts a process for the crash as it did before spares.

use anyhow::Context as _;
use std::io::{self, IoSlice, IoSliceMut, Read};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// The message that hands a spare its crash: this byte, then the share
/// (u32, little-endian, [`NO_SHARE`] for none), the connection beside it.
const CRASH: u8 = b'c';
/// The share of a crash that has none.
const NO_SHARE: u32 = u32::MAX;
const MESSAGE_LEN: usize = 5;

/// A spare the service keeps: the process and the service's end of its
/// line.
pub struct Spare {
    child: Child,
    line: UnixStream,
}

impl Spare {
    /// Starts one: this program's `serve --crash-on-stdin --spare`, its end
    /// of its line on its standard output, nothing on its standard input,
    /// the service's standard error (its log) on its own.
    pub fn start(config: Option<&Path>) -> anyhow::Result<Spare> {
        let program = std::env::current_exe().context("cannot tell where this program is")?;
        // Both ends close on exec: only the spare gets its end.
        let (ours, theirs) = UnixStream::pair().context("cannot create a socket pair")?;
        let mut command = Command::new(program);
        command.args(["serve", "--crash-on-stdin", "--spare"]);
        if let Some(config) = config {
            command.arg("--config").arg(config);
        }
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::from(OwnedFd::from(theirs)))
            .spawn()
            .context("cannot start a spare crash process")?;
        Ok(Spare { child, line: ours })
    }

    /// Hands the spare the crash on `connection` with its uid's `share`:
    /// the crash's process and its line, as [`super::serve`] starts one;
    /// an error when the spare cannot take it (it is then ended).
    pub fn hand(
        mut self,
        connection: &UnixStream,
        share: Option<u32>,
    ) -> anyhow::Result<(Child, UnixStream)> {
        if let Ok(Some(status)) = self.child.try_wait() {
            anyhow::bail!("the spare crash process ended ({status})");
        }
        let mut message = [0u8; MESSAGE_LEN];
        message[0] = CRASH;
        message[1..].copy_from_slice(&share.unwrap_or(NO_SHARE).to_le_bytes());
        let fds = [connection.as_fd()];
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
        let mut control = rustix::net::SendAncillaryBuffer::new(&mut space);
        control.push(rustix::net::SendAncillaryMessage::ScmRights(&fds));
        let sent = rustix::net::sendmsg(
            &self.line,
            &[IoSlice::new(&message)],
            &mut control,
            rustix::net::SendFlags::NOSIGNAL,
        );
        match sent {
            Ok(MESSAGE_LEN) => Ok((self.child, self.line)),
            Ok(n) => {
                self.dismiss();
                anyhow::bail!("the spare crash process took {n} bytes of its crash's message")
            }
            Err(err) => {
                self.dismiss();
                Err(err).context("the spare crash process cannot take its crash")
            }
        }
    }

    /// Ends it: its line closed, it exits with nothing done (a spare holds
    /// no crash); reaped.
    pub fn dismiss(mut self) {
        drop(self.line);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// In the spare: waits for its crash on `line` (without a bound: the
/// service decides, and its end closes the line if it dies). The
/// connection and the uid's share, or `None` when the line ended first.
pub fn wait_for_crash(line: &UnixStream) -> io::Result<Option<(UnixStream, Option<u32>)>> {
    let mut message = [0u8; MESSAGE_LEN];
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = rustix::net::RecvAncillaryBuffer::new(&mut space);
    let received = loop {
        match rustix::net::recvmsg(
            line,
            &mut [IoSliceMut::new(&mut message)],
            &mut control,
            rustix::net::RecvFlags::CMSG_CLOEXEC,
        ) {
            Ok(received) => break received,
            Err(rustix::io::Errno::INTR) => continue,
            Err(err) => return Err(err.into()),
        }
    };
    let mut connection = None;
    for cmsg in control.drain() {
        if let rustix::net::RecvAncillaryMessage::ScmRights(fds) = cmsg {
            for fd in fds {
                connection.get_or_insert(fd);
            }
        }
    }
    if received.bytes == 0 {
        return Ok(None);
    }
    // A stream may split the message: the rest follows.
    (&*line).read_exact(&mut message[received.bytes..])?;
    let connection = connection
        .filter(|_| message[0] == CRASH)
        .ok_or_else(|| io::Error::other("the service's message holds no connection"))?;
    let share = u32::from_le_bytes(message[1..].try_into().expect("4 bytes"));
    Ok(Some((
        UnixStream::from(connection),
        (share != NO_SHARE).then_some(share),
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// A spare stand-in: the line's other end, as `Spare` holds it.
    fn spare_with(line: UnixStream) -> Spare {
        let child = Command::new("sleep")
            .arg("3600")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        Spare { child, line }
    }

    #[test]
    fn the_connection_and_the_share_cross_the_line_and_the_crash_is_the_same() {
        for share in [Some(3), None] {
            let (service, spare_end) = UnixStream::pair().unwrap();
            let (kernel, connection) = UnixStream::pair().unwrap();
            let spare = spare_with(service);
            let (mut child, line) = spare.hand(&connection, share).unwrap();
            drop(connection);
            let (got, got_share) = wait_for_crash(&spare_end).unwrap().unwrap();
            assert_eq!(got_share, share);
            // The connection received is the kernel's peer.
            (&kernel).write_all(b"core").unwrap();
            let mut read = [0u8; 4];
            (&got).read_exact(&mut read).unwrap();
            assert_eq!(&read, b"core");
            // The line goes on carrying the service's word after it.
            (&line).write_all(&[crate::service::relay::GO]).unwrap();
            let mut word = [0u8; 1];
            (&spare_end).read_exact(&mut word).unwrap();
            assert_eq!(word[0], crate::service::relay::GO);
            let _ = child.kill();
            child.wait().unwrap();
        }
    }

    #[test]
    fn a_line_that_ends_first_gives_no_crash_and_a_dead_spare_takes_none() {
        let (service, spare_end) = UnixStream::pair().unwrap();
        spare_with(service).dismiss();
        assert!(wait_for_crash(&spare_end).unwrap().is_none());

        let (service, spare_end) = UnixStream::pair().unwrap();
        let mut spare = spare_with(service);
        spare.child.kill().unwrap();
        spare.child.wait().unwrap();
        drop(spare_end);
        let (_kernel, connection) = UnixStream::pair().unwrap();
        assert!(spare.hand(&connection, None).is_err());
    }
}
