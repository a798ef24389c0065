//! Tracing sessions: creating them (normal, snapshot or live, with or
//! without an output), listing them, starting, stopping and destroying them.

use crate::error::{check_code, check_ret, Error, ErrorCode, Result};
use crate::lock;
use crate::name;
use crate::sys;
use std::ffi::{c_char, CStr, CString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::ptr::{self, NonNull};
use std::time::Duration;

/// A tracing session, known by its name.
///
/// This is only a handle: the session lives in the session daemon until
/// [`Session::destroy`] is called, and dropping the handle leaves it there.
/// Any number of handles may name the same session.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Session {
    name: String,
    c_name: CString,
}

impl Session {
    /// A handle on the session called `name`, which need not exist yet.
    ///
    /// Fails with [`ErrorCode::Invalid`] when the name is empty, has a NUL
    /// byte or is longer than LTTng's limit (254 bytes); it is never
    /// truncated. (The session daemon also refuses `/` in names, with
    /// [`ErrorCode::SessionInvalidChar`], when the session is created.)
    pub fn from_name(name: &str) -> Result<Session> {
        if name.is_empty() {
            return Err(Error::with_message(
                ErrorCode::Invalid,
                "the session name is empty",
                "using an empty session name",
            ));
        }
        let c_name = name::cstring(name, Some(name::SESSION_NAME_MAX), "session name")?;
        Ok(Session {
            name: name.to_owned(),
            c_name,
        })
    }

    /// The session's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn c_name(&self) -> &CStr {
        &self.c_name
    }

    /// Starts tracing (`lttng_start_tracing`).
    pub fn start(&self) -> Result<()> {
        let _guard = lock::lock();
        // SAFETY: c_name is a valid NUL-terminated string that outlives the call.
        let ret = unsafe { sys::lttng_start_tracing(self.c_name.as_ptr()) };
        check_ret(ret, || format!("starting session {:?}", self.name)).map(drop)
    }

    /// Stops tracing and waits until the consumer daemon has written out the
    /// data already in the buffers (`lttng_stop_tracing`). The process-wide
    /// lock is held while waiting, so other lttng-ctl calls of this process
    /// wait too.
    pub fn stop(&self) -> Result<()> {
        let _guard = lock::lock();
        // SAFETY: c_name is a valid NUL-terminated string that outlives the call.
        let ret = unsafe { sys::lttng_stop_tracing(self.c_name.as_ptr()) };
        check_ret(ret, || format!("stopping session {:?}", self.name)).map(drop)
    }

    /// Stops tracing without waiting for the buffered data to be written
    /// out (`lttng_stop_tracing_no_wait`).
    pub fn stop_no_wait(&self) -> Result<()> {
        let _guard = lock::lock();
        // SAFETY: c_name is a valid NUL-terminated string that outlives the call.
        let ret = unsafe { sys::lttng_stop_tracing_no_wait(self.c_name.as_ptr()) };
        check_ret(ret, || {
            format!("stopping session {:?} without waiting", self.name)
        })
        .map(drop)
    }

    /// Destroys the session and waits, with no time limit, until the session
    /// daemon has finished (`lttng_destroy_session_ext` and waiting on its
    /// destruction handle). A started session is stopped first. The
    /// process-wide lock is held while waiting (see
    /// [`Session::destroy_with_timeout`] for a bounded wait).
    pub fn destroy(&self) -> Result<()> {
        self.destroy_and_wait(None)
    }

    /// Like [`Session::destroy`], but gives up waiting after `timeout`, with
    /// [`ErrorCode::Cancelled`]; the session daemon still finishes the
    /// destruction it has started.
    pub fn destroy_with_timeout(&self, timeout: Duration) -> Result<()> {
        self.destroy_and_wait(Some(timeout))
    }

    /// Asks the session daemon to destroy the session and returns at once
    /// (`lttng_destroy_session_no_wait`).
    pub fn destroy_no_wait(&self) -> Result<()> {
        let _guard = lock::lock();
        // SAFETY: c_name is a valid NUL-terminated string that outlives the call.
        let ret = unsafe { sys::lttng_destroy_session_no_wait(self.c_name.as_ptr()) };
        check_ret(ret, || {
            format!("destroying session {:?} without waiting", self.name)
        })
        .map(drop)
    }

    fn destroy_and_wait(&self, timeout: Option<Duration>) -> Result<()> {
        let context = || format!("destroying session {:?}", self.name);
        // A negative timeout waits indefinitely; longer waits than i32::MAX
        // milliseconds (24 days) are treated as indefinite too.
        let timeout_ms = timeout.map_or(-1, |t| i32::try_from(t.as_millis()).unwrap_or(-1));
        let mut raw_handle: *mut sys::lttng_destruction_handle = ptr::null_mut();
        let code = {
            let _guard = lock::lock();
            // SAFETY: c_name is valid; raw_handle is a valid out-pointer, set
            // to an owned handle only on success.
            unsafe { sys::lttng_destroy_session_ext(self.c_name.as_ptr(), &mut raw_handle) }
        };
        check_code(code, context)?;
        let handle = DestructionHandle(NonNull::new(raw_handle).ok_or_else(|| {
            Error::with_message(
                ErrorCode::Fatal,
                "liblttng-ctl returned no destruction handle",
                context(),
            )
        })?);
        let status = {
            let _guard = lock::lock();
            // SAFETY: handle.0 is a live handle owned by `handle`.
            unsafe {
                sys::lttng_destruction_handle_wait_for_completion(handle.0.as_ptr(), timeout_ms)
            }
        };
        match status {
            sys::lttng_destruction_handle_status::LTTNG_DESTRUCTION_HANDLE_STATUS_COMPLETED => {}
            sys::lttng_destruction_handle_status::LTTNG_DESTRUCTION_HANDLE_STATUS_TIMEOUT => {
                return Err(Error::with_message(
                    ErrorCode::Cancelled,
                    format!("the session daemon did not finish within {timeout_ms} ms"),
                    context(),
                ))
            }
            other => {
                return Err(Error::with_message(
                    ErrorCode::Unknown,
                    format!("waiting for the destruction failed (status {})", other.0),
                    context(),
                ))
            }
        }
        let mut result = sys::lttng_error_code::LTTNG_OK;
        let status = {
            let _guard = lock::lock();
            // SAFETY: the handle was successfully waited on; result is a
            // valid out-pointer.
            unsafe { sys::lttng_destruction_handle_get_result(handle.0.as_ptr(), &mut result) }
        };
        if status != sys::lttng_destruction_handle_status::LTTNG_DESTRUCTION_HANDLE_STATUS_OK {
            return Err(Error::with_message(
                ErrorCode::Unknown,
                format!(
                    "reading the destruction's result failed (status {})",
                    status.0
                ),
                context(),
            ));
        }
        check_code(result, context)
    }

    /// This session's entry in [`list_sessions`], or
    /// [`ErrorCode::SessionNotFound`].
    pub fn info(&self) -> Result<SessionInfo> {
        list_sessions()?
            .into_iter()
            .find(|info| info.name == self.name)
            .ok_or_else(|| {
                Error::new(
                    ErrorCode::SessionNotFound,
                    format!("looking up session {:?}", self.name),
                )
            })
    }
}

/// Owns a `struct lttng_destruction_handle`.
struct DestructionHandle(NonNull<sys::lttng_destruction_handle>);

impl Drop for DestructionHandle {
    fn drop(&mut self) {
        let _guard = lock::lock();
        // SAFETY: the pointer is owned and freed only here.
        unsafe { sys::lttng_destruction_handle_destroy(self.0.as_ptr()) }
    }
}

/// What a session lists about itself (`struct lttng_session`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    /// The session's name.
    pub name: String,
    /// Where the trace goes: a local path, a relay URL, or empty for a
    /// session with no output.
    pub output: String,
    /// Whether the session is started (tracing).
    pub enabled: bool,
    /// Whether the session is in snapshot mode (flight recorder: buffers are
    /// only written out when a snapshot is recorded).
    pub snapshot_mode: bool,
    /// The live timer period in microseconds; 0 for a non-live session.
    pub live_timer_interval_us: u32,
}

impl SessionInfo {
    fn from_sys(session: &sys::lttng_session) -> SessionInfo {
        SessionInfo {
            name: name::read(&session.name),
            output: name::read(&session.path),
            enabled: session.enabled != 0,
            snapshot_mode: session.snapshot_mode != 0,
            live_timer_interval_us: session.live_timer_interval,
        }
    }
}

/// Lists the sessions the session daemon has for this user (`lttng_list_sessions`).
pub fn list_sessions() -> Result<Vec<SessionInfo>> {
    let _guard = lock::lock();
    let mut raw: *mut sys::lttng_session = ptr::null_mut();
    // SAFETY: raw is a valid out-pointer; on success it is set to a malloc'd
    // array of `count` sessions (or NULL when there are none).
    let ret = unsafe { sys::lttng_list_sessions(&mut raw) };
    let count = check_ret(ret, || "listing sessions".into())? as usize;
    let Some(array) = NonNull::new(raw) else {
        return Ok(Vec::new());
    };
    let array = MallocArray {
        ptr: array,
        len: count,
    };
    Ok(array.as_slice().iter().map(SessionInfo::from_sys).collect())
}

/// Owns an array that liblttng-ctl allocated with `malloc` and that the
/// caller frees with `free`.
pub(crate) struct MallocArray<T> {
    pub(crate) ptr: NonNull<T>,
    pub(crate) len: usize,
}

impl<T> MallocArray<T> {
    pub(crate) fn as_slice(&self) -> &[T] {
        // SAFETY: liblttng-ctl returned `len` initialised elements at `ptr`,
        // which stay allocated until drop.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl<T> Drop for MallocArray<T> {
    fn drop(&mut self) {
        // SAFETY: the array was allocated with malloc by liblttng-ctl and is
        // owned here; it holds no pointers needing a deeper free (extended
        // session data is in the same block).
        unsafe { libc::free(self.ptr.as_ptr().cast()) }
    }
}

/// Where a new session writes its trace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionOutput {
    /// No output: nothing is written until an output is given (for a
    /// snapshot session, a snapshot output added later or a one-off output
    /// given when recording).
    None,
    /// The session daemon's default: a local directory
    /// `$LTTNG_HOME/lttng-traces/<name>-<YYYYMMDD-HHMMSS>` (for live
    /// sessions, a relay daemon at `net://127.0.0.1`).
    Default,
    /// A local directory, given as an absolute path.
    Local(PathBuf),
    /// A relay daemon: `net://HOST[:CTRLPORT[:DATAPORT]][/PATH]` (or
    /// `net6://`, `tcp://`, `tcp6://`), with an optional separate data URL.
    Network {
        /// The control URL (also gives the data port when `data_url` is
        /// `None`).
        control_url: String,
        /// A separate data URL.
        data_url: Option<String>,
    },
}

/// The kind of session to create.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SessionKind {
    Normal,
    Snapshot,
    Live { timer_us: u64 },
}

/// Creates sessions: normal (written out continuously), snapshot (flight
/// recorder) or live, with an output (`lttng_session_descriptor_*` and
/// `lttng_create_session_ext`).
///
/// ```no_run
/// use lttng_ctl::{SessionBuilder, SessionOutput};
/// let session = SessionBuilder::new("flight-recorder")
///     .snapshot()
///     .output(SessionOutput::Local("/var/crash/traces".into()))
///     .create()?;
/// # Ok::<(), lttng_ctl::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct SessionBuilder {
    name: String,
    kind: SessionKind,
    output: SessionOutput,
}

impl SessionBuilder {
    /// A normal session called `name` with the default output.
    pub fn new(name: &str) -> SessionBuilder {
        SessionBuilder {
            name: name.to_owned(),
            kind: SessionKind::Normal,
            output: SessionOutput::Default,
        }
    }

    /// Makes it a snapshot session: the buffers are only written out when a
    /// snapshot is recorded, and the output (if any) becomes the session's
    /// first snapshot output.
    pub fn snapshot(mut self) -> SessionBuilder {
        self.kind = SessionKind::Snapshot;
        self
    }

    /// Makes it a live session with this live timer period (must not be
    /// zero); its output must be [`SessionOutput::None`],
    /// [`SessionOutput::Default`] or a network output.
    pub fn live(mut self, timer: Duration) -> SessionBuilder {
        self.kind = SessionKind::Live {
            timer_us: u64::try_from(timer.as_micros()).unwrap_or(u64::MAX),
        };
        self
    }

    /// Sets where the session writes (default: [`SessionOutput::Default`]).
    pub fn output(mut self, output: SessionOutput) -> SessionBuilder {
        self.output = output;
        self
    }

    /// Creates the session in the session daemon.
    pub fn create(&self) -> Result<Session> {
        let session = Session::from_name(&self.name)?;
        let context = || format!("creating session {:?}", self.name);
        let descriptor = self.descriptor(&session, &context)?;
        let _guard = lock::lock();
        // SAFETY: the descriptor is live and owned; liblttng-ctl only reads it
        // and updates its output fields from the daemon's reply.
        let code = unsafe { sys::lttng_create_session_ext(descriptor.0.as_ptr()) };
        check_code(code, context)?;
        Ok(session)
    }

    fn descriptor(
        &self,
        session: &Session,
        context: &dyn Fn() -> String,
    ) -> Result<SessionDescriptor> {
        let name = session.c_name().as_ptr();
        let invalid = |message: String| Error::with_message(ErrorCode::Invalid, message, context());
        let raw = match (&self.output, self.kind) {
            (SessionOutput::Local(_), SessionKind::Live { .. }) => {
                return Err(invalid(
                    "a live session needs a network output, not a local path".into(),
                ))
            }
            (_, SessionKind::Live { timer_us: 0 }) => {
                return Err(invalid("a live session needs a non-zero live timer".into()))
            }
            (SessionOutput::None, kind) => {
                let _guard = lock::lock();
                // SAFETY: name is a valid C string; the descriptor copies it.
                unsafe {
                    match kind {
                        SessionKind::Normal => sys::lttng_session_descriptor_create(name),
                        SessionKind::Snapshot => {
                            sys::lttng_session_descriptor_snapshot_create(name)
                        }
                        SessionKind::Live { timer_us } => {
                            sys::lttng_session_descriptor_live_create(name, timer_us)
                        }
                    }
                }
            }
            (SessionOutput::Default, SessionKind::Live { timer_us }) => {
                let _guard = lock::lock();
                // SAFETY: name is a valid C string; NULL URLs ask for the
                // default relay daemon.
                unsafe {
                    sys::lttng_session_descriptor_live_network_create(
                        name,
                        ptr::null(),
                        ptr::null(),
                        timer_us,
                    )
                }
            }
            (SessionOutput::Default, kind) => self.local_descriptor(name, kind, None),
            (SessionOutput::Local(path), kind) => {
                let path = absolute_path_cstring(path, "session output path")
                    .map_err(|e| invalid(e.message().to_owned()))?;
                self.local_descriptor(name, kind, Some(&path))
            }
            (
                SessionOutput::Network {
                    control_url,
                    data_url,
                },
                kind,
            ) => {
                let control = name::cstring(control_url, Some(name::PATH_MAX), "control URL")?;
                let data = data_url
                    .as_deref()
                    .map(|url| name::cstring(url, Some(name::PATH_MAX), "data URL"))
                    .transpose()?;
                let data_ptr = data.as_ref().map_or(ptr::null(), |d| d.as_ptr());
                let _guard = lock::lock();
                // SAFETY: all strings are valid C strings (data may be NULL,
                // meaning "derive it from the control URL"); they are copied.
                unsafe {
                    match kind {
                        SessionKind::Normal => sys::lttng_session_descriptor_network_create(
                            name,
                            control.as_ptr(),
                            data_ptr,
                        ),
                        SessionKind::Snapshot => {
                            sys::lttng_session_descriptor_snapshot_network_create(
                                name,
                                control.as_ptr(),
                                data_ptr,
                            )
                        }
                        SessionKind::Live { timer_us } => {
                            sys::lttng_session_descriptor_live_network_create(
                                name,
                                control.as_ptr(),
                                data_ptr,
                                timer_us,
                            )
                        }
                    }
                }
            }
        };
        NonNull::new(raw).map(SessionDescriptor).ok_or_else(|| {
            invalid(format!(
                "liblttng-ctl rejected the session description ({:?})",
                self.output
            ))
        })
    }

    fn local_descriptor(
        &self,
        name: *const c_char,
        kind: SessionKind,
        path: Option<&CStr>,
    ) -> *mut sys::lttng_session_descriptor {
        let path = path.map_or(ptr::null(), CStr::as_ptr);
        let _guard = lock::lock();
        // SAFETY: name and path (possibly NULL, meaning the default output)
        // are valid C strings; the descriptor copies them.
        unsafe {
            match kind {
                SessionKind::Snapshot => {
                    sys::lttng_session_descriptor_snapshot_local_create(name, path)
                }
                _ => sys::lttng_session_descriptor_local_create(name, path),
            }
        }
    }
}

/// Owns a `struct lttng_session_descriptor`.
struct SessionDescriptor(NonNull<sys::lttng_session_descriptor>);

impl Drop for SessionDescriptor {
    fn drop(&mut self) {
        let _guard = lock::lock();
        // SAFETY: the descriptor is owned and freed only here.
        unsafe { sys::lttng_session_descriptor_destroy(self.0.as_ptr()) }
    }
}

/// An absolute path as a C string, or an [`ErrorCode::Invalid`] error: LTTng
/// resolves relative paths against the session daemon's directory, not ours.
pub(crate) fn absolute_path_cstring(path: &Path, what: &str) -> Result<CString> {
    let display = path.display().to_string();
    if !path.is_absolute() {
        return Err(Error::with_message(
            ErrorCode::Invalid,
            format!("{what} must be an absolute path"),
            format!("using {what} {display:?}"),
        ));
    }
    let bytes = path.as_os_str().as_bytes();
    if bytes.len() > name::PATH_MAX {
        return Err(Error::with_message(
            ErrorCode::Invalid,
            format!(
                "{what} is {} bytes long; LTTng allows at most {}",
                bytes.len(),
                name::PATH_MAX
            ),
            format!("using {what} {display:?}"),
        ));
    }
    CString::new(bytes).map_err(|_| {
        Error::with_message(
            ErrorCode::Invalid,
            format!("{what} contains a NUL byte"),
            format!("using {what} {display:?}"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_names_that_do_not_fit_are_rejected() {
        let longest = "s".repeat(name::SESSION_NAME_MAX);
        assert_eq!(Session::from_name(&longest).unwrap().name(), longest);
        let err = Session::from_name(&format!("{longest}s")).unwrap_err();
        assert_eq!(err.code(), ErrorCode::Invalid);
        assert!(err.message().contains("at most 254"), "{err}");
        assert_eq!(
            Session::from_name("").unwrap_err().code(),
            ErrorCode::Invalid
        );
    }

    #[test]
    fn relative_output_paths_are_rejected() {
        let err = absolute_path_cstring(Path::new("traces"), "session output path").unwrap_err();
        assert_eq!(err.code(), ErrorCode::Invalid);
        assert!(err.message().contains("absolute"), "{err}");
    }

    #[test]
    fn live_sessions_need_a_timer_and_a_network_output() {
        let err = SessionBuilder::new("live")
            .live(Duration::ZERO)
            .create()
            .unwrap_err();
        assert_eq!(err.code(), ErrorCode::Invalid);
        let err = SessionBuilder::new("live")
            .live(Duration::from_secs(1))
            .output(SessionOutput::Local("/tmp".into()))
            .create()
            .unwrap_err();
        assert_eq!(err.code(), ErrorCode::Invalid);
    }
}
