//! Which session daemon this process talks to: whether one is reachable,
//! where liblttng-ctl looks for the root one, and how to make it use the
//! per-user one only.

use crate::error::{check_ret, Error, ErrorCode, Result};
use crate::lock;
use crate::sys;
use std::ffi::CStr;

macro_rules! root_run_dir {
    () => {
        "/var/run/lttng"
    };
}
macro_rules! client_socket {
    () => {
        "client-lttng-sessiond"
    };
}

/// The root session daemon's run directory (lttng-tools'
/// `DEFAULT_LTTNG_RUNDIR`).
pub const ROOT_RUN_DIR: &str = root_run_dir!();

/// The client socket every session daemon creates in its run directory
/// (`/var/run/lttng` for root, `$LTTNG_HOME/.lttng` for a user).
pub const CLIENT_SOCKET: &str = client_socket!();

/// The root session daemon's client socket, where liblttng-ctl connects
/// root and the members of the tracing group (`DEFAULT_GLOBAL_CLIENT_UNIX_SOCK`).
pub const ROOT_CLIENT_SOCKET: &str = concat!(root_run_dir!(), "/", client_socket!());

/// The group liblttng-ctl (2.13, by default) checks to let a non-root user
/// reach the root session daemon.
pub const TRACING_GROUP: &str = "tracing";

/// A tracing-group name that cannot exist (`:` separates fields in
/// `/etc/group`). Telling liblttng-ctl that this is the tracing group makes
/// it skip the root session daemon and use the per-user one.
const NO_TRACING_GROUP: &CStr = c"lttng-coredump:no-such-group";

/// Returns whether a session daemon is reachable by this process.
///
/// liblttng-ctl looks for the root session daemon when the caller is root or
/// in the `tracing` group, and otherwise for the per-user daemon under
/// `$LTTNG_HOME/.lttng` (`$HOME` when `LTTNG_HOME` is unset).
pub fn session_daemon_alive() -> Result<bool> {
    let _guard = lock::lock();
    // SAFETY: takes no arguments; only reads liblttng-ctl's global
    // connection settings, which the lock protects.
    let ret = unsafe { sys::lttng_session_daemon_alive() };
    let alive = check_ret(ret, || "checking whether a session daemon is alive".into())?;
    Ok(alive == 1)
}

fn os_error(context: &str) -> Error {
    let err = std::io::Error::last_os_error();
    Error::with_message(ErrorCode::Fatal, err.to_string(), context)
}

/// Makes liblttng-ctl (2.13) use the per-user session daemon of this
/// (non-root) process, in `$LTTNG_HOME/.lttng`, and never the root one, for
/// the rest of the process's life. Meant for a process that has just become
/// another user (the engine's children that act as a user call it).
///
/// This relies on liblttng-ctl's internals (`set_session_daemon_path()` in
/// lttng-ctl.c, 2.13), not on its API; the tests of this module check each
/// point against the installed library:
/// - liblttng-ctl connects a non-root member of the tracing group to the
///   root daemon; naming a tracing group that cannot exist stops that.
/// - But when the tracing group does not exist, it first retries the socket
///   path of the *previous* call, kept in a static buffer. In a process
///   that used liblttng-ctl as root (or is the copy of one that did) before
///   it became the user, that is still the root daemon's, which the process
///   may still reach through a group it keeps.
/// - So the stale path is replaced by the per-user one with one call made
///   while no file descriptor can be opened (`RLIMIT_NOFILE` at 0): the
///   connection to the old path fails, and the library falls back to
///   `$LTTNG_HOME/.lttng`, which it keeps in the buffer for the next calls.
/// - That failing call makes liblttng-ctl print `socket: Too many open
///   files` on stderr; the private-but-exported `lttng_opt_quiet`
///   (`lttng-ctl-sys`) silences it meanwhile.
pub fn use_per_user_daemon_only() -> Result<()> {
    let _guard = lock::lock();
    // SAFETY: the string is NUL-terminated; liblttng-ctl copies it.
    if unsafe { sys::lttng_set_tracing_group(NO_TRACING_GROUP.as_ptr()) } != 0 {
        return Err(Error::new(ErrorCode::NoMemory, "setting the tracing group"));
    }
    // SAFETY: valid out-pointer.
    let mut limit: libc::rlimit = unsafe { std::mem::zeroed() };
    // SAFETY: valid out-pointer.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(os_error("reading the open-file limit"));
    }
    let no_files = libc::rlimit {
        rlim_cur: 0,
        rlim_max: limit.rlim_max,
    };
    // SAFETY: only this process's limits and liblttng-ctl's verbosity
    // change, and both are restored below; the lock is held, so nothing
    // else calls into liblttng-ctl meanwhile.
    unsafe {
        let quiet = sys::lttng_opt_quiet;
        sys::lttng_opt_quiet = 1;
        if libc::setrlimit(libc::RLIMIT_NOFILE, &no_files) != 0 {
            sys::lttng_opt_quiet = quiet;
            return Err(os_error("lowering the open-file limit"));
        }
        // The answer is "not alive" whatever runs: what matters is the path
        // the library computes on the way.
        let _ = sys::lttng_session_daemon_alive();
        let restored = libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        sys::lttng_opt_quiet = quiet;
        if restored != 0 {
            return Err(os_error("restoring the open-file limit"));
        }
    }
    Ok(())
}

/// These tests check, against the installed liblttng-ctl, each point of its
/// internals that [`use_per_user_daemon_only`] relies on: when one fails,
/// the library no longer behaves so and that function must be revisited.
#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CString;
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    /// How long the process of a test may take (a session daemon that does
    /// not answer would otherwise hang the test).
    const DEADLINE: Duration = Duration::from_secs(60);

    /// Set in the process [`in_new_process`] starts.
    const CHILD_ENV: &str = "LTTNG_CTL_DAEMON_TEST_CHILD";
    /// What starts the child's result on its standard output.
    const RESULT_MARK: &str = "lttng-ctl-daemon-test-result:";

    /// Runs `child` in a new process, this test binary run again for the
    /// test `test` alone, and returns the bytes it returned; `None` in that
    /// new process, where the test then returns. The tests below change the
    /// process's credentials, limits, standard error and liblttng-ctl's
    /// global state, which must not reach the harness's other tests; a new
    /// process (not a copy of this one) also starts liblttng-ctl afresh.
    fn in_new_process(test: &str, child: impl FnOnce() -> Vec<u8>) -> Option<Vec<u8>> {
        if std::env::var_os(CHILD_ENV).is_some() {
            let out = child();
            let hex: String = out.iter().map(|b| format!("{b:02x}")).collect();
            println!("\n{RESULT_MARK}{hex}");
            return None;
        }
        let mut process = Command::new(std::env::current_exe().unwrap())
            .args([&format!("daemon::tests::{test}"), "--exact", "--nocapture"])
            .env(CHILD_ENV, std::process::id().to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = process.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut stdout, &mut text).map(|_| text)
        });
        let started = Instant::now();
        let status = loop {
            if let Some(status) = process.try_wait().unwrap() {
                break status;
            }
            if started.elapsed() > DEADLINE {
                process.kill().unwrap();
                process.wait().unwrap();
                panic!("the test's process did not end within {DEADLINE:?}");
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let text = reader.join().unwrap().unwrap();
        assert!(
            status.success(),
            "the test's process failed: {status}\n{text}"
        );
        let hex = text
            .lines()
            .find_map(|line| line.strip_prefix(RESULT_MARK))
            .unwrap_or_else(|| panic!("no result in the test's process output:\n{text}"));
        Some(
            (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
                .collect(),
        )
    }

    fn require_root() {
        // SAFETY: geteuid has no memory effects.
        if unsafe { libc::geteuid() } != 0 {
            panic!("this test needs root (it acts as `nobody` and uses the root session daemon)");
        }
    }

    fn tracing_gid() -> libc::gid_t {
        let name = CString::new(TRACING_GROUP).unwrap();
        // SAFETY: called in the test's thread, which reads the result at once
        // (no other thread of the test calls getgrnam).
        let group = unsafe { libc::getgrnam(name.as_ptr()) };
        assert!(
            !group.is_null(),
            "no `{TRACING_GROUP}` group: install LTTng's packages (scripts/install-deps)"
        );
        // SAFETY: non-NULL result of getgrnam.
        unsafe { (*group).gr_gid }
    }

    /// In the test's own process: as root, lets liblttng-ctl compute and keep the
    /// root daemon's socket path, then becomes `nobody` while keeping the
    /// tracing group (so the root daemon's socket can still be opened) with
    /// `LTTNG_HOME` at `home`, which holds no session daemon.
    fn root_then_nobody(tracing_gid: libc::gid_t, home: &CStr) {
        let _guard = lock::lock();
        // SAFETY: no arguments; the lock is held.
        let alive = unsafe { sys::lttng_session_daemon_alive() };
        assert_eq!(alive, 1, "the root session daemon does not run");
        // SAFETY: valid strings and slice; only this child's credentials
        // and environment change.
        unsafe {
            assert_eq!(libc::setenv(c"LTTNG_HOME".as_ptr(), home.as_ptr(), 1), 0);
            assert_eq!(libc::setgroups(1, &tracing_gid), 0);
            assert_eq!(libc::setresgid(65534, 65534, 65534), 0);
            assert_eq!(libc::setresuid(65534, 65534, 65534), 0);
        }
    }

    /// An empty directory named after the test's first process (the one
    /// that removes it), made by whichever of the two gets here first.
    fn empty_home(name: &str) -> (std::path::PathBuf, CString) {
        let first = std::env::var(CHILD_ENV).unwrap_or_else(|_| std::process::id().to_string());
        let dir = std::env::temp_dir().join(format!("{name}-{first}"));
        std::fs::create_dir_all(&dir).unwrap();
        let c_dir = CString::new(dir.to_str().unwrap()).unwrap();
        (dir, c_dir)
    }

    #[test]
    fn with_a_tracing_group_that_does_not_exist_liblttng_ctl_retries_the_previous_socket_path() {
        require_root();
        let gid = tracing_gid();
        let (dir, home) = empty_home("lttng-ctl-stale-path");
        let test = "with_a_tracing_group_that_does_not_exist_liblttng_ctl_retries_the_previous_socket_path";
        let out = in_new_process(test, || {
            root_then_nobody(gid, &home);
            let _guard = lock::lock();
            // SAFETY: NUL-terminated string, copied by the library.
            let set = unsafe { sys::lttng_set_tracing_group(NO_TRACING_GROUP.as_ptr()) };
            assert_eq!(set, 0);
            // SAFETY: no arguments; the lock is held.
            vec![unsafe { sys::lttng_session_daemon_alive() } as u8]
        });
        let Some(out) = out else { return };
        std::fs::remove_dir(&dir).unwrap();
        // `nobody`, with no daemon of its own and "no tracing group", still
        // reaches the root daemon through the path of the previous call:
        // what use_per_user_daemon_only() must undo.
        assert_eq!(out, [1]);
    }

    #[test]
    fn use_per_user_daemon_only_leaves_the_root_daemon_out_for_good() {
        require_root();
        let gid = tracing_gid();
        let (dir, home) = empty_home("lttng-ctl-per-user-only");
        let test = "use_per_user_daemon_only_leaves_the_root_daemon_out_for_good";
        let out = in_new_process(test, || {
            root_then_nobody(gid, &home);
            use_per_user_daemon_only().unwrap();
            let _guard = lock::lock();
            // SAFETY: no arguments; the lock is held.
            let first = unsafe { sys::lttng_session_daemon_alive() };
            // SAFETY: as above.
            let second = unsafe { sys::lttng_session_daemon_alive() };
            vec![first as u8, second as u8]
        });
        let Some(out) = out else { return };
        std::fs::remove_dir(&dir).unwrap();
        // The root daemon runs and `nobody` could open its socket, yet the
        // library now asks only $LTTNG_HOME/.lttng, where nothing runs.
        assert_eq!(out, [0, 0]);
    }

    /// Reads what is in the pipe now (its read end is non-blocking).
    fn drain(fd: libc::c_int) -> Vec<u8> {
        let mut out = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            // SAFETY: `chunk` is valid for its length.
            let n = unsafe { libc::read(fd, chunk.as_mut_ptr().cast(), chunk.len()) };
            if n <= 0 {
                return out;
            }
            out.extend_from_slice(&chunk[..n as usize]);
        }
    }

    #[test]
    fn lttng_opt_quiet_is_exported_and_silences_the_library_s_stderr() {
        require_root();
        let test = "lttng_opt_quiet_is_exported_and_silences_the_library_s_stderr";
        let out = in_new_process(test, || {
            let _guard = lock::lock();
            let mut fds = [0; 2];
            // SAFETY: `fds` has room for two descriptors; stderr (fd 2) of
            // the test's own process only is redirected into the pipe.
            unsafe {
                assert_eq!(libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK), 0);
                assert_eq!(libc::dup2(fds[1], 2), 2);
            }
            // SAFETY: the limit only affects the test's own process; lttng_opt_quiet is
            // only touched with the lock held.
            let (loud, quiet) = unsafe {
                let mut limit: libc::rlimit = std::mem::zeroed();
                assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit), 0);
                // No descriptor can be opened: the connection fails in
                // socket(), which liblttng-ctl reports with PERROR().
                limit.rlim_cur = 0;
                assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &limit), 0);
                sys::lttng_opt_quiet = 0;
                let _ = sys::lttng_session_daemon_alive();
                let loud = drain(fds[0]);
                sys::lttng_opt_quiet = 1;
                let _ = sys::lttng_session_daemon_alive();
                let quiet = drain(fds[0]);
                (loud, quiet)
            };
            let mut out = loud;
            out.push(0);
            out.extend_from_slice(&quiet);
            out
        });
        let Some(out) = out else { return };
        let nul = out.iter().position(|&b| b == 0).unwrap();
        let (loud, quiet) = (
            String::from_utf8_lossy(&out[..nul]),
            String::from_utf8_lossy(&out[nul + 1..]),
        );
        // The failing connection use_per_user_daemon_only() makes is
        // reported on stderr unless lttng_opt_quiet is set.
        assert!(loud.contains("socket"), "liblttng-ctl printed {loud:?}");
        assert_eq!(quiet, "", "liblttng-ctl printed despite lttng_opt_quiet");
    }

    #[test]
    fn the_root_socket_is_in_the_root_run_directory() {
        assert_eq!(
            std::path::Path::new(ROOT_RUN_DIR).join(CLIENT_SOCKET),
            std::path::Path::new(ROOT_CLIENT_SOCKET)
        );
    }
}
