//! Where the crash service's listening socket comes from, so that it can
//! outlive the process that serves it: the kernel drops the core of every
//! crash that finds nothing listening (`Coredump socket connection PATH
//! failed -111`), while a socket that is held keeps each crash waiting in
//! its backlog, the process held by the kernel, until a service accepts it.
//!
//! - **Passed by a service manager**: systemd's socket activation
//!   (`lttng-coredump.socket`, `ListenStream=`; `LISTEN_PID`, `LISTEN_FDS`,
//!   `LISTEN_FDNAMES`), which keeps the socket while the service restarts.
//! - **Held by `serve --hold`**: lttng-coredump's own holder, for machines
//!   without systemd, binds the socket and runs the service as its child
//!   with the socket on its standard input, restarting it whenever it dies.
//! - **Bound by `serve` itself**: then the socket dies with the service.
//!
//! In every case the socket must be the one `--socket` names, in a
//! directory only root can write (someone else could replace it), and only
//! root may connect (0600).

use anyhow::{anyhow, Context as _};
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;

/// Connections the kernel may queue while no worker accepts (every worker
/// busy, or the service restarting): its connect is non-blocking, so a
/// full queue would lose the core. The kernel caps it at
/// `net.core.somaxconn` (4096 by default).
pub const LISTEN_BACKLOG: i32 = 1024;

/// Who made the listening socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// `serve` bound it: it removes the socket file when it stops.
    Bound,
    /// A service manager passed it (LISTEN_FDS): the manager keeps it.
    ServiceManager,
    /// `serve --hold` passed it on standard input: the holder keeps it.
    Holder,
}

impl Origin {
    /// Whether the socket outlives the service (another process holds it).
    pub fn held(self) -> bool {
        self != Origin::Bound
    }

    pub fn describe(self) -> &'static str {
        match self {
            Origin::Bound => "bound by the service (it goes when the service stops)",
            Origin::ServiceManager => {
                "passed by the service manager, which holds it while the service restarts"
            }
            Origin::Holder => "held by serve --hold, which restarts the service",
        }
    }
}

/// The listening socket for `socket`: the one a service manager passed,
/// else the one on standard input when `from_stdin` (the holder's), else a
/// new one bound here.
pub fn listener(socket: &Path, from_stdin: bool) -> anyhow::Result<(UnixListener, Origin)> {
    let passed = coredump_socket::listen_fds()
        .context("cannot take the sockets the service manager passed")?;
    if !passed.is_empty() {
        let mut found = None;
        let mut seen = Vec::new();
        for (fd, name) in passed {
            match bound_path(&fd) {
                Ok(path) if path == socket && found.is_none() => found = Some(fd),
                Ok(path) => seen.push(format!("{} ({name:?})", path.display())),
                Err(why) => seen.push(format!("a descriptor named {name:?}: {why}")),
            }
        }
        let fd = found.ok_or_else(|| {
            anyhow!(
                "the service manager passed no listening socket on {} (it passed: {}); make the \
                 socket unit's ListenStream= and serve's --socket the same path",
                socket.display(),
                seen.join(", ")
            )
        })?;
        check_place(socket)?;
        return Ok((UnixListener::from(fd), Origin::ServiceManager));
    }
    if from_stdin {
        let fd = io::stdin()
            .as_fd()
            .try_clone_to_owned()
            .context("cannot take the listening socket on standard input")?;
        // Standard input is the socket's only while it is taken.
        let null = std::fs::File::open("/dev/null").context("cannot open /dev/null")?;
        rustix::stdio::dup2_stdin(&null).context("cannot point standard input at /dev/null")?;
        let path = bound_path(&fd).map_err(|why| anyhow!("standard input: {why}"))?;
        if path != socket {
            return Err(anyhow!(
                "the socket on standard input listens on {}, not {}",
                path.display(),
                socket.display()
            ));
        }
        check_place(socket)?;
        return Ok((UnixListener::from(fd), Origin::Holder));
    }
    Ok((bind(socket)?, Origin::Bound))
}

/// The path a listening Unix stream socket is bound to, or why `fd` is not
/// one.
fn bound_path(fd: &OwnedFd) -> Result<std::path::PathBuf, String> {
    let kind = rustix::net::sockopt::socket_type(fd).map_err(|e| format!("not a socket ({e})"))?;
    if kind != rustix::net::SocketType::STREAM {
        return Err("not a stream socket".into());
    }
    if !rustix::net::sockopt::socket_acceptconn(fd).map_err(|e| e.to_string())? {
        return Err("not listening".into());
    }
    let address = rustix::net::getsockname(fd).map_err(|e| e.to_string())?;
    let unix = rustix::net::SocketAddrUnix::try_from(address)
        .map_err(|_| "not a Unix socket".to_string())?;
    let path = unix
        .path()
        .ok_or_else(|| "not bound to a path".to_string())?;
    Ok(std::path::PathBuf::from(
        <std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(path.to_bytes()),
    ))
}

/// The metadata of `dir`, when it is a directory owned by root and
/// writable only by root (else someone else could replace the socket).
fn root_only_dir(dir: &Path) -> anyhow::Result<std::fs::Metadata> {
    let metadata = std::fs::symlink_metadata(dir)
        .with_context(|| format!("cannot inspect {}", dir.display()))?;
    if !metadata.is_dir() || metadata.uid() != 0 || metadata.mode() & 0o022 != 0 {
        return Err(anyhow!(
            "{} must be a directory owned by root and writable only by root (someone else could \
             replace the socket)",
            dir.display()
        ));
    }
    Ok(metadata)
}

/// Checks that the socket's directory is root's and writable only by root,
/// and the socket itself 0600 (only root connects; the kernel connects
/// with its own credentials).
fn check_place(socket: &Path) -> anyhow::Result<()> {
    let dir = socket
        .parent()
        .filter(|dir| dir.is_absolute())
        .with_context(|| format!("the socket path {} must be absolute", socket.display()))?;
    root_only_dir(dir)?;
    let socket_metadata = std::fs::symlink_metadata(socket)
        .with_context(|| format!("cannot inspect {}", socket.display()))?;
    if socket_metadata.mode() & 0o077 != 0 {
        std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("cannot make {} private", socket.display()))?;
    }
    Ok(())
}

/// Creates the socket: its directory root-owned 0700 (created if missing),
/// the socket 0600, so that no one but root can connect (the kernel
/// connects with its own credentials). A stale socket of a killed service
/// is replaced; a live one is not.
pub fn bind(socket: &Path) -> anyhow::Result<UnixListener> {
    let dir = socket
        .parent()
        .filter(|dir| dir.is_absolute())
        .with_context(|| format!("the socket path {} must be absolute", socket.display()))?;
    if socket.as_os_str().len() > 107 {
        return Err(anyhow!(
            "the socket path {} is longer than the 107 bytes a Unix socket may have",
            socket.display()
        ));
    }
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => {}
        Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {}
        Err(err) => return Err(err).with_context(|| format!("cannot create {}", dir.display())),
    }
    let metadata = root_only_dir(dir)?;
    if metadata.mode() & 0o077 != 0 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("cannot make {} private", dir.display()))?;
    }
    match std::fs::symlink_metadata(socket) {
        Ok(existing) if existing.file_type().is_socket() => {
            if UnixStream::connect(socket).is_ok() {
                return Err(anyhow!(
                    "another service already listens on {}",
                    socket.display()
                ));
            }
            std::fs::remove_file(socket)
                .with_context(|| format!("cannot remove the stale {}", socket.display()))?;
        }
        Ok(_) => {
            return Err(anyhow!(
                "{} exists and is not a socket; not replacing it",
                socket.display()
            ))
        }
        Err(_) => {}
    }
    // Bound 0600 from the start (no window where others could connect).
    let old_mask = rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o177));
    let bound = UnixListener::bind(socket);
    rustix::process::umask(old_mask);
    let listener = bound.with_context(|| format!("cannot listen on {}", socket.display()))?;
    rustix::net::listen(&listener, LISTEN_BACKLOG)
        .with_context(|| format!("cannot listen on {}", socket.display()))?;
    Ok(listener)
}

/// Whether anything takes the crashes a socket line sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// The service answered with its greeting.
    Alive(String),
    /// The socket takes connections (they wait in its backlog) but no
    /// service answered: one restarting, hung, or not ours.
    NotAnswering(String),
    /// Nothing listens: the kernel cannot connect and drops every core.
    None(String),
}

/// What a crash sent to `socket` would meet now.
pub fn state(socket: &Path) -> State {
    if let Err(err) = UnixStream::connect(socket) {
        let why = match err.raw_os_error() {
            Some(libc_errno) if libc_errno == rustix::io::Errno::CONNREFUSED.raw_os_error() => {
                "the socket file is there, but no process listens on it (ECONNREFUSED: the \
                 kernel logs \"Coredump socket connection ... failed -111\")"
                    .to_string()
            }
            Some(libc_errno) if libc_errno == rustix::io::Errno::NOENT.raw_os_error() => {
                "there is no socket there (ENOENT)".to_string()
            }
            _ => err.to_string(),
        };
        return State::None(why);
    }
    match crate::service::probe::probe(socket) {
        Ok(greeting) => State::Alive(greeting),
        Err(why) => State::NotAnswering(why),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listening_socket_is_told_from_other_descriptors() {
        let dir = std::env::temp_dir().join(format!("handler-listen-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("s");
        let listener = UnixListener::bind(&path).unwrap();
        let fd = OwnedFd::from(listener);
        assert_eq!(bound_path(&fd).unwrap(), path);
        let (a, _b) = UnixStream::pair().unwrap();
        assert_eq!(bound_path(&OwnedFd::from(a)).unwrap_err(), "not listening");
        let file = OwnedFd::from(std::fs::File::open("/dev/null").unwrap());
        assert!(bound_path(&file).unwrap_err().contains("not a socket"));

        // A socket file with no process behind it, one nobody answers on,
        // and no socket at all.
        assert!(
            matches!(state(&path), State::NotAnswering(_)),
            "{:?}",
            state(&path)
        );
        drop(fd);
        match state(&path) {
            State::None(why) => assert!(why.contains("ECONNREFUSED"), "{why}"),
            other => panic!("{other:?}"),
        }
        std::fs::remove_file(&path).unwrap();
        match state(&path) {
            State::None(why) => assert!(why.contains("ENOENT"), "{why}"),
            other => panic!("{other:?}"),
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
