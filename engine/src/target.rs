//! Which session daemon a fire acts in, and as whom.
//!
//! - [`DaemonTarget::Default`]: the daemon liblttng-ctl gives the caller
//!   (root: the root daemon; others: the root one when in the `tracing`
//!   group, else their own), acted in with the caller's identity.
//! - A run directory, or a socket in it: `/var/run/lttng` (or a socket in
//!   it) is the root daemon. `<home>/.lttng` (for example
//!   `/home/auser/.lttng/notify-lttng-sessiond`, the RFC's example) is the
//!   per-user daemon of the directory's owner, acted in as that user with
//!   `LTTNG_HOME=<home>`; only root (or the owner) may do that. A directory
//!   with no `client-lttng-sessiond` socket names no daemon.
//! - [`DaemonTarget::User`]: the per-user daemon in that user's home
//!   directory (uid 0: the root daemon).

use super::DaemonTarget;
use crate::identity::Identity;
use lttng_ctl::trigger::caller_uid;
use lttng_ctl::{Error, ErrorCode, Result};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

pub use lttng_ctl::daemon::{CLIENT_SOCKET, ROOT_RUN_DIR};

/// A resolved target.
#[derive(Debug, Clone)]
pub enum Daemon {
    /// Whatever liblttng-ctl picks for the caller.
    Default,
    /// The root session daemon, reached with the caller's identity.
    Root,
    /// A user's own session daemon, reached as that user.
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

/// Resolves `target`.
pub fn resolve(target: &DaemonTarget) -> Result<Daemon> {
    match target {
        DaemonTarget::Default => Ok(Daemon::Default),
        DaemonTarget::RunDir(path) => resolve_run_dir(path),
        DaemonTarget::User(0) => root_daemon(),
        DaemonTarget::User(uid) => {
            let identity = Identity::of_user(*uid)?;
            let run_dir = identity.home().join(".lttng");
            resolve_run_dir(&run_dir)
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

fn resolve_run_dir(path: &Path) -> Result<Daemon> {
    // A socket in the run directory need not exist: the RFC's
    // `notify-lttng-sessiond` is not one LTTng 2.13 creates.
    let dir: PathBuf = if path.is_dir() {
        path.to_path_buf()
    } else {
        path.parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .to_path_buf()
    };
    let dir = dir
        .canonicalize()
        .map_err(|e| no_daemon(path, &e.to_string()))?;
    let socket = dir.join(CLIENT_SOCKET);
    match std::fs::metadata(&socket) {
        Ok(m) if m.file_type().is_socket() => {}
        Ok(_) => {
            return Err(no_daemon(
                path,
                &format!("{} is not a socket", socket.display()),
            ))
        }
        Err(e) => return Err(no_daemon(path, &format!("{}: {e}", socket.display()))),
    }
    let root_run_dir = Path::new(ROOT_RUN_DIR).canonicalize().ok();
    if root_run_dir.as_deref() == Some(dir.as_path()) {
        return root_daemon();
    }
    let context = || format!("acting in the session daemon of {}", dir.display());
    let owner = std::fs::metadata(&dir)
        .map_err(|e| no_daemon(path, &e.to_string()))?
        .uid();
    if owner == 0 {
        return Err(Error::with_message(
            ErrorCode::Invalid,
            format!(
                "root's session daemon runs in {ROOT_RUN_DIR}, not in {}",
                dir.display()
            ),
            context(),
        ));
    }
    if dir.file_name().is_none_or(|n| n != ".lttng") {
        return Err(Error::with_message(
            ErrorCode::Invalid,
            format!(
                "liblttng-ctl finds a per-user session daemon only in $LTTNG_HOME/.lttng, and {} is not named .lttng",
                dir.display()
            ),
            context(),
        ));
    }
    let caller = caller_uid();
    if caller != 0 && caller != owner {
        return Err(Error::with_message(
            ErrorCode::PermissionDenied,
            format!("only root or uid {owner} may act in this session daemon"),
            context(),
        ));
    }
    let home = dir.parent().unwrap_or(Path::new("/")).to_path_buf();
    Ok(Daemon::PerUser(
        Identity::of_user(owner)?
            .with_lttng_home(home)
            .per_user_daemon(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_without_a_daemon_are_refused() {
        for path in [
            "/nonexistent/.lttng",
            "/nonexistent/.lttng/notify-lttng-sessiond",
            "/tmp",
            "/etc/passwd",
        ] {
            let err = resolve(&DaemonTarget::RunDir(path.into())).unwrap_err();
            assert_eq!(err.code(), ErrorCode::NoSessionDaemon, "{path}: {err}");
        }
    }
}
