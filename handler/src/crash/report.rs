//! The crash's report (`report_crash`, after the core is saved and the
//! process let go): every thread's backtrace, the signal, the modules, and
//! the signature that groups crashes into problems, made by the report
//! crate's analysis in a bounded child acting as the crashing user: this
//! binary executed again (`analysis_child`), not a fork of the handler.
//!
//! Who the child acts as ([`analyst`]): the crashing user when the user
//! may read the core (`access`: the process was theirs in every respect);
//! otherwise (root's crashes, set-uid programs, `%d` ≠ 1) a service
//! account ([`SERVICE_UID`], `nobody` on Debian), never root (`analyze`
//! refuses) and never the user the core is hidden from. A root-only core's
//! report stays in root's record, as the core does: the user's copy of the
//! record is only written when the user may read the core.
//!
//! The executable is the very file the process ran: `/proc/PID/exe` opened
//! `O_PATH` while the kernel held the process ([`open_exe`], checked
//! against the pidfd afterwards). `O_PATH` opens nothing (no file system's
//! open routine runs for root, a FUSE executable cannot make root wait);
//! the child reopens it through `/proc/self/fd` with the analyst's rights.

use crate::base::config::Config;
use crate::crash::context::CrashContext;
use crate::crash::procinfo::{self, Gathered};
use crate::store::record::{Identity, ReportSection};
use lttng_coredump_report::{signature, Limits};
use rustix::fs::{Mode, OFlags};
use std::fs::File;
use std::os::fd::OwnedFd;
use std::path::Path;

/// The service account root's crashes and root-only cores are analyzed as
/// (`nobody`, 65534 on Debian and most distributions).
pub const SERVICE_UID: u32 = 65534;

/// The executable of the crashing process, opened `O_PATH` through its
/// `/proc/PID` directory while the kernel holds it, kept only when the
/// pidfd still names the process afterwards (or, without a pidfd, when
/// `/proc` was read from the process: `core_pipe_limit` holds it).
pub fn open_exe(context: &CrashContext, gathered: &Gathered) -> Result<OwnedFd, String> {
    let pid = context.pid.ok_or("the kernel gave no PID")?;
    if let Identity::CouldNotTell(reason) = &gathered.identity {
        return Err(format!("the process's details were left out: {reason}"));
    }
    let dir = rustix::fs::open(
        format!("/proc/{pid}"),
        OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|err| format!("cannot open /proc/{pid}: {err}"))?;
    let exe = rustix::fs::openat(&dir, "exe", OFlags::PATH | OFlags::CLOEXEC, Mode::empty())
        .map_err(|err| format!("cannot open /proc/{pid}/exe: {err}"))?;
    if let Some(pidfd) = context.pidfd {
        if !procinfo::pidfd_names(Path::new("/proc"), pidfd, pid) {
            return Err(format!(
                "the pidfd no longer names process {pid}: its executable is left out"
            ));
        }
    }
    Ok(exe)
}

/// Who analyzes the core: the crashing user when they may read it, else
/// the service account; `Err` when neither may.
pub fn analyst(uid: Option<u32>, readable_by: Option<u32>) -> Result<u32, String> {
    match (uid, readable_by) {
        (Some(uid), Some(reader)) if uid == reader && uid != 0 => Ok(uid),
        (Some(SERVICE_UID), _) => Err(format!(
            "the crashing user is the service account (uid {SERVICE_UID}) and the core is \
             root-only: no one else analyzes it"
        )),
        _ => Ok(SERVICE_UID),
    }
}

/// The analysis's bounds, from the configuration.
pub fn limits(config: &Config) -> Limits {
    Limits {
        deadline: config.report_deadline,
        memory: config.report_memory,
        // The handler's environment is empty: the servers come from the
        // configuration; the cache is a fresh one of the analysis's own,
        // removed after it (one user's downloads never serve another's
        // report).
        debuginfod: config
            .debuginfod_urls
            .as_ref()
            .map(|urls| lttng_coredump_report::Debuginfod {
                urls: urls.clone(),
                timeout: config.debuginfod_timeout.min(config.report_deadline),
                max_size: 1 << 30,
                cache: None,
            }),
        ..Limits::default()
    }
}

/// What the record says when there is no report, and why.
pub fn not_made(reason: impl Into<String>) -> ReportSection {
    ReportSection {
        not_analyzed_reason: Some(reason.into()),
        ..ReportSection::default()
    }
}

/// Analyzes the saved core `core` (the raw file, read from its start) as
/// `as_uid`, with the executable `exe` when it could be held, and makes
/// the record's section: the report with its signature, or why there is
/// none.
pub fn make(
    core: &File,
    exe: Option<(&OwnedFd, &str)>,
    as_uid: u32,
    config: &Config,
) -> ReportSection {
    let identity = match lttng_coredump_engine::identity::Identity::of_user(as_uid) {
        Ok(identity) => identity,
        Err(err) => {
            return ReportSection {
                analyzed_as_uid: Some(as_uid),
                ..not_made(format!(
                    "analysis failed: no user to analyze the core as: {}",
                    err.message()
                ))
            }
        }
    };
    match crate::crash::analysis_child::analyze(core, exe, &identity, &limits(config)) {
        Ok(report) => {
            let sig = signature(&report);
            ReportSection {
                analyzed: true,
                not_analyzed_reason: None,
                analyzed_as_uid: Some(as_uid),
                signature: Some(sig.hash),
                title: Some(sig.title),
                threads: report.threads_in_core,
                frames: report.crashing_thread().map_or(0, |t| t.frames.len()),
                report: Some(report),
                file: None,
                file_error: None,
            }
        }
        Err(failed) => ReportSection {
            analyzed_as_uid: Some(as_uid),
            ..not_made(failed.to_string())
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debuginfod_is_asked_as_configured_within_the_reports_deadline() {
        let mut config = Config::default();
        assert!(limits(&config).debuginfod.is_none());
        config.debuginfod_urls = Some("https://a.example/ http://b.example:8002".into());
        config.debuginfod_timeout = std::time::Duration::from_secs(5);
        let asked = limits(&config).debuginfod.expect("servers asked");
        assert_eq!(asked.urls, "https://a.example/ http://b.example:8002");
        assert_eq!(asked.timeout, std::time::Duration::from_secs(5));
        // A cache of the analysis's own, never one shared between users.
        assert_eq!(asked.cache, None);
        // Never longer than the analysis may take.
        config.report_deadline = std::time::Duration::from_secs(2);
        let asked = limits(&config).debuginfod.unwrap();
        assert_eq!(asked.timeout, std::time::Duration::from_secs(2));
    }

    #[test]
    fn the_analyst_is_the_user_who_may_read_the_core_else_the_service_account_never_root() {
        assert_eq!(analyst(Some(1000), Some(1000)), Ok(1000));
        // Root-only cores: set-uid (no reader), root's own crash.
        assert_eq!(analyst(Some(1000), None), Ok(SERVICE_UID));
        assert_eq!(analyst(Some(0), None), Ok(SERVICE_UID));
        assert_eq!(analyst(Some(0), Some(0)), Ok(SERVICE_UID));
        assert_eq!(analyst(None, None), Ok(SERVICE_UID));
        // The service account's own root-only core: no one may.
        assert!(analyst(Some(SERVICE_UID), None).is_err());
        assert_eq!(
            analyst(Some(SERVICE_UID), Some(SERVICE_UID)),
            Ok(SERVICE_UID)
        );
    }
}
