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
use crate::store::record::{CrashRecord, DaemonFire};
use lttng_coredump_engine::DaemonTarget;
use lttng_coredump_fleet::config::SubmitConfig;
use lttng_coredump_fleet::relayd::{self, RelaySnapshot};
use lttng_coredump_fleet::{CoreSource, CrashId, HostIdentity, NewCrash, Spool};
use lttng_coredump_journal::coredump;
use std::os::fd::AsFd;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// At the crash, right after its snapshots (its ring buffers still hold
/// its events): when `[submit] relayd` is set, each session snapshotted is
/// also recorded to that relay daemon, in the same session daemon (root's
/// or the user's own, as that user), named `crash-CRASHID`, from a child
/// under `snapshot_deadline` (a second bound of that length for all of
/// them: the local snapshots are already taken). A relay that cannot be
/// reached costs the relay copy only (logged); the local snapshot stays.
pub fn relay_snapshots(
    config: &Config,
    crash_id: Option<&CrashId>,
    fires: &[DaemonFire],
    log: &mut Log,
) -> Vec<RelaySnapshot> {
    let (Some(url), Some(crash_id)) = (
        config.submit.as_ref().and_then(|s| s.relayd.as_deref()),
        crash_id,
    ) else {
        return Vec::new();
    };
    let started = std::time::Instant::now();
    let mut relayed = Vec::new();
    for fire in fires {
        let (Some(target), Some(report)) = (&fire.target, &fire.report) else {
            continue;
        };
        let sessions: std::collections::BTreeSet<&str> = report
            .outcomes
            .iter()
            .filter(|o| o.snapshot_path.is_some())
            .map(|o| o.session.as_str())
            .collect();
        for session in sessions {
            let left = config.snapshot_deadline.saturating_sub(started.elapsed());
            let outcome = catch_unwind(AssertUnwindSafe(|| {
                record_to_relay(target, session, url, crash_id, left)
            }))
            .unwrap_or_else(|_| Err("recording it panicked".into()));
            match outcome {
                Ok(snapshot) => {
                    log.info(format!(
                        "snapshot of session {session} ({} session daemon) also sent to {url} as \
                         {}",
                        fire.daemon,
                        snapshot.path_pattern()
                    ));
                    relayed.push(snapshot);
                }
                Err(error) => log.warning(format!(
                    "the snapshot of session {session} ({} session daemon) was not sent to \
                     {url}: {error} (the local snapshot stays)",
                    fire.daemon
                )),
            }
        }
    }
    relayed
}

fn record_to_relay(
    target: &DaemonTarget,
    session: &str,
    url: &str,
    crash_id: &CrashId,
    deadline: std::time::Duration,
) -> Result<RelaySnapshot, String> {
    if deadline.is_zero() {
        return Err("no time left".into());
    }
    let daemon =
        lttng_coredump_engine::target::resolve(target, deadline).map_err(|e| e.to_string())?;
    let answer: Result<String, String> =
        lttng_coredump_engine::identity::run_json(deadline, daemon.identity(), || {
            relayd::record(session, url, crash_id)
                .map(|snapshot| snapshot.hostname)
                .map_err(|e| e.to_string())
        })
        .map_err(|e| e.to_string())?;
    Ok(RelaySnapshot {
        relay_url: url.to_owned(),
        session: session.to_owned(),
        name: relayd::snapshot_name(crash_id),
        hostname: answer?,
    })
}

/// The step: puts the crash in the spool when `[submit]` is configured
/// (nothing otherwise). `dir` is the core directory the record and the
/// core were written in.
/// `relayed`: the crash's snapshots on the relay daemon, which the entry
/// names.
pub fn enqueue(
    config: &Config,
    record: &CrashRecord,
    dir: Option<&CoreDir>,
    relayed: &[RelaySnapshot],
    log: &mut Log,
) {
    let Some(submit) = &config.submit else {
        return;
    };
    let result = catch_unwind(AssertUnwindSafe(|| {
        enqueue_in(submit, record, dir, relayed, log)
    }))
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
    relayed: &[RelaySnapshot],
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
    let fields = shipped_fields(record, relayed);
    let enqueued = spool
        .enqueue(
            NewCrash {
                crash_id,
                fields,
                report_json,
                core,
                host: crash_host(record),
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

/// The host the entry names (`_HOSTNAME`, and the core's location): the
/// host name the crashing process saw (its UTS namespace's, `crash/uts.rs`;
/// the record's `hostname`), else this machine's. Its boot and machine IDs
/// are this machine's.
fn crash_host(record: &CrashRecord) -> HostIdentity {
    let mut host = HostIdentity::now();
    if let Some(name) = record.crashed.hostname.as_deref().filter(|n| !n.is_empty()) {
        host.hostname = name.to_owned();
    }
    host
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

/// The crash's journal entry as systemd-coredump writes it, the same one
/// the handler sends to the local journal (`crash/journal.rs`: the
/// report's stack trace and signature included), from the record. The
/// spool adds the crash ID (the same value), the host's identity and the
/// core.
pub fn entry_fields(record: &CrashRecord) -> Vec<lttng_coredump_fleet::export::Field> {
    let mut crash = crate::crash::journal::crash_of(record, None);
    crash.crash_id = None;
    coredump::Entry::from(&crash).fields.into_vec()
}

/// The shipped entry: [`entry_fields`] (with the crashing host's snapshot
/// paths, `LTTNG_COREDUMP_SNAPSHOT_PATH`, one per snapshot) and, for each
/// snapshot sent to the relay daemon, its relay, session and pattern
/// (`LTTNG_COREDUMP_RELAY_SNAPSHOT_PATH`): two names, so that both stay.
fn shipped_fields(
    record: &CrashRecord,
    relayed: &[RelaySnapshot],
) -> Vec<lttng_coredump_fleet::export::Field> {
    let mut fields = entry_fields(record);
    fields.extend(relayed.iter().flat_map(RelaySnapshot::fields));
    fields
}

#[cfg(test)]
mod tests {
    use super::*;
    use lttng_coredump_fleet::fields::{RELAY_SNAPSHOT_PATH, SNAPSHOT_PATH};

    #[test]
    fn the_shipped_entry_keeps_the_local_snapshot_paths_beside_the_relays_pattern() {
        let mut record = crate::store::record::tests::sample();
        record.snapshots = vec![crate::store::record::SnapshotEntry {
            path: Some("/var/lib/traces/sess/crash-1".into()),
            ..Default::default()
        }];
        let relayed = [RelaySnapshot {
            relay_url: "net://collector".into(),
            session: "sess".into(),
            name: "crash-aa".into(),
            hostname: "h1".into(),
        }];
        let values = |fields: &[lttng_coredump_fleet::export::Field], name: &str| {
            fields
                .iter()
                .filter(|(n, _)| n == name)
                .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
                .collect::<Vec<_>>()
        };
        let shipped = shipped_fields(&record, &relayed);
        assert_eq!(
            values(&shipped, SNAPSHOT_PATH),
            ["/var/lib/traces/sess/crash-1"]
        );
        assert_eq!(
            values(&shipped, RELAY_SNAPSHOT_PATH),
            ["h1/sess-*/crash-aa-*"]
        );
        // No relay: the local paths alone.
        let alone = shipped_fields(&record, &[]);
        assert_eq!(
            values(&alone, SNAPSHOT_PATH),
            ["/var/lib/traces/sess/crash-1"]
        );
        assert!(values(&alone, RELAY_SNAPSHOT_PATH).is_empty());
    }
}
