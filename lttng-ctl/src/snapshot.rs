//! Snapshots of a snapshot-mode session: its snapshot outputs (add, list,
//! remove), recording a snapshot to them or to a one-off output, and finding
//! where a recorded snapshot went.
//!
//! # Where a snapshot goes
//! The session daemon (lttng-tools 2.13, `cmd_snapshot_record`) writes each
//! snapshot into a directory named `<name>-<YYYYMMDD-HHMMSS>-<seq>` under the
//! output's path, where:
//! - `name` is the name given when recording; when none is given, the
//!   output's own name (`snapshot-<id>` unless it was named when added).
//!   A name given with no one-off output is applied, for this record only,
//!   to *every* output of the session (each gets a directory with that name);
//!   the outputs keep their own names for later records.
//! - the date and time are the session daemon's local time when it received
//!   the command, the same for all outputs of one record;
//! - `seq` is the session's count of snapshots successfully recorded before
//!   this one (starting at 0), shared by all its outputs and one-off outputs.
//!
//! A record with no one-off output on a session that has no snapshot output
//! fails with [`ErrorCode::SnapshotFailed`]. For a relay output, the relay
//! daemon decides the directory; [`Session::record_snapshot_and_locate`] then
//! reports the relay's URL.

use crate::error::{check_ret, Error, ErrorCode, Result};
use crate::lock;
use crate::name;
use crate::session::{absolute_path_cstring, Session};
use crate::sys;
use std::collections::BTreeSet;
use std::ffi::{CStr, CString};
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::ptr::{self, NonNull};

/// Longest snapshot (output) name, in bytes. The session daemon formats the
/// directory name `<name>-<YYYYMMDD-HHMMSS>-<seq>` into a
/// `char[LTTNG_NAME_MAX]` and fails the record when it does not fit, so names
/// are limited to what fits with the longest date and sequence number
/// (254 - 17 - 20 bytes).
pub const SNAPSHOT_NAME_MAX: usize = sys::LTTNG_NAME_MAX as usize - 1 - 17 - 20;

/// Where a snapshot output writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SnapshotDestination {
    /// A local directory (an absolute path) on the session daemon's machine.
    Local(PathBuf),
    /// A relay daemon: `net://HOST[:CTRLPORT[:DATAPORT]][/PATH]` or
    /// `net6://...`.
    Relay(String),
    /// A relay daemon with separate control and data URLs, each
    /// `tcp://HOST:PORT` or `tcp6://[ADDR]:PORT` (liblttng-ctl refuses a
    /// `net://` control URL with a different data URL).
    RelayUrls {
        /// The control URL.
        control_url: String,
        /// The data URL.
        data_url: String,
    },
}

/// A snapshot output to add to a session, or to record one snapshot to.
///
/// ```no_run
/// use lttng_ctl::{Session, SnapshotOutput};
/// let session = Session::from_name("flight-recorder")?;
/// let id = session.add_snapshot_output(
///     &SnapshotOutput::local("/var/crash/traces").name("crash").max_size(64 << 20),
/// )?;
/// # Ok::<(), lttng_ctl::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotOutput {
    destination: SnapshotDestination,
    name: Option<String>,
    max_size: Option<u64>,
}

impl SnapshotOutput {
    /// An output writing to a local directory (an absolute path).
    pub fn local(path: impl Into<PathBuf>) -> SnapshotOutput {
        SnapshotOutput::new(SnapshotDestination::Local(path.into()))
    }

    /// An output sending to a relay daemon (`net://` or `net6://` URL).
    pub fn relay(url: &str) -> SnapshotOutput {
        SnapshotOutput::new(SnapshotDestination::Relay(url.to_owned()))
    }

    /// An output with this destination, no name (the session daemon names it
    /// `snapshot-<id>`) and no size limit.
    pub fn new(destination: SnapshotDestination) -> SnapshotOutput {
        SnapshotOutput {
            destination,
            name: None,
            max_size: None,
        }
    }

    /// Names the output; the name prefixes the directories of the snapshots
    /// recorded to it. At most [`SNAPSHOT_NAME_MAX`] bytes.
    pub fn name(mut self, name: &str) -> SnapshotOutput {
        self.name = Some(name.to_owned());
        self
    }

    /// Limits the size of each snapshot, in bytes (0: no limit). The session
    /// daemon keeps the most recent packets of each stream that fit, and
    /// fails with `LTTNG_ERR_MAX_SIZE_INVALID` when not even one packet per
    /// stream fits.
    pub fn max_size(mut self, bytes: u64) -> SnapshotOutput {
        self.max_size = Some(bytes);
        self
    }

    /// Where the output writes.
    pub fn destination(&self) -> &SnapshotDestination {
        &self.destination
    }

    /// The name given with [`SnapshotOutput::name`].
    pub fn output_name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// The C object for this output, with `name_override` (if any) as its
    /// name.
    fn to_raw(&self, name_override: Option<&str>) -> Result<RawSnapshotOutput> {
        let raw = RawSnapshotOutput::new()?;
        if let Some(name) = name_override.or(self.name.as_deref()) {
            raw.set_name(name)?;
        }
        if let Some(bytes) = self.max_size {
            raw.set_max_size(bytes)?;
        }
        match &self.destination {
            SnapshotDestination::Local(path) => {
                let path = absolute_path_cstring(path, "snapshot output path")?;
                raw.set(
                    || format!("setting snapshot output path {path:?}"),
                    // SAFETY: raw is live and owned, path a valid C string
                    // that liblttng-ctl copies.
                    |raw| unsafe { sys::lttng_snapshot_output_set_local_path(path.as_ptr(), raw) },
                )?;
            }
            SnapshotDestination::Relay(url) => {
                let url = name::cstring(url, Some(name::PATH_MAX), "relay URL")?;
                raw.set(
                    || format!("setting snapshot output relay URL {url:?}"),
                    // SAFETY: raw is live and owned, url a valid C string
                    // that liblttng-ctl copies.
                    |raw| unsafe { sys::lttng_snapshot_output_set_network_url(url.as_ptr(), raw) },
                )?;
            }
            SnapshotDestination::RelayUrls {
                control_url,
                data_url,
            } => {
                let control = name::cstring(control_url, Some(name::PATH_MAX), "control URL")?;
                let data = name::cstring(data_url, Some(name::PATH_MAX), "data URL")?;
                raw.set(
                    || format!("setting snapshot output relay URLs {control:?} and {data:?}"),
                    // SAFETY: raw is live and owned, the URLs valid C strings
                    // that liblttng-ctl copies.
                    |raw| unsafe {
                        sys::lttng_snapshot_output_set_network_urls(
                            control.as_ptr(),
                            data.as_ptr(),
                            raw,
                        )
                    },
                )?;
            }
        }
        Ok(raw)
    }
}

/// A snapshot output of a session, as listed by the session daemon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotOutputInfo {
    /// The output's id in its session (from 1).
    pub id: u32,
    /// The output's name.
    pub name: String,
    /// A local output's path, or a relay output's control URL.
    pub ctrl_url: String,
    /// A relay output's data URL; empty for a local output.
    pub data_url: String,
    /// The maximum size of a snapshot in bytes; 0 means no limit.
    pub max_size: u64,
}

impl SnapshotOutputInfo {
    /// The local directory of a local output; `None` for a relay output.
    pub fn local_path(&self) -> Option<PathBuf> {
        local_path_of_url(&self.ctrl_url)
    }
}

/// Where a recorded snapshot went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SnapshotLocation {
    /// The directory the snapshot was written to,
    /// `<output path>/<name>-<YYYYMMDD-HHMMSS>-<seq>`; it holds the CTF trace
    /// (`ust/uid/<uid>/64-bit/...` for per-user buffers).
    Local(PathBuf),
    /// A relay daemon received it; the relay decides the directory.
    Relay {
        /// The relay's control URL.
        ctrl_url: String,
        /// The relay's data URL.
        data_url: String,
    },
}

impl Session {
    /// Adds a snapshot output to this snapshot-mode session and returns its
    /// id. LTTng 2.13 allows one output per session
    /// ([`ErrorCode::SnapshotOutputExists`] otherwise).
    pub fn add_snapshot_output(&self, output: &SnapshotOutput) -> Result<u32> {
        let raw = output.to_raw(None)?;
        let _guard = lock::lock();
        // SAFETY: the session name is a valid C string and raw a live owned
        // output, into which liblttng-ctl writes the new id.
        let ret = unsafe { sys::lttng_snapshot_add_output(self.c_name().as_ptr(), raw.as_ptr()) };
        check_ret(ret, || {
            format!(
                "adding snapshot output {:?} to session {:?}",
                output.destination,
                self.name()
            )
        })?;
        // SAFETY: raw is live; reading its id is a plain field access.
        Ok(unsafe { sys::lttng_snapshot_output_get_id(raw.as_ptr()) })
    }

    /// Lists this snapshot-mode session's snapshot outputs.
    pub fn snapshot_outputs(&self) -> Result<Vec<SnapshotOutputInfo>> {
        let context = || format!("listing the snapshot outputs of session {:?}", self.name());
        let mut raw_list: *mut sys::lttng_snapshot_output_list = ptr::null_mut();
        let ret = {
            let _guard = lock::lock();
            // SAFETY: the session name is a valid C string; raw_list is a
            // valid out-pointer set to an owned list on success.
            unsafe { sys::lttng_snapshot_list_output(self.c_name().as_ptr(), &mut raw_list) }
        };
        check_ret(ret, context)?;
        let mut list = OutputList(NonNull::new(raw_list).ok_or_else(|| {
            Error::with_message(
                ErrorCode::Fatal,
                "liblttng-ctl returned no output list",
                context(),
            )
        })?);
        // Declared after `list` so that it is released before the list's
        // Drop takes the lock again.
        let _guard = lock::lock();
        let mut outputs = Vec::new();
        while let Some(output) = list.next_output() {
            outputs.push(output.info());
        }
        Ok(outputs)
    }

    /// Removes the snapshot output with this id.
    pub fn remove_snapshot_output(&self, id: u32) -> Result<()> {
        let context = || format!("removing snapshot output {id} of session {:?}", self.name());
        let raw = RawSnapshotOutput::new()?;
        raw.set(context, |raw| {
            // SAFETY: raw is live and owned.
            unsafe { sys::lttng_snapshot_output_set_id(id, raw) }
        })?;
        self.delete_output(&raw, context)
    }

    /// Removes the snapshot output with this name.
    pub fn remove_snapshot_output_named(&self, output_name: &str) -> Result<()> {
        let context = || {
            format!(
                "removing snapshot output {output_name:?} of session {:?}",
                self.name()
            )
        };
        if output_name.is_empty() {
            return Err(Error::with_message(
                ErrorCode::Invalid,
                "the snapshot output name is empty",
                context(),
            ));
        }
        let raw = RawSnapshotOutput::new()?;
        raw.set_name(output_name)?;
        self.delete_output(&raw, context)
    }

    fn delete_output(
        &self,
        raw: &RawSnapshotOutput,
        context: impl FnOnce() -> String,
    ) -> Result<()> {
        let _guard = lock::lock();
        // SAFETY: the session name is a valid C string and raw a live output
        // that liblttng-ctl only reads.
        let ret = unsafe { sys::lttng_snapshot_del_output(self.c_name().as_ptr(), raw.as_ptr()) };
        check_ret(ret, context).map(drop)
    }

    /// Records a snapshot to each of the session's snapshot outputs. With a
    /// `name`, each output's directory is named after it for this record
    /// (see the [module documentation](crate::snapshot)).
    ///
    /// The session must be in snapshot mode and have been started at least
    /// once; the call returns when the snapshot is written.
    pub fn record_snapshot(&self, name: Option<&str>) -> Result<()> {
        let raw = match name {
            Some(name) => {
                let raw = RawSnapshotOutput::new()?;
                raw.set_name(name)?;
                Some(raw)
            }
            None => None,
        };
        self.record(raw.as_ref(), || match name {
            Some(name) => format!("recording snapshot {name:?} of session {:?}", self.name()),
            None => format!("recording a snapshot of session {:?}", self.name()),
        })
    }

    /// Records a snapshot to `output` only, without adding it to the session.
    pub fn record_snapshot_to(&self, output: &SnapshotOutput) -> Result<()> {
        let raw = output.to_raw(None)?;
        self.record(Some(&raw), || {
            format!(
                "recording a snapshot of session {:?} to {:?}",
                self.name(),
                output.destination
            )
        })
    }

    /// Records a snapshot named `name` (to `output` when given, else to the
    /// session's outputs) and returns where it went: for each local output
    /// the new `<path>/<name>-<YYYYMMDD-HHMMSS>-<seq>` directory, for each
    /// relay output its URL.
    ///
    /// The local directory is the one that appeared during the record; if
    /// another process recorded a snapshot of the same name to the same path
    /// at the same time, the one with the highest sequence number is taken.
    /// Fails with [`ErrorCode::Unknown`] if the snapshot was recorded but no
    /// new directory is found (the path is not readable by this process, for
    /// instance).
    pub fn record_snapshot_and_locate(
        &self,
        name: &str,
        output: Option<&SnapshotOutput>,
    ) -> Result<Vec<SnapshotLocation>> {
        check_snapshot_name(name)?;
        let destinations: Vec<(Option<PathBuf>, String, String)> = match output {
            Some(output) => vec![match &output.destination {
                SnapshotDestination::Local(path) => {
                    (Some(path.clone()), String::new(), String::new())
                }
                SnapshotDestination::Relay(url) => (None, url.clone(), String::new()),
                SnapshotDestination::RelayUrls {
                    control_url,
                    data_url,
                } => (None, control_url.clone(), data_url.clone()),
            }],
            None => self
                .snapshot_outputs()?
                .into_iter()
                .map(|info| (info.local_path(), info.ctrl_url, info.data_url))
                .collect(),
        };
        let before: Vec<BTreeSet<(u64, String)>> = destinations
            .iter()
            .map(|(path, _, _)| {
                path.as_deref()
                    .map(|path| snapshot_dirs(path, name))
                    .unwrap_or_default()
            })
            .collect();

        let context = || format!("recording snapshot {name:?} of session {:?}", self.name());
        let raw = match output {
            Some(output) => output.to_raw(Some(name))?,
            None => {
                let raw = RawSnapshotOutput::new()?;
                raw.set_name(name)?;
                raw
            }
        };
        self.record(Some(&raw), context)?;

        destinations
            .into_iter()
            .zip(before)
            .map(|((path, ctrl_url, data_url), before)| match path {
                None => Ok(SnapshotLocation::Relay { ctrl_url, data_url }),
                Some(path) => snapshot_dirs(&path, name)
                    .difference(&before)
                    .last()
                    .map(|(_, dir)| SnapshotLocation::Local(path.join(dir)))
                    .ok_or_else(|| {
                        Error::with_message(
                            ErrorCode::Unknown,
                            format!(
                                "the snapshot was recorded, but no new directory {name}-<date>-<time>-<seq> appeared in {}",
                                path.display()
                            ),
                            format!(
                                "locating snapshot {name:?} of session {:?}",
                                self.name()
                            ),
                        )
                    }),
            })
            .collect()
    }

    fn record(
        &self,
        output: Option<&RawSnapshotOutput>,
        context: impl FnOnce() -> String,
    ) -> Result<()> {
        let output = output.map_or(ptr::null_mut(), RawSnapshotOutput::as_ptr);
        let _guard = lock::lock();
        // SAFETY: the session name is a valid C string; output is NULL or a
        // live owned output that liblttng-ctl only copies. The session daemon
        // ignores `wait` and always answers once the snapshot is written.
        let ret = unsafe { sys::lttng_snapshot_record(self.c_name().as_ptr(), output, 1) };
        check_ret(ret, context).map(drop)
    }
}

/// The directory entries of `path` that are snapshots called `name`
/// (`<name>-<YYYYMMDD>-<HHMMSS>-<seq>`), with their sequence numbers. An
/// unreadable directory has none.
fn snapshot_dirs(path: &Path, name: &str) -> BTreeSet<(u64, String)> {
    let Ok(entries) = std::fs::read_dir(path) else {
        return BTreeSet::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter_map(|entry| Some((snapshot_sequence(&entry, name)?, entry)))
        .collect()
}

/// The sequence number of a snapshot directory called
/// `<name>-<YYYYMMDD>-<HHMMSS>-<seq>`, or `None` for any other entry.
fn snapshot_sequence(entry: &str, name: &str) -> Option<u64> {
    let rest = entry.strip_prefix(name)?.strip_prefix('-')?;
    let mut parts = rest.splitn(3, '-');
    let (date, time, seq) = (parts.next()?, parts.next()?, parts.next()?);
    let all_digits = |s: &str, len: Option<usize>| {
        !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && len.unwrap_or(s.len()) == s.len()
    };
    if all_digits(date, Some(8)) && all_digits(time, Some(6)) && all_digits(seq, None) {
        seq.parse().ok()
    } else {
        None
    }
}

/// The path of a local output URL (a plain absolute path, as the session
/// daemon lists local outputs, or `file://` followed by one).
fn local_path_of_url(url: &str) -> Option<PathBuf> {
    let path = url.strip_prefix("file://").unwrap_or(url);
    path.starts_with('/').then(|| PathBuf::from(path))
}

fn check_snapshot_name(name: &str) -> Result<CString> {
    let cname = name::cstring(name, Some(SNAPSHOT_NAME_MAX), "snapshot name")?;
    if name.is_empty() {
        return Err(Error::with_message(
            ErrorCode::Invalid,
            "the snapshot name is empty",
            "using an empty snapshot name",
        ));
    }
    Ok(cname)
}

/// Owns a `struct lttng_snapshot_output`.
#[derive(Debug)]
struct RawSnapshotOutput(NonNull<sys::lttng_snapshot_output>);

impl RawSnapshotOutput {
    fn new() -> Result<RawSnapshotOutput> {
        let _guard = lock::lock();
        // SAFETY: no arguments; returns an owned output (max size unset) or NULL.
        let raw = unsafe { sys::lttng_snapshot_output_create() };
        NonNull::new(raw)
            .map(RawSnapshotOutput)
            .ok_or_else(|| Error::new(ErrorCode::NoMemory, "allocating a snapshot output"))
    }

    fn as_ptr(&self) -> *mut sys::lttng_snapshot_output {
        self.0.as_ptr()
    }

    /// Runs one setter under the lock, mapping its negative return to an
    /// error.
    fn set(
        &self,
        context: impl FnOnce() -> String,
        setter: impl FnOnce(*mut sys::lttng_snapshot_output) -> i32,
    ) -> Result<()> {
        let ret = {
            let _guard = lock::lock();
            setter(self.as_ptr())
        };
        check_ret(ret, context).map(drop)
    }

    fn set_name(&self, name: &str) -> Result<()> {
        let cname = check_snapshot_name(name)?;
        self.set(
            || format!("setting snapshot name {name:?}"),
            // SAFETY: the output is live and owned; the name is copied.
            |raw| unsafe { sys::lttng_snapshot_output_set_name(cname.as_ptr(), raw) },
        )
    }

    fn set_max_size(&self, bytes: u64) -> Result<()> {
        self.set(
            || format!("setting snapshot maximum size {bytes}"),
            // SAFETY: the output is live and owned.
            |raw| unsafe { sys::lttng_snapshot_output_set_size(bytes, raw) },
        )
    }
}

impl Drop for RawSnapshotOutput {
    fn drop(&mut self) {
        let _guard = lock::lock();
        // SAFETY: owned, freed only here.
        unsafe { sys::lttng_snapshot_output_destroy(self.0.as_ptr()) }
    }
}

/// Owns a `struct lttng_snapshot_output_list`.
struct OutputList(NonNull<sys::lttng_snapshot_output_list>);

impl OutputList {
    /// The next output of the list, borrowed from it.
    fn next_output(&mut self) -> Option<OutputRef<'_>> {
        // SAFETY: the list is live and owned; the returned element points
        // into the list's array and lives as long as the list.
        let raw = unsafe { sys::lttng_snapshot_output_list_get_next(self.0.as_ptr()) };
        NonNull::new(raw).map(|raw| OutputRef {
            raw,
            _list: PhantomData,
        })
    }
}

impl Drop for OutputList {
    fn drop(&mut self) {
        let _guard = lock::lock();
        // SAFETY: owned, freed only here.
        unsafe { sys::lttng_snapshot_output_list_destroy(self.0.as_ptr()) }
    }
}

/// An output inside an [`OutputList`], valid as long as the list.
struct OutputRef<'list> {
    raw: NonNull<sys::lttng_snapshot_output>,
    _list: PhantomData<&'list OutputList>,
}

impl OutputRef<'_> {
    fn info(&self) -> SnapshotOutputInfo {
        let raw = self.raw.as_ptr();
        let text = |ptr: *const std::ffi::c_char| {
            if ptr.is_null() {
                String::new()
            } else {
                // SAFETY: the getters return pointers to NUL-terminated
                // arrays inside the output, which the list keeps alive.
                unsafe { CStr::from_ptr(ptr) }
                    .to_string_lossy()
                    .into_owned()
            }
        };
        // SAFETY: raw is a live output of the borrowed list; the getters
        // only read its fields.
        unsafe {
            SnapshotOutputInfo {
                id: sys::lttng_snapshot_output_get_id(raw),
                name: text(sys::lttng_snapshot_output_get_name(raw)),
                ctrl_url: text(sys::lttng_snapshot_output_get_ctrl_url(raw)),
                data_url: text(sys::lttng_snapshot_output_get_data_url(raw)),
                max_size: sys::lttng_snapshot_output_get_maxsize(raw),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_directories_are_recognised_by_name_date_time_and_sequence() {
        assert_eq!(
            snapshot_sequence("crash-20240102-030405-7", "crash"),
            Some(7)
        );
        assert_eq!(
            snapshot_sequence("crash-x-20240102-030405-7", "crash-x"),
            Some(7)
        );
        assert_eq!(
            snapshot_sequence("crash-x-20240102-030405-7", "crash"),
            None
        );
        assert_eq!(snapshot_sequence("crash-2024012-030405-7", "crash"), None);
        assert_eq!(snapshot_sequence("crash-20240102-030405-", "crash"), None);
        assert_eq!(
            snapshot_sequence("crashed-20240102-030405-1", "crash"),
            None
        );
    }

    #[test]
    fn local_outputs_are_told_from_relay_outputs() {
        assert_eq!(local_path_of_url("/var/x"), Some(PathBuf::from("/var/x")));
        assert_eq!(
            local_path_of_url("file:///var/x"),
            Some(PathBuf::from("/var/x"))
        );
        assert_eq!(local_path_of_url("net://localhost"), None);
    }

    #[test]
    fn snapshot_names_that_cannot_fit_a_directory_name_are_rejected() {
        check_snapshot_name(&"n".repeat(SNAPSHOT_NAME_MAX)).unwrap();
        let err = check_snapshot_name(&"n".repeat(SNAPSHOT_NAME_MAX + 1)).unwrap_err();
        assert_eq!(err.code(), ErrorCode::Invalid);
        assert_eq!(
            check_snapshot_name("").unwrap_err().code(),
            ErrorCode::Invalid
        );
    }

    #[test]
    fn outputs_are_built_with_their_name_size_and_destination() {
        let output = SnapshotOutput::local("/tmp/out")
            .name("crash")
            .max_size(4096);
        let raw = output.to_raw(None).unwrap();
        {
            let _guard = lock::lock();
            // SAFETY: raw is live; the getters read its fields.
            unsafe {
                let name = CStr::from_ptr(sys::lttng_snapshot_output_get_name(raw.as_ptr()));
                assert_eq!(name.to_str().unwrap(), "crash");
                assert_eq!(sys::lttng_snapshot_output_get_maxsize(raw.as_ptr()), 4096);
                let url = CStr::from_ptr(sys::lttng_snapshot_output_get_ctrl_url(raw.as_ptr()));
                assert_eq!(url.to_str().unwrap(), "/tmp/out");
            }
        }
        let err = SnapshotOutput::local("relative").to_raw(None).unwrap_err();
        assert_eq!(err.code(), ErrorCode::Invalid);
        let err = SnapshotOutput::relay("file:///tmp")
            .to_raw(None)
            .unwrap_err();
        assert_eq!(err.code(), ErrorCode::Invalid);
        SnapshotOutput::relay("net://localhost")
            .to_raw(None)
            .unwrap();
        SnapshotOutput::relay("net6://[::1]:5342:5343")
            .to_raw(None)
            .unwrap();
    }
}
