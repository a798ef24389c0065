//! The crash enters the spool of crashes shipped to the collector (the
//! `[submit]` section; the fleet crate's `Spool`): its journal entry's
//! fields in systemd-coredump's form, its record as the report, and its
//! core (a copy, zstd, when it is small enough to travel inside the entry;
//! else the entry says where it stays on this host), all under the crash's
//! ID, the same one the record carries.
//!
//! Run once the record is written, after the kernel let the process go:
//! nothing here is on the crash's clock, and nothing here touches the saved
//! core but to read it through a descriptor (opened in the trusted core
//! directory, never following a link). The spool's bound is kept by the
//! enqueue itself (`max_spool_size`: the oldest cores, then the oldest
//! reports of the spool go first, each drop logged here). A failure, even a
//! panic, costs the shipping of this crash only: the core and the record
//! stay where they are, and the log says why.
//!
//! The submitter (`lttng-coredump submit`, or `serve`'s child), running as
//! `[submit] user`, sends what this queued.

use crate::base::config::Config;
use crate::base::syslog::Log;
use crate::store::coredir::CoreDir;
use crate::store::record::CrashRecord;
use lttng_coredump_fleet::config::SubmitConfig;
use lttng_coredump_fleet::{CoreSource, CrashId, HostIdentity, NewCrash, Spool};
use lttng_coredump_journal::coredump::{self, Crash};
use std::os::fd::AsFd;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// The step: puts the crash in the spool when `[submit]` is configured
/// (nothing otherwise). `dir` is the core directory the record and the
/// core were written in.
pub fn enqueue(config: &Config, record: &CrashRecord, dir: Option<&CoreDir>, log: &mut Log) {
    let Some(submit) = &config.submit else {
        return;
    };
    let result = catch_unwind(AssertUnwindSafe(|| enqueue_in(submit, record, dir, log)))
        .unwrap_or_else(|_| Err("enqueueing panicked".to_string()));
    if let Err(error) = result {
        log.warning(format!(
            "the crash is not shipped: it could not enter the spool {}: {error} (its core and \
             record stay on this host)",
            submit.spool_dir.display()
        ));
    }
}

fn enqueue_in(
    submit: &SubmitConfig,
    record: &CrashRecord,
    dir: Option<&CoreDir>,
    log: &mut Log,
) -> Result<(), String> {
    let spool = Spool::open(&submit.spool_dir).map_err(|e| e.to_string())?;
    let crash_id = record.crashed.crash_id.as_deref().and_then(CrashId::parse);
    let core = match core_source(record, dir) {
        Ok(core) => core,
        Err(error) => {
            log.warning(format!("the shipped crash goes without its core: {error}"));
            None
        }
    };
    let report_json = Some(record.to_json());
    let enqueued = spool
        .enqueue(
            NewCrash {
                crash_id,
                fields: entry_fields(record),
                report_json,
                core,
                host: HostIdentity::now(),
            },
            &submit.limits,
        )
        .map_err(|e| e.to_string())?;
    for drop in &enqueued.drops {
        log.warning(format!(
            "spool {} full: dropped the {} of crash {} ({} bytes): {}",
            submit.spool_dir.display(),
            drop.what,
            drop.crash_id,
            drop.bytes,
            drop.reason
        ));
    }
    if let Some(error) = &enqueued.bound_error {
        log.warning(format!("spool {}: {error}", submit.spool_dir.display()));
    }
    log.info(format!(
        "crash {} queued for shipping in {} ({})",
        enqueued.crash_id,
        submit.spool_dir.display(),
        enqueued.item
    ));
    Ok(())
}

/// The saved core, opened in the core directory by its name (no link
/// followed), with what the record says of it.
fn core_source(record: &CrashRecord, dir: Option<&CoreDir>) -> Result<Option<CoreSource>, String> {
    let (Some(path), Some(dir)) = (record.core.path.as_deref(), dir) else {
        return Ok(None);
    };
    let name = std::path::Path::new(path)
        .file_name()
        .ok_or_else(|| format!("the core's path {path} has no file name"))?;
    use rustix::fs::{Mode, OFlags};
    let fd = rustix::fs::openat(
        dir.fd.as_fd(),
        name,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| format!("cannot open {path}: {e}"))?;
    let file = std::fs::File::from(fd);
    if !file.metadata().map_err(|e| e.to_string())?.is_file() {
        return Err(format!("{path} is not a regular file"));
    }
    Ok(Some(CoreSource {
        file,
        zstd: record.core.compression == "zstd",
        size: record.core.size,
        host_path: path.into(),
    }))
}

/// The crash's journal entry as systemd-coredump writes it (the journal
/// crate's), from the record. The spool adds the host's identity and the
/// crash ID, and the core.
pub fn entry_fields(record: &CrashRecord) -> Vec<lttng_coredump_fleet::export::Field> {
    let crashed = &record.crashed;
    let crash = Crash {
        pid: crashed.pid.unwrap_or(0),
        uid: crashed.uid.unwrap_or(0),
        gid: crashed.gid.unwrap_or(0),
        signal: crashed.signal.as_ref().map_or(0, |s| s.number),
        signal_name: crashed.signal.as_ref().and_then(|s| s.name.clone()),
        timestamp_usec: crashed
            .time
            .and_then(|t| u64::try_from(t).ok())
            .map_or(0, |t| t * 1_000_000),
        rlimit: crashed.core_limit,
        hostname: crashed.hostname.clone(),
        dumpable: crashed.dump_mode,
        comm: crashed.process_name.clone().unwrap_or_default(),
        exe: crashed.exe_path.clone(),
        cmdline: crashed.cmdline.as_ref().map(|args| args.join(" ")),
        core: record.core.path.as_ref().map(|path| coredump::CoreFile {
            path: path.clone(),
            truncated: !record.core.complete,
        }),
        snapshots: record
            .snapshots
            .iter()
            .filter_map(|s| s.path.clone())
            .collect(),
        trace_only_in_core: record.snapshots.iter().all(|s| s.path.is_none()),
        ..Crash::default()
    };
    // No crash ID here: the spool adds it (the same value) to every copy.
    coredump::Entry::from(&crash).fields.into_vec()
}
