//! What the kernel runs on a crash, in the order that keeps the most:
//!
//! 1. read the arguments and the configuration;
//! 2. read `/proc/PID` while the process is held;
//! 3. record the trace snapshots before touching the core (the trace is
//!    what waiting would lose);
//! 4. stream the core to its file and to the chained handler;
//! 5. write the crash record;
//! 6. log.
//!
//! No step's failure stops a later one: each is caught into the record.

use crate::chain::Chain;
use crate::config::{self, Compression, Config};
use crate::coredir::{self, CoreDir};
use crate::corefile::{CoreOutcome, CoreSettings, CoreWriter};
use crate::kernel_args::{signal_name, KernelArgs};
use crate::procinfo::{self, Gathered, Identity};
use crate::record::{self, CoreSection, CrashRecord, Signal};
use crate::safefile::NewFile;
use crate::sanitize::{file_name_component, for_log, lossy, MAX_COMPONENT_LEN};
use crate::snapshot::{self, DaemonFire, SnapshotPlan};
use crate::space::SpacePolicy;
use crate::syslog::{iso8601_utc, Log};
use lttng_coredump_engine::CrashInfo;
use std::ffi::OsString;
use std::io::Read;
use std::os::fd::AsFd;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

/// How the handling ended, for the exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The core was saved (maybe truncated), or was not meant to be.
    Done,
    /// A core was meant to be saved and nothing of it could be.
    CoreLost,
}

/// Handles one crash: `raw_args` are the arguments after `handle`, `core`
/// is the kernel's pipe.
pub fn handle(raw_args: Vec<OsString>, core: &mut impl Read, log: &mut Log) -> Verdict {
    handle_then_release(raw_args, core, || Ok(()), log)
}

/// [`handle`], calling `release_core` as soon as the whole core has been
/// read: closing the kernel's pipe lets the kernel finish with the crashed
/// process before the stop actions run (see `snapshot::run_stops`).
pub fn handle_then_release(
    raw_args: Vec<OsString>,
    core: &mut impl Read,
    release_core: impl FnOnce() -> std::io::Result<()>,
    log: &mut Log,
) -> Verdict {
    // 1) Arguments and configuration.
    let args = KernelArgs::parse(raw_args);
    for error in &args.errors {
        log.warning(format!("kernel arguments: {error}"));
    }
    let config_path = args
        .config
        .clone()
        .unwrap_or_else(|| config::DEFAULT_CONFIG_PATH.into());
    let config = match catch_unwind(|| Config::load(args.config.as_deref())) {
        Ok(loaded) => {
            log.set_socket_path(loaded.config.syslog_socket.clone());
            if let Some(error) = loaded.error {
                log.error(error);
            }
            loaded.config
        }
        Err(_) => {
            log.error("reading the configuration panicked; using the defaults");
            Config::default()
        }
    };
    let time = args.time.unwrap_or_else(now);

    // 2) The process, while the kernel holds it.
    let gathered = match args.pid {
        Some(pid) => catch_unwind(|| procinfo::gather(Path::new("/proc"), pid, args.pidfd))
            .unwrap_or_else(|_| Gathered {
                info: Default::default(),
                identity: Identity::CouldNotTell("reading /proc panicked".into()),
                errors: vec![],
            }),
        None => Gathered {
            info: Default::default(),
            identity: Identity::CouldNotTell("the kernel gave no PID".into()),
            errors: vec![],
        },
    };
    for error in &gathered.errors {
        log.warning(error.clone());
    }
    if let Identity::CouldNotTell(reason) = &gathered.identity {
        log.warning(format!("process details left out: {reason}"));
    }

    // The name as the process set it; the kernel's %e has `/` written as `!`.
    let comm: Option<Vec<u8>> = gathered.info.comm.clone().or_else(|| args.comm.clone());
    let comm_for_log = comm.as_deref().map(for_log).unwrap_or_else(|| "?".into());

    // 3) Snapshots, before the core is read.
    let crash = CrashInfo {
        pid: args.pid.unwrap_or(0),
        uid: args.uid.unwrap_or(0),
        gid: args.gid.unwrap_or(0),
        exec_name: comm.as_deref().map(lossy).unwrap_or_default(),
        hostname: args.hostname.as_deref().map(lossy).unwrap_or_default(),
        time,
    };
    let plan = SnapshotPlan {
        deadline: config.snapshot_deadline,
        extra_sessions: config.snapshot_sessions.clone(),
        fallback_to_active_snapshot_sessions: config.snapshot_active_sessions,
        user_daemon: config.snapshot_user_daemon,
    };
    let mut stages = record::Stages::default();
    stages.snapshots.started_unix_us = record::now_unix_us();
    let fires: Vec<DaemonFire> = catch_unwind(AssertUnwindSafe(|| {
        snapshot::record_snapshots(&crash, args.uid, &plan)
    }))
    .unwrap_or_else(|_| {
        vec![DaemonFire {
            daemon: "root".into(),
            target: None,
            report: None,
            error: Some("recording the snapshots panicked".into()),
        }]
    });
    stages.snapshots.ended_unix_us = record::now_unix_us();
    for error in record::fire_errors(&fires) {
        log.warning(error);
    }
    let snapshots = record::snapshot_entries(&fires);
    for entry in snapshots.iter().filter(|e| e.error.is_none()) {
        log.info(format!(
            "snapshot of session {:?} ({} session daemon) in {}",
            entry.session,
            entry.daemon,
            entry.path.as_deref().unwrap_or("?")
        ));
    }

    // 4) The core, and the chained handler's copy.
    let dir =
        match coredir::open_with_fallback(&config.core_dir, Path::new(config::DEFAULT_CORE_DIR)) {
            Ok((dir, problems)) => {
                for problem in problems {
                    log.error(problem);
                }
                Some(dir)
            }
            Err(problems) => {
                for problem in problems {
                    log.error(problem);
                }
                None
            }
        };
    let stem_name = file_name_component(comm.as_deref().unwrap_or(b"unknown"), MAX_COMPONENT_LEN);
    let stem = format!(
        "core.{}.{}.{}",
        stem_name,
        args.pid
            .map(|p| p.to_string())
            .unwrap_or_else(|| "unknown".into()),
        time
    );
    let extension = match config.compression {
        Compression::None => "",
        Compression::Zstd => ".zst",
    };
    let readable_by = match (args.dump_mode, args.uid) {
        // Only when the kernel says the process was dumpable for its user;
        // never for set-uid crashes (mode 2) or when the mode is unknown.
        (Some(1), Some(uid)) if uid != 0 => Some(uid),
        _ => None,
    };
    let max_size = match args.core_limit_bytes() {
        Some(limit) => Some(limit.min(config.max_core_size)),
        None => Some(config.max_core_size),
    };
    let mut not_saved_reason = None;
    let mut kept_out_by_rate_limit = false;
    let mut writer = if !config.save_core {
        not_saved_reason = Some("saving cores is turned off (save_core = false)".to_string());
        None
    } else if args.core_limit == Some(0) {
        not_saved_reason = Some("the process's core size limit is 0 (%c)".to_string());
        None
    } else if let Some(reason) = dir
        .as_ref()
        .and_then(|dir| rate_limited(dir, &stem_name, config.max_cores_per_minute))
    {
        log.warning(format!(
            "core of process {} not saved: {reason}",
            pid_text(&args)
        ));
        not_saved_reason = Some(reason);
        kept_out_by_rate_limit = true;
        None
    } else if let Some(dir) = &dir {
        let settings = CoreSettings {
            zstd_level: (config.compression == Compression::Zstd).then_some(config.zstd_level),
            max_size,
            space: SpacePolicy {
                max_dir_size: config.max_dir_size,
                min_free: config.min_free,
            },
        };
        match NewFile::create_in(dir.fd.as_fd()).and_then(|file| CoreWriter::new(file, &settings)) {
            Ok(writer) => Some(writer),
            Err(err) => {
                let reason = format!("cannot create a core file in {}: {err}", dir.path.display());
                log.error(reason.clone());
                not_saved_reason = Some(reason);
                None
            }
        }
    } else {
        not_saved_reason = Some("no safe core directory".to_string());
        None
    };
    // A core left out on purpose (turned off, %c = 0, rate limit) is not a
    // lost core.
    let core_wanted = config.save_core && args.core_limit != Some(0) && !kept_out_by_rate_limit;
    let mut chain = match &config.chain {
        Some(chain_config) => match Chain::start(chain_config, &args) {
            Ok(chain) => Some(chain),
            Err(err) => {
                log.error(err);
                None
            }
        },
        None => None,
    };
    stages.core.started_unix_us = record::now_unix_us();
    let pumped = crate::pump::pump(core, writer.as_mut(), chain.as_mut());
    stages.core.ended_unix_us = record::now_unix_us();
    if let Err(err) = release_core() {
        log.warning(format!("cannot close the kernel's core pipe early: {err}"));
    }
    if let Some(error) = &pumped.error {
        log.error(error.clone());
    }
    let (core_outcome, _core_file) = match writer.take() {
        Some(writer) => {
            let name = |n: u32| {
                if n == 0 {
                    format!("{stem}{extension}")
                } else {
                    format!("{stem}.{n}{extension}")
                }
            };
            let (mut outcome, file) = writer.finish(readable_by, name);
            if outcome.truncated.is_none() && !pumped.reached_end {
                outcome.truncated = Some(
                    pumped
                        .error
                        .clone()
                        .unwrap_or_else(|| "the core stream ended early".into()),
                );
            }
            (outcome, file)
        }
        None => (CoreOutcome::default(), None),
    };
    for error in &core_outcome.errors {
        log.warning(error.clone());
    }
    for deleted in &core_outcome.deleted {
        log.notice(format!("deleted old core {deleted} to make room"));
    }
    if let Some(reason) = &core_outcome.truncated {
        log.warning(format!(
            "core of process {} ({comm_for_log}) truncated: {reason}",
            pid_text(&args)
        ));
    }
    let chain_outcome =
        chain.map(|chain| chain.finish(pumped.reached_end.then_some(pumped.bytes_read)));
    if let Some(outcome) = &chain_outcome {
        for error in &outcome.errors {
            log.warning(error.clone());
        }
        log.info(format!(
            "chained command {:?} got {} bytes{}, {}",
            outcome.command.first().map(String::as_str).unwrap_or(""),
            outcome.bytes_given,
            if outcome.complete {
                " (the whole core)"
            } else {
                ""
            },
            outcome.ended
        ));
    }

    // 4b) The triggers' stop actions, now that the kernel has the whole
    // core and lets the process go (only in daemons that have some).
    stages.stops.started_unix_us = record::now_unix_us();
    let stop_fires = catch_unwind(AssertUnwindSafe(|| {
        snapshot::run_stops(&crash, &fires, &plan)
    }))
    .unwrap_or_else(|_| {
        vec![DaemonFire {
            daemon: "root".into(),
            target: None,
            report: None,
            error: Some("running the stop actions panicked".into()),
        }]
    });
    stages.stops.ended_unix_us = record::now_unix_us();
    for error in record::fire_errors(&stop_fires) {
        log.warning(error);
    }
    let mut snapshots = snapshots;
    snapshots.extend(record::snapshot_entries(&stop_fires));
    let mut fires = fires;
    fires.extend(stop_fires);

    // 5) The record.
    let core_path = match (&dir, &core_outcome.name) {
        (Some(dir), Some(name)) => Some(dir.path.join(name).to_string_lossy().into_owned()),
        _ => None,
    };
    if core_wanted && core_path.is_none() && not_saved_reason.is_none() {
        not_saved_reason = Some("the core file could not be named".into());
    }
    let verdict = if core_wanted && core_path.is_none() {
        Verdict::CoreLost
    } else {
        Verdict::Done
    };
    let summary = match &core_path {
        Some(path) => format!(
            "core of process {} ({comm_for_log}, signal {}) saved to {path}{}",
            pid_text(&args),
            args.signal
                .map(|s| s.to_string())
                .unwrap_or_else(|| "?".into()),
            if core_outcome.truncated.is_some() {
                " (truncated)"
            } else {
                ""
            }
        ),
        None => format!(
            "core of process {} ({comm_for_log}) not saved: {}",
            pid_text(&args),
            not_saved_reason.as_deref().unwrap_or("unknown reason")
        ),
    };
    if verdict == Verdict::CoreLost {
        log.error(summary);
    } else {
        log.notice(summary);
    }
    let mut crash_record = CrashRecord {
        format: record::FORMAT,
        pid: args.pid,
        uid: args.uid,
        gid: args.gid,
        signal: args.signal.map(|number| Signal {
            number,
            name: signal_name(number),
        }),
        time: Some(time),
        time_utc: Some(iso8601_utc(time)),
        hostname: args.hostname.as_deref().map(lossy),
        process_name: comm.as_deref().map(lossy),
        exe_path: gathered
            .info
            .exe
            .as_deref()
            .map(lossy)
            .or_else(|| match gathered.identity {
                Identity::CouldNotTell(_) => None,
                _ => args.exe_path_from_kernel().as_deref().map(lossy),
            }),
        cmdline: gathered
            .info
            .cmdline
            .as_ref()
            .map(|args| args.iter().map(|a| lossy(a)).collect()),
        cmdline_truncated: gathered.info.cmdline_truncated,
        cgroup: gathered.info.cgroup.as_deref().map(lossy),
        process_identity: gathered.identity.clone(),
        dump_mode: args.dump_mode,
        core_limit: args.core_limit,
        core: CoreSection {
            saved: core_path.is_some(),
            path: core_path.clone(),
            size: core_outcome.size,
            stored_bytes: core_outcome.stored_bytes,
            bytes_received: pumped.bytes_read,
            compression: config.compression.name(),
            complete: core_path.is_some() && core_outcome.truncated.is_none(),
            truncated_reason: core_outcome.truncated.clone(),
            not_saved_reason: not_saved_reason.clone(),
            readable_by_uid: readable_by.filter(|_| core_path.is_some()),
            deleted_to_make_room: core_outcome.deleted.clone(),
        },
        chain: chain_outcome,
        snapshots,
        fires,
        stages,
        config_path: config_path.to_string_lossy().into_owned(),
        errors: log.problems(),
        log: log.messages().to_vec(),
    };

    // 6) Where the record went, in the log (and the record's own log).
    match &dir {
        Some(dir) => {
            let record_stem = core_outcome
                .name
                .as_deref()
                .map(|name| name.strip_suffix(extension).unwrap_or(name).to_string())
                .unwrap_or(stem);
            let name = |n: u32| {
                if n == 0 {
                    format!("{record_stem}.json")
                } else {
                    format!("{record_stem}.{n}.json")
                }
            };
            crash_record.log.push(crate::syslog::Message {
                severity: crate::syslog::Severity::Info,
                text: "crash record written".into(),
            });
            match crash_record.write(dir.fd.as_fd(), readable_by, name) {
                Ok(name) => log.info(format!("crash record {}", dir.path.join(name).display())),
                Err(err) => log.error(format!(
                    "cannot write the crash record in {}: {err}; the record was: {}",
                    dir.path.display(),
                    String::from_utf8_lossy(&crash_record.to_json()).replace('\n', " ")
                )),
            }
        }
        None => log.error(format!(
            "no safe directory for the crash record; the record was: {}",
            String::from_utf8_lossy(&crash_record.to_json()).replace('\n', " ")
        )),
    }
    verdict
}

/// Why the core must not be kept because of the per-program rate limit.
fn rate_limited(dir: &CoreDir, name: &str, max_per_minute: u32) -> Option<String> {
    if max_per_minute == 0 {
        return None;
    }
    let recent =
        crate::ratelimit::recent_cores(dir.fd.as_fd(), name, std::time::SystemTime::now()).ok()?;
    (recent >= max_per_minute as usize).then(|| {
        format!(
            "rate limit: {recent} cores of {name} saved in the last minute (max_cores_per_minute = {max_per_minute})"
        )
    })
}

fn pid_text(args: &KernelArgs) -> String {
    args.pid
        .map(|p| p.to_string())
        .unwrap_or_else(|| "?".into())
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Where the core directory is and whether it can be used, for `status`.
pub fn describe_core_dir(config: &Config) -> Result<CoreDir, String> {
    coredir::open_checked(&config.core_dir, false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::ffi::OsStrExt;
    use std::path::PathBuf;

    struct Scratch(PathBuf);

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// A core directory and a configuration for it; the log goes to files
    /// of the scratch directory, not the system log.
    fn scratch(tag: &str, extra: &str) -> (Scratch, PathBuf, Log) {
        let dir = std::env::temp_dir().join(format!("handler-handle-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let config = dir.join("config.toml");
        std::fs::write(
            &config,
            format!(
                "core_dir = \"{}\"\nmin_free = 0\nsnapshot_deadline = 1\n\
                 snapshot_active_sessions = false\nsnapshot_user_daemon = false\n{extra}\n",
                dir.join("cores").display()
            ),
        )
        .unwrap();
        std::fs::write(dir.join("kmsg"), "").unwrap();
        let log = Log::new(dir.join("no-syslog"), dir.join("kmsg"));
        (Scratch(dir), config, log)
    }

    fn args(config: &Path, fields: &[&str]) -> Vec<OsString> {
        let mut args = vec![OsString::from("--config"), config.as_os_str().to_owned()];
        args.extend(fields.iter().map(OsString::from));
        args
    }

    fn record_of(cores: &Path) -> serde_json::Value {
        let name = std::fs::read_dir(cores)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .find(|n| n.as_bytes().ends_with(b".json"))
            .expect("a record");
        serde_json::from_slice(&std::fs::read(cores.join(name)).unwrap()).unwrap()
    }

    #[test]
    fn garbage_arguments_still_save_the_core() {
        let (dir, config, mut log) = scratch("garbage", "");
        let core: Vec<u8> = (0..3_000_000u32).map(|i| (i % 7) as u8).collect();
        let verdict = handle(
            args(&config, &["P=notanumber", "junk", "e=../x\ny"]),
            &mut &core[..],
            &mut log,
        );
        assert_eq!(verdict, Verdict::Done);
        let cores = dir.0.join("cores");
        let record = record_of(&cores);
        assert_eq!(record["core"]["complete"], true, "{record:#}");
        let path = PathBuf::from(record["core"]["path"].as_str().unwrap());
        assert_eq!(path.parent().unwrap(), cores);
        assert!(path
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("core._._x_y.unknown."));
        assert_eq!(std::fs::read(&path).unwrap(), core);
        assert_eq!(record["process_identity"]["state"], "could_not_tell");
        let errors = record["errors"].to_string();
        assert!(
            errors.contains("field P= is not a valid number"),
            "{errors}"
        );
        assert!(errors.contains("not KEY=VALUE"), "{errors}");
        // Nothing reached a syslog socket: the kernel log file got it all.
        let kmsg = std::fs::read_to_string(dir.0.join("kmsg")).unwrap();
        assert!(kmsg.contains("saved to"), "{kmsg}");
    }

    #[test]
    fn cores_left_out_on_purpose_are_not_lost() {
        let (dir, config, mut log) = scratch("limit0", "max_cores_per_minute = 1");
        let cores = dir.0.join("cores");
        let verdict = handle(
            args(&config, &["P=7", "c=0", "e=x"]),
            &mut &b"core"[..],
            &mut log,
        );
        assert_eq!(verdict, Verdict::Done);
        assert_eq!(record_of(&cores)["core"]["saved"], false);

        for pid in [8, 9] {
            let verdict = handle(
                args(&config, &[&format!("P={pid}"), "e=loop"]),
                &mut &b"core"[..],
                &mut log,
            );
            assert_eq!(verdict, Verdict::Done);
        }
        let names: Vec<String> = std::fs::read_dir(&cores)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.starts_with("core.loop.") && !n.ends_with(".json"))
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
    }
}
