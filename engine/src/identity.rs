//! Acting as another user: who a user is (from the user database), and
//! running liblttng-ctl work in a forked child that has become that user and
//! talks to the right session daemon.
//!
//! The session daemon decides what a client may do from the credentials of
//! its socket (`SO_PEERCRED`), so acting "as user U" means being U: the
//! child drops root for good, without touching the caller. The child itself
//! is `child::isolate`'s (deadline, reaping); this module is its set-up.

use crate::child::isolate::{run_isolated_with, Options};
use lttng_ctl::daemon::{use_per_user_daemon_only, TRACING_GROUP};
use lttng_ctl::{Error, ErrorCode, Result};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::ffi::{c_char, c_int, CStr, CString, OsStr};
use std::os::fd::BorrowedFd;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Who the child acts as, and which session daemon liblttng-ctl connects to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    uid: u32,
    gid: u32,
    groups: Vec<u32>,
    user_name: String,
    home: PathBuf,
    lttng_home: Option<PathBuf>,
    per_user_daemon: bool,
}

/// Calls a reentrant user-database lookup (`getpwuid_r`, `getgrnam_r`) with
/// a buffer that grows while the entry does not fit (`ERANGE`), and reads
/// the entry found while the buffer its strings point into is alive.
/// `None` when there is no such entry or the lookup failed.
///
/// `E` is `libc::passwd` or `libc::group`: plain C structs for which all
/// zeroes (NULL pointers) is a valid out-value.
fn lookup<E, T>(
    call: impl Fn(*mut E, *mut c_char, usize, *mut *mut E) -> c_int,
    read: impl FnOnce(&E) -> T,
) -> Option<T> {
    // SAFETY: sysconf has no memory effects.
    let hint = unsafe { libc::sysconf(libc::_SC_GETPW_R_SIZE_MAX) };
    let mut size = usize::try_from(hint)
        .ok()
        .filter(|&s| s > 0)
        .unwrap_or(16 * 1024);
    loop {
        let mut buf = vec![0u8; size];
        // SAFETY: `E` is passwd or group (see above): all zeroes is valid.
        let mut entry: E = unsafe { std::mem::zeroed() };
        let mut found: *mut E = std::ptr::null_mut();
        let rc = call(&mut entry, buf.as_mut_ptr().cast(), buf.len(), &mut found);
        if rc == libc::ERANGE && size < 1 << 20 {
            size *= 4;
            continue;
        }
        return (rc == 0 && !found.is_null()).then(|| read(&entry));
    }
}

impl Identity {
    /// The user with `uid`, with their primary group and every
    /// supplementary group (as `initgroups` would give them), read from the
    /// user database now, in the calling process.
    pub fn of_user(uid: u32) -> Result<Identity> {
        let context = || format!("looking up the user with uid {uid}");
        let found = lookup(
            // SAFETY: all pointers are valid for the given sizes.
            |pwd, buf, len, found| unsafe { libc::getpwuid_r(uid, pwd, buf, len, found) },
            |pwd: &libc::passwd| {
                // SAFETY: on success the strings point into the lookup's
                // buffer, alive while `read` runs.
                let (name, dir) =
                    unsafe { (CStr::from_ptr(pwd.pw_name), CStr::from_ptr(pwd.pw_dir)) };
                (
                    name.to_string_lossy().into_owned(),
                    pwd.pw_gid,
                    PathBuf::from(OsStr::from_bytes(dir.to_bytes())),
                )
            },
        );
        let Some((user_name, gid, home)) = found else {
            return Err(Error::with_message(
                ErrorCode::Invalid,
                format!("no user has uid {uid}"),
                context(),
            ));
        };
        let groups = group_list(&user_name, gid)
            .map_err(|message| Error::with_message(ErrorCode::Fatal, message, context()))?;
        Ok(Identity {
            uid,
            gid,
            groups,
            user_name,
            home,
            lttng_home: None,
            per_user_daemon: false,
        })
    }

    /// Sets `LTTNG_HOME` in the child: liblttng-ctl looks for a per-user
    /// daemon in `<dir>/.lttng`.
    pub fn with_lttng_home(mut self, dir: impl Into<PathBuf>) -> Identity {
        self.lttng_home = Some(dir.into());
        self
    }

    /// Makes liblttng-ctl use the user's own session daemon (in
    /// `$LTTNG_HOME/.lttng`, the home directory unless set) and never the
    /// root one, which a member of the tracing group would otherwise reach
    /// first. Root has no per-user daemon: running such work as root fails.
    pub fn per_user_daemon(mut self) -> Identity {
        self.per_user_daemon = true;
        self
    }

    /// The user's uid.
    pub fn uid(&self) -> u32 {
        self.uid
    }

    /// The user's primary group.
    pub fn gid(&self) -> u32 {
        self.gid
    }

    /// Every group of the user, the primary one included.
    pub fn groups(&self) -> &[u32] {
        &self.groups
    }

    /// The user's login name.
    pub fn user_name(&self) -> &str {
        &self.user_name
    }

    /// The user's home directory (from the user database).
    pub fn home(&self) -> &Path {
        &self.home
    }

    /// The `LTTNG_HOME` the child gets, when set.
    pub fn lttng_home(&self) -> Option<&Path> {
        self.lttng_home.as_deref()
    }

    /// Whether the child uses the user's own session daemon.
    pub fn is_per_user_daemon(&self) -> bool {
        self.per_user_daemon
    }

    /// Whether liblttng-ctl would connect this user to the root session
    /// daemon: root, or a member of the tracing group.
    pub fn can_reach_root_daemon(&self) -> bool {
        self.uid == 0 || group_id(TRACING_GROUP).is_some_and(|gid| self.groups.contains(&gid))
    }
}

/// Every group of `user` (`getgrouplist`), `gid` included.
fn group_list(user: &str, gid: u32) -> std::result::Result<Vec<u32>, String> {
    let c_user = CString::new(user).map_err(|_| format!("user name {user:?} has a NUL byte"))?;
    let mut count: c_int = 32;
    loop {
        let mut groups = vec![0 as libc::gid_t; count as usize];
        let asked = count;
        // SAFETY: `groups` has room for `count` entries; count is updated.
        let rc =
            unsafe { libc::getgrouplist(c_user.as_ptr(), gid, groups.as_mut_ptr(), &mut count) };
        if rc >= 0 {
            groups.truncate(count as usize);
            return Ok(groups);
        }
        if count <= asked {
            // glibc reports the needed size; guard against one that does not.
            if asked >= 65536 {
                return Err(format!("could not read the groups of user {user:?}"));
            }
            count = asked * 2;
        }
    }
}

/// The id of the group named `name`, if it exists.
pub fn group_id(name: &str) -> Option<u32> {
    let c_name = CString::new(name).ok()?;
    lookup(
        // SAFETY: all pointers are valid for the given sizes.
        |grp, buf, len, found| unsafe { libc::getgrnam_r(c_name.as_ptr(), grp, buf, len, found) },
        |grp: &libc::group| grp.gr_gid,
    )
}

/// Closes every descriptor from 3 up, for a process about to take another
/// identity and exec a program of that identity's (see the handler's
/// `user_child`): a descriptor its parent inherited without close-on-exec
/// (a terminal of root's, a pipe of a shell's) must not reach that program.
///
/// Call it only at the very start of a process's `main`, before anything
/// the process owns is open: it closes descriptors no Rust object of this
/// process holds yet.
pub fn close_descriptors_from_3() -> std::io::Result<()> {
    // SAFETY: close_range only closes descriptors; the caller promises
    // none of them is owned by anything of this process (see above).
    let rc = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            3 as libc::c_uint,
            libc::c_uint::MAX,
            0,
        )
    };
    if rc == 0 {
        return Ok(());
    }
    // Kernels before 5.9: the descriptors /proc lists, one by one (the
    // listing's own descriptor is closed too, which ends it).
    let listed: Vec<c_int> = std::fs::read_dir("/proc/self/fd")?
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse().ok())
        .filter(|&fd: &c_int| fd > 2)
        .collect();
    for fd in listed {
        // SAFETY: as above; a descriptor already closed gives EBADF.
        unsafe { libc::close(fd) };
    }
    Ok(())
}

/// Runs `work` in a forked child, as `identity` when given (else as the
/// caller), under `deadline`, and returns the bytes it produced.
///
/// Errors: those of [`crate::child::isolate::run_isolated`], and
/// [`ErrorCode::PermissionDenied`] when the identity could not be taken.
pub fn run_as(
    deadline: Duration,
    identity: Option<&Identity>,
    work: impl FnOnce() -> Vec<u8>,
) -> Result<Vec<u8>> {
    run_as_with(&Options::new(deadline), identity, |_| work())
}

/// [`run_as`] with all of the isolated child's [`Options`] (a bound on what
/// it sends back, descriptors it keeps): the identity is taken before
/// `work` runs; `work` gets the child's copies of the kept descriptors.
pub fn run_as_with(
    options: &Options<'_>,
    identity: Option<&Identity>,
    work: impl FnOnce(&[BorrowedFd<'_>]) -> Vec<u8>,
) -> Result<Vec<u8>> {
    let Some(id) = identity else {
        return run_isolated_with(options, "", || Ok(()), work);
    };
    let prepared = Prepared::of(id)?;
    run_isolated_with(options, &prepared.who, || prepared.take(id), work)
}

/// What a child needs to become an identity, prepared before the fork:
/// allocating or looking up users after fork() in a multi-threaded process
/// is best avoided.
pub(crate) struct Prepared {
    lttng_home: Option<CString>,
    /// `" as user NAME (uid UID)"`, for errors' context.
    pub(crate) who: String,
    context: String,
}

impl Prepared {
    pub(crate) fn of(id: &Identity) -> Result<Prepared> {
        let lttng_home = id
            .lttng_home
            .clone()
            .or_else(|| id.per_user_daemon.then(|| id.home.clone()))
            .map(|dir| CString::new(dir.into_os_string().into_vec()))
            .transpose()
            .map_err(|_| {
                Error::with_message(
                    ErrorCode::Invalid,
                    "LTTNG_HOME has a NUL byte",
                    "isolating work",
                )
            })?;
        Ok(Prepared {
            lttng_home,
            who: format!(" as user {} (uid {})", id.user_name, id.uid),
            context: format!("acting as user {} (uid {})", id.user_name, id.uid),
        })
    }

    /// In the child: becomes `id` for good (see `take_identity`).
    pub(crate) fn take(&self, id: &Identity) -> Result<()> {
        take_identity(id, self.lttng_home.as_deref(), &self.context)
    }
}

/// Runs `work` as [`run_as`] does and brings back the value it returns,
/// which crosses from the child as JSON.
pub fn run_json<T: Serialize + DeserializeOwned>(
    deadline: Duration,
    identity: Option<&Identity>,
    work: impl FnOnce() -> T,
) -> Result<T> {
    let bytes = run_as(deadline, identity, || {
        serde_json::to_vec(&work()).unwrap_or_default()
    })?;
    serde_json::from_slice(&bytes).map_err(|e| {
        Error::with_message(
            ErrorCode::Fatal,
            format!("unreadable answer from the isolated child: {e}"),
            "reading what an isolated child sent back",
        )
    })
}

/// In the child: becomes `id` (for good) and points liblttng-ctl at the
/// right session daemon.
fn take_identity(id: &Identity, lttng_home: Option<&CStr>, context: &str) -> Result<()> {
    let denied = |what: &str| {
        let err = std::io::Error::last_os_error();
        Error::with_message(
            ErrorCode::PermissionDenied,
            format!("{what}: {err}"),
            context,
        )
    };
    // SAFETY: geteuid has no memory effects.
    if unsafe { libc::geteuid() } != id.uid {
        // Groups first, then the gid, then the uid: after setresuid the
        // others can no longer be changed.
        // SAFETY: the slice is valid for its length; the calls only change
        // this process's credentials.
        unsafe {
            if libc::setgroups(id.groups.len(), id.groups.as_ptr()) != 0 {
                return Err(denied("setgroups"));
            }
            if libc::setresgid(id.gid, id.gid, id.gid) != 0 {
                return Err(denied("setresgid"));
            }
            if libc::setresuid(id.uid, id.uid, id.uid) != 0 {
                return Err(denied("setresuid"));
            }
        }
        let (mut r, mut e, mut s) = (0, 0, 0);
        let (mut gr, mut ge, mut gs) = (0, 0, 0);
        // SAFETY: valid out-pointers.
        let read_ok = unsafe {
            libc::getresuid(&mut r, &mut e, &mut s) == 0
                && libc::getresgid(&mut gr, &mut ge, &mut gs) == 0
        };
        if !read_ok || [r, e, s] != [id.uid; 3] || [gr, ge, gs] != [id.gid; 3] {
            return Err(Error::with_message(
                ErrorCode::PermissionDenied,
                "the new uid/gid did not take",
                context,
            ));
        }
        // SAFETY: setuid(0) only changes credentials, and must fail now.
        if id.uid != 0 && unsafe { libc::setuid(0) } == 0 {
            return Err(Error::with_message(
                ErrorCode::PermissionDenied,
                "root privileges could be regained after dropping them",
                context,
            ));
        }
        // Not dumpable, whatever fs.suid_dumpable says: the user whose
        // identity this is cannot ptrace it or read its memory (a resident
        // child hears of other users' crashes), and a crash of it makes no
        // core (none for the crash service to handle about itself).
        // SAFETY: prctl only changes this process's dumpable flag.
        if unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) } != 0 {
            return Err(denied("prctl(PR_SET_DUMPABLE, 0)"));
        }
    }
    if let Some(home) = lttng_home {
        // SAFETY: both strings are NUL-terminated; this single-threaded
        // child is the only user of its environment.
        if unsafe { libc::setenv(c"LTTNG_HOME".as_ptr(), home.as_ptr(), 1) } != 0 {
            let err = std::io::Error::last_os_error();
            return Err(Error::with_message(
                ErrorCode::Fatal,
                format!("setting LTTNG_HOME: {err}"),
                context,
            ));
        }
    }
    if id.per_user_daemon {
        if id.uid == 0 {
            return Err(Error::with_message(
                ErrorCode::Invalid,
                "root has no per-user session daemon; it always uses the root one",
                context,
            ));
        }
        // Relies on liblttng-ctl internals (its remembered socket path):
        // written down, and tested against the installed library, in
        // lttng_ctl::daemon.
        use_per_user_daemon_only()
            .map_err(|e| Error::with_message(e.code(), e.message(), context))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn the_child_takes_the_identity_for_good() {
        // SAFETY: geteuid has no memory effects.
        if unsafe { libc::geteuid() } != 0 {
            panic!("this test needs root (it switches to the `nobody` user)");
        }
        let nobody = Identity::of_user(65534).unwrap();
        let out = run_as(SECOND * 5, Some(&nobody), || {
            // SAFETY: plain id getters.
            let ids = unsafe {
                [
                    libc::getuid(),
                    libc::geteuid(),
                    libc::getgid(),
                    libc::getegid(),
                ]
            };
            format!("{ids:?}").into_bytes()
        })
        .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            format!("{:?}", [65534, 65534, nobody.gid(), nobody.gid()])
        );
        let with_home = Identity::of_user(65534)
            .unwrap()
            .with_lttng_home("/nonexistent-lttng-home");
        let out = run_as(SECOND * 5, Some(&with_home), || {
            std::env::var("LTTNG_HOME").unwrap_or_default().into_bytes()
        })
        .unwrap();
        assert_eq!(out, b"/nonexistent-lttng-home");
    }

    #[test]
    fn root_has_no_per_user_daemon() {
        // SAFETY: geteuid has no memory effects.
        if unsafe { libc::geteuid() } != 0 {
            panic!("this test needs root");
        }
        let root = Identity::of_user(0).unwrap().per_user_daemon();
        let err = run_as(SECOND * 5, Some(&root), Vec::new).unwrap_err();
        assert_eq!(err.code(), ErrorCode::Invalid);
    }

    #[test]
    fn unknown_users_are_refused() {
        let err = Identity::of_user(4_000_000_000).unwrap_err();
        assert_eq!(err.code(), ErrorCode::Invalid);
    }

    #[test]
    fn a_value_comes_back_as_json() {
        let out: Result<(u32, String)> = run_json(SECOND * 5, None, || (7, "seven".to_string()));
        assert_eq!(out.unwrap(), (7, "seven".to_string()));
    }

    #[test]
    fn groups_are_found_by_name() {
        assert_eq!(group_id("root"), Some(0));
        assert_eq!(group_id("lttng-coredump:no-such-group"), None);
    }
}
