//! Which session daemon a fire acts in, and as whom.
//!
//! - [`DaemonTarget::Default`]: the daemon liblttng-ctl gives the caller
//!   (root: the root daemon; others: the root one when in the `tracing`
//!   group, else their own), acted in with the caller's identity.
//! - [`DaemonTarget::User`]: the per-user daemon of that uid (uid 0: the
//!   root daemon), acted in **as that uid, and never anyone else**. Nothing
//!   of the user's is looked at here, as root: the isolated child that has
//!   become the user checks, before it asks the daemon anything,
//!   [`check_own_run_dir`]: `~/.lttng` (home from the user database)
//!   opened without following symbolic links, a directory of the user's
//!   that nobody else may write, holding a socket of the user's. A
//!   symbolic link there (to another user's run directory, or to the root
//!   daemon's) is refused, and the record says so.
//! - [`DaemonTarget::RunDir`] (the C API's `socket_path`): a run directory,
//!   or a socket in it. `/var/run/lttng` (or a socket in it) is the root
//!   daemon. A user's `<home>/.lttng` (for example
//!   `/home/auser/.lttng/notify-lttng-sessiond`, the RFC's example) is the
//!   per-user daemon of the directory's owner, acted in as that user with
//!   `LTTNG_HOME=<home>`, and only when the path is safe to name that user
//!   by: an absolute path without `..`, every component opened from `/`
//!   without following a symbolic link, every directory owned by root or by
//!   that user and writable by nobody else, the run directory named
//!   `.lttng` and holding a client socket. Only root, or that user, may
//!   name it. A path that reaches another user's directory or the root run
//!   directory through a symbolic link is refused: whoever controls a
//!   component of a path can otherwise choose whom the caller acts as. The
//!   walk runs in an isolated child with the fire's deadline (a path on a
//!   file system that never answers costs the deadline, not the caller).
//!   A directory with no client socket names no daemon.

use super::DaemonTarget;
use crate::child::isolate::run_isolated;
use crate::identity::Identity;
use lttng_ctl::trigger::caller_uid;
use lttng_ctl::{Error, ErrorCode, Result};
use rustix::fs::{AtFlags, FileType, Mode, OFlags, Stat, CWD};
use rustix::io::Errno;
use serde::{Deserialize, Serialize};
use std::ffi::OsStr;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

pub use lttng_ctl::daemon::{CLIENT_SOCKET, ROOT_RUN_DIR};

/// The name liblttng-ctl gives a per-user run directory in `$LTTNG_HOME`.
const RUN_DIR_NAME: &str = ".lttng";

/// A resolved target.
#[derive(Debug, Clone)]
pub enum Daemon {
    /// Whatever liblttng-ctl picks for the caller.
    Default,
    /// The root session daemon, reached with the caller's identity.
    Root,
    /// A user's own session daemon, reached as that user (only).
    PerUser(Identity),
}

impl Daemon {
    /// The identity to act as in this daemon (none: the caller's own).
    pub fn identity(&self) -> Option<&Identity> {
        match self {
            Daemon::PerUser(identity) => Some(identity),
            Daemon::Default | Daemon::Root => None,
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Daemon::Default => "the default session daemon".into(),
            Daemon::Root => "the root session daemon".into(),
            Daemon::PerUser(id) => format!(
                "the session daemon of user {} (uid {}) in {}/.lttng",
                id.user_name(),
                id.uid(),
                id.lttng_home().unwrap_or(id.home()).display()
            ),
        }
    }
}

fn no_daemon(path: &Path, why: &str) -> Error {
    Error::with_message(
        ErrorCode::NoSessionDaemon,
        format!("{} names no session daemon: {why}", path.display()),
        format!("finding the session daemon of {}", path.display()),
    )
}

fn refused(path: &Path, why: impl Into<String>) -> Error {
    Error::with_message(
        ErrorCode::PermissionDenied,
        format!("refused: {}", why.into()),
        format!("finding the session daemon of {}", path.display()),
    )
}

/// Resolves `target`; a run directory is inspected in an isolated child
/// given at most `deadline`.
pub fn resolve(target: &DaemonTarget, deadline: Duration) -> Result<Daemon> {
    match target {
        DaemonTarget::Default => Ok(Daemon::Default),
        DaemonTarget::RunDir(path) => resolve_run_dir(path, deadline),
        DaemonTarget::User(0) => root_daemon(),
        DaemonTarget::User(uid) => {
            let identity = Identity::of_user(*uid)?;
            let home = identity.home().to_path_buf();
            Ok(Daemon::PerUser(
                identity.with_lttng_home(home).per_user_daemon(),
            ))
        }
    }
}

fn root_daemon() -> Result<Daemon> {
    let caller = caller_uid();
    if caller != 0 && !Identity::of_user(caller)?.can_reach_root_daemon() {
        return Err(Error::with_message(
            ErrorCode::PermissionDenied,
            format!(
                "uid {caller} is neither root nor in the `{}` group",
                lttng_ctl::daemon::TRACING_GROUP
            ),
            "reaching the root session daemon",
        ));
    }
    Ok(Daemon::Root)
}

/// What the walk of a run directory found.
#[derive(Debug, Serialize, Deserialize)]
enum Walked {
    /// A user's run directory, safe to act in as `owner`.
    User { owner: u32, home: PathBuf },
    /// An error: code and message.
    Failed { code: u32, message: String },
}

fn resolve_run_dir(path: &Path, deadline: Duration) -> Result<Daemon> {
    // A socket in the run directory need not exist: the RFC's
    // `notify-lttng-sessiond` is not one LTTng 2.13 creates.
    let root_run_dirs = [
        PathBuf::from(ROOT_RUN_DIR),
        Path::new(ROOT_RUN_DIR)
            .canonicalize()
            .unwrap_or_else(|_| PathBuf::from(ROOT_RUN_DIR)),
    ];
    if root_run_dirs
        .iter()
        .any(|root| path == root || path.parent() == Some(root.as_path()))
    {
        return root_daemon();
    }
    let bytes = run_isolated(deadline, || {
        let walked = match walk_run_dir(path) {
            Ok((owner, home)) => Walked::User { owner, home },
            Err(err) => Walked::Failed {
                code: err.raw_code(),
                message: err.message().to_string(),
            },
        };
        serde_json::to_vec(&walked).unwrap_or_default()
    })
    .map_err(|err| {
        Error::with_message(
            err.code(),
            format!("{} (inspecting {})", err.message(), path.display()),
            format!("finding the session daemon of {}", path.display()),
        )
    })?;
    let walked: Walked = serde_json::from_slice(&bytes).map_err(|e| {
        Error::with_message(
            ErrorCode::Fatal,
            format!("unreadable answer of the child inspecting it: {e}"),
            format!("finding the session daemon of {}", path.display()),
        )
    })?;
    let (owner, home) = match walked {
        Walked::User { owner, home } => (owner, home),
        Walked::Failed { code, message } => {
            return Err(Error::with_message(
                ErrorCode::from_raw(code),
                message,
                format!("finding the session daemon of {}", path.display()),
            ))
        }
    };
    let caller = caller_uid();
    if caller != 0 && caller != owner {
        return Err(Error::with_message(
            ErrorCode::PermissionDenied,
            format!("only root or uid {owner} may act in this session daemon"),
            format!("acting in the session daemon of {}", path.display()),
        ));
    }
    Ok(Daemon::PerUser(
        Identity::of_user(owner)?
            .with_lttng_home(home)
            .per_user_daemon(),
    ))
}

/// A directory opened without following a symbolic link, with its owner
/// and mode.
struct Opened {
    fd: OwnedFd,
    uid: u32,
    mode: u32,
}

/// `fstatat(dir, name, AT_SYMLINK_NOFOLLOW)`; `None` when it does not exist.
fn stat_at(dir: Option<&OwnedFd>, name: &OsStr) -> std::io::Result<Option<Stat>> {
    let dir = dir.map_or(CWD, |d| d.as_fd());
    match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(Some(st)),
        Err(Errno::NOENT) => Ok(None),
        Err(err) => Err(err.into()),
    }
}

/// Opens the directory `name` in `dir` (or the path `name` when `dir` is
/// `None`), never following a symbolic link in the last component.
fn open_dir_at(dir: Option<&OwnedFd>, name: &OsStr) -> std::io::Result<Opened> {
    open_directory(dir, name, OFlags::NOFOLLOW)
}

/// Opens a home directory, following links (see [`check_own_run_dir`]).
fn open_home(home: &Path) -> std::io::Result<Opened> {
    open_directory(None, home.as_os_str(), OFlags::empty())
}

/// Opens the directory `name` in `dir` (or the path `name` when `dir` is
/// `None`) with `extra_flags` besides the usual ones, and reads its owner
/// and mode through the descriptor.
fn open_directory(
    dir: Option<&OwnedFd>,
    name: &OsStr,
    extra_flags: OFlags,
) -> std::io::Result<Opened> {
    let dir = dir.map_or(CWD, |d| d.as_fd());
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC | extra_flags;
    let fd = rustix::fs::openat(dir, name, flags, Mode::empty())?;
    let st = rustix::fs::fstat(&fd)?;
    Ok(Opened {
        fd,
        uid: st.st_uid,
        mode: st.st_mode,
    })
}

fn is_type(st: &Stat, kind: FileType) -> bool {
    FileType::from_raw_mode(st.st_mode) == kind
}

/// Why a directory may not be trusted to name `owner`'s daemon, if it may not.
fn untrusted(dir: &Opened, owner: u32) -> Option<String> {
    if dir.uid != 0 && dir.uid != owner {
        return Some(format!("it is owned by uid {}", dir.uid));
    }
    if dir.mode & 0o022 != 0 {
        return Some(format!(
            "it is writable by others (mode {:o})",
            dir.mode & 0o7777
        ));
    }
    None
}

/// In an isolated child: walks `path` from `/` without following symbolic
/// links and says whose run directory it is (see the module documentation).
fn walk_run_dir(path: &Path) -> Result<(u32, PathBuf)> {
    if !path.is_absolute() {
        return Err(Error::with_message(
            ErrorCode::Invalid,
            format!("{} is not an absolute path", path.display()),
            format!("finding the session daemon of {}", path.display()),
        ));
    }
    let mut names = Vec::new();
    for component in path.components() {
        match component {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(name) => names.push(name),
            Component::ParentDir | Component::Prefix(_) => {
                return Err(refused(path, "a path with `..` names no run directory"))
            }
        }
    }
    let mut chain =
        vec![open_dir_at(None, OsStr::new("/")).map_err(|e| no_daemon(path, &format!("/: {e}")))?];
    let mut walked = PathBuf::from("/");
    for (i, name) in names.iter().enumerate() {
        let here = walked.join(name);
        let last = i + 1 == names.len();
        let st = stat_at(chain.last().map(|d| &d.fd), name)
            .map_err(|e| no_daemon(path, &format!("{}: {e}", here.display())))?;
        match st {
            Some(st) if is_type(&st, FileType::Symlink) => {
                return Err(refused(
                    path,
                    format!(
                        "{} is a symbolic link; a run directory is only reached without one",
                        here.display()
                    ),
                ))
            }
            Some(st) if is_type(&st, FileType::Directory) => {}
            // The last component may be a socket in the run directory, or
            // a name that does not exist (the RFC's notify socket).
            _ if last => break,
            None => {
                return Err(no_daemon(
                    path,
                    &format!("{} does not exist", here.display()),
                ))
            }
            Some(_) => {
                return Err(no_daemon(
                    path,
                    &format!("{} is not a directory", here.display()),
                ))
            }
        }
        let opened = open_dir_at(chain.last().map(|d| &d.fd), name).map_err(|e| {
            if e.raw_os_error() == Some(libc::ELOOP) {
                refused(path, format!("{} is a symbolic link", here.display()))
            } else {
                no_daemon(path, &format!("{}: {e}", here.display()))
            }
        })?;
        chain.push(opened);
        walked = here;
    }
    let run_dir = chain.last().expect("/ at least");
    let socket = stat_at(Some(&run_dir.fd), OsStr::new(CLIENT_SOCKET)).map_err(|e| {
        no_daemon(
            path,
            &format!("{}: {e}", walked.join(CLIENT_SOCKET).display()),
        )
    })?;
    match socket {
        Some(st) if is_type(&st, FileType::Socket) => {}
        Some(_) => {
            return Err(no_daemon(
                path,
                &format!("{} is not a socket", walked.join(CLIENT_SOCKET).display()),
            ))
        }
        None => {
            return Err(no_daemon(
                path,
                &format!("{} does not exist", walked.join(CLIENT_SOCKET).display()),
            ))
        }
    }
    let owner = run_dir.uid;
    let context = || format!("acting in the session daemon of {}", walked.display());
    if owner == 0 {
        return Err(Error::with_message(
            ErrorCode::Invalid,
            format!(
                "root's session daemon runs in {ROOT_RUN_DIR}, not in {}",
                walked.display()
            ),
            context(),
        ));
    }
    if walked.file_name() != Some(OsStr::new(RUN_DIR_NAME)) {
        return Err(Error::with_message(
            ErrorCode::Invalid,
            format!(
                "liblttng-ctl finds a per-user session daemon only in $LTTNG_HOME/.lttng, and {} is not named .lttng",
                walked.display()
            ),
            context(),
        ));
    }
    let mut so_far = PathBuf::from("/");
    for (dir, name) in chain
        .iter()
        .zip(std::iter::once(OsStr::new("")).chain(names))
    {
        so_far.push(name);
        if let Some(why) = untrusted(dir, owner) {
            return Err(refused(
                path,
                format!(
                    "{} cannot be trusted to name the session daemon of uid {owner}: {why}",
                    so_far.display()
                ),
            ));
        }
    }
    let home = walked.parent().unwrap_or(Path::new("/")).to_path_buf();
    Ok((owner, home))
}

/// In the isolated child that has become the daemon's user, before it asks
/// the daemon anything: checks that `$LTTNG_HOME/.lttng` (the identity's
/// home unless set) is a real directory of the user's, reached without
/// following a symbolic link from the home directory, that nobody else may
/// write, holding a socket of the user's. `Ok(false)`: there is no daemon
/// (no `.lttng`, or no client socket in it), nothing to report.
pub fn check_own_run_dir(identity: &Identity) -> Result<bool> {
    let home = identity.lttng_home().unwrap_or(identity.home());
    let run_dir = home.join(RUN_DIR_NAME);
    let uid = identity.uid();
    // The home directory itself comes from the user database (or the
    // caller), not from the user: it may be reached through a link.
    let home_dir = open_home(home).map_err(|e| {
        refused(
            &run_dir,
            format!("the home directory {}: {e}", home.display()),
        )
    })?;
    if let Some(why) = untrusted(&home_dir, uid) {
        return Err(refused(
            &run_dir,
            format!("the home directory {}: {why}", home.display()),
        ));
    }
    let st = stat_at(Some(&home_dir.fd), OsStr::new(RUN_DIR_NAME))
        .map_err(|e| refused(&run_dir, e.to_string()))?;
    match st {
        None => return Ok(false),
        Some(st) if is_type(&st, FileType::Symlink) => {
            return Err(refused(
                &run_dir,
                format!(
                    "{} is a symbolic link; a user's session daemon is looked for only in a real directory of theirs",
                    run_dir.display()
                ),
            ))
        }
        Some(_) => {}
    }
    let dir = open_dir_at(Some(&home_dir.fd), OsStr::new(RUN_DIR_NAME)).map_err(|e| {
        if e.raw_os_error() == Some(libc::ELOOP) {
            refused(
                &run_dir,
                format!("{} is a symbolic link", run_dir.display()),
            )
        } else {
            refused(&run_dir, format!("{}: {e}", run_dir.display()))
        }
    })?;
    if dir.uid != uid || dir.mode & 0o022 != 0 {
        return Err(refused(
            &run_dir,
            format!(
                "{} is not a directory of uid {uid}'s that only it may write (owner {}, mode {:o})",
                run_dir.display(),
                dir.uid,
                dir.mode & 0o7777
            ),
        ));
    }
    match stat_at(Some(&dir.fd), OsStr::new(CLIENT_SOCKET))
        .map_err(|e| refused(&run_dir, e.to_string()))?
    {
        None => Ok(false),
        Some(st) if is_type(&st, FileType::Socket) && st.st_uid == uid => Ok(true),
        Some(st) if is_type(&st, FileType::Socket) => Err(refused(
            &run_dir,
            format!(
                "{}/{CLIENT_SOCKET} is owned by uid {}, not {uid}",
                run_dir.display(),
                st.st_uid
            ),
        )),
        Some(_) => Ok(false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_dirs_reached_through_a_link_or_a_writable_directory_are_refused() {
        let base = std::env::temp_dir().join(format!("target-walk-{}", std::process::id()));
        let run_dir = base.join("home/.lttng");
        std::fs::create_dir_all(&run_dir).unwrap();
        let _socket = std::os::unix::net::UnixListener::bind(run_dir.join(CLIENT_SOCKET)).unwrap();
        // A user's (nobody's), as a per-user run directory is.
        for dir in [base.join("home"), run_dir.clone()] {
            std::os::unix::fs::chown(&dir, Some(65534), Some(65534)).unwrap();
        }
        std::os::unix::fs::symlink(&run_dir, base.join("link")).unwrap();
        std::os::unix::fs::symlink(base.join("home"), base.join("homelink")).unwrap();
        let deadline = Duration::from_secs(10);
        for (path, expected) in [
            (base.join("link"), "symbolic link"),
            (base.join("homelink/.lttng"), "symbolic link"),
            (
                base.join("homelink/.lttng/notify-lttng-sessiond"),
                "symbolic link",
            ),
            (base.join("home/../home/.lttng"), "`..`"),
            // /tmp is writable by every user: nothing under it names a daemon.
            (run_dir.clone(), "writable by others"),
        ] {
            let err = resolve(&DaemonTarget::RunDir(path.clone()), deadline).unwrap_err();
            assert!(
                err.message().contains(expected),
                "{}: {err}",
                path.display()
            );
        }
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn paths_without_a_daemon_are_refused() {
        for path in [
            "/nonexistent/.lttng",
            "/nonexistent/.lttng/notify-lttng-sessiond",
            "/tmp",
            "/etc/passwd",
        ] {
            let err = resolve(
                &DaemonTarget::RunDir(path.into()),
                std::time::Duration::from_secs(10),
            )
            .unwrap_err();
            assert_eq!(err.code(), ErrorCode::NoSessionDaemon, "{path}: {err}");
        }
    }
}
