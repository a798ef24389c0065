//! `lttng-coredump-livecore`: the live-core library as a command, for the
//! tests and the benchmark (the handler's `gcore` subcommand is the user's
//! command). Prints the report as JSON on its last line.
//!
//! ```text
//! lttng-coredump-livecore PID (-o FILE | --stdout) [--method stop-and-copy|copy-on-write|pre-copy]
//!     [--zstd LEVEL] [--buffer-mib N | --buffer-kib N] [--stop-buffer-mib N] [--copy-threads N] [--no-raise-priority] [--precopy-give-up-kib N]
//!     [--staging-in DIR --staging-budget-kib N] [--stop-timeout-ms N] [--deadline-s N]
//!     [--snapshots] [--session NAME]... [--no-user-daemon] [--snapshot-deadline-ms N]
//!     [--stages] [--hold-at STAGE]
//! ```
//!
//! `--stages` prints `stage NAME PID` (PID: the dumping child's) on stdout
//! at each stage; `--hold-at STAGE` also prints `hold NAME PID` there and
//! waits for a line on stdin before going on (a test kills the child then,
//! or lets it go on). `--staging-in DIR --staging-budget-kib N`: pre-copy
//! stages the memory in an unnamed file in DIR and within N KiB, as the
//! handler's crash store has it (`Options::staging`).

use lttng_coredump_livecore::{dump, Method, Options, Output, SnapshotPlan, Stage, StagingSpace};
use std::os::fd::{FromRawFd, OwnedFd};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

fn usage() -> ExitCode {
    eprintln!(
        "usage: lttng-coredump-livecore PID (-o FILE | --stdout) [--method stop-and-copy|copy-on-write|pre-copy] [--zstd LEVEL] [--buffer-mib N | --buffer-kib N] [--stop-buffer-mib N] [--copy-threads N] [--no-raise-priority] [--precopy-give-up-kib N] [--staging-in DIR --staging-budget-kib N] [--stop-timeout-ms N] [--deadline-s N] [--snapshots] [--session NAME]... [--no-user-daemon] [--snapshot-deadline-ms N] [--stages] [--hold-at STAGE]"
    );
    ExitCode::from(2)
}

/// Writes a line on stdout without Rust's stdout lock (the hook runs in a
/// forked child, where a lock held by a vanished thread could never be
/// taken).
fn raw_line(text: &str) {
    let bytes = format!("{text}\n");
    // SAFETY: a plain write of our own buffer to descriptor 1.
    let _ = unsafe { libc::write(1, bytes.as_ptr().cast(), bytes.len()) };
}

fn raw_wait_line() {
    let mut byte = [0u8; 1];
    loop {
        // SAFETY: a plain read into our own one-byte buffer.
        let n = unsafe { libc::read(0, byte.as_mut_ptr().cast(), 1) };
        if n <= 0 || byte[0] == b'\n' {
            return;
        }
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut pid = None;
    let mut output = None;
    let mut options = Options::default();
    let mut plan: Option<SnapshotPlan> = None;
    let mut stages = false;
    let mut hold: Option<Stage> = None;
    let mut i = 0;
    let value = |i: &mut usize| -> Option<String> {
        *i += 1;
        args.get(*i).cloned()
    };
    let mut staging_in: Option<String> = None;
    let mut staging_budget: Option<u64> = None;
    while i < args.len() {
        let arg = args[i].as_str();
        match arg {
            "-o" => match value(&mut i) {
                Some(path) => output = Some(Output::Path(path.into())),
                None => return usage(),
            },
            "--stdout" => {
                // SAFETY: descriptor 1 is ours to hand over; nothing else in
                // this program writes to it through std (the report goes to
                // stderr in this mode).
                output = Some(Output::Fd(unsafe { OwnedFd::from_raw_fd(libc::dup(1)) }));
            }
            "--method" => match value(&mut i).and_then(|m| m.parse::<Method>().ok()) {
                Some(m) => options.method = Some(m),
                None => return usage(),
            },
            "--zstd" => match value(&mut i).and_then(|v| v.parse().ok()) {
                Some(level) => options.zstd_level = Some(level),
                None => return usage(),
            },
            "--buffer-mib" => match value(&mut i).and_then(|v| v.parse::<usize>().ok()) {
                Some(mib) => options.copy_buffer = mib << 20,
                None => return usage(),
            },
            "--buffer-kib" => match value(&mut i).and_then(|v| v.parse::<usize>().ok()) {
                Some(kib) => options.copy_buffer = kib << 10,
                None => return usage(),
            },
            "--stop-buffer-mib" => match value(&mut i).and_then(|v| v.parse::<u64>().ok()) {
                Some(mib) => options.stop_copy_memory = Some(mib << 20),
                None => return usage(),
            },
            "--copy-threads" => match value(&mut i).and_then(|v| v.parse::<usize>().ok()) {
                Some(n) => options.copy_threads = n,
                None => return usage(),
            },
            "--no-raise-priority" => options.raise_priority = false,
            "--staging-in" => match value(&mut i) {
                Some(dir) => staging_in = Some(dir),
                None => return usage(),
            },
            "--staging-budget-kib" => match value(&mut i).and_then(|v| v.parse::<u64>().ok()) {
                Some(kib) => staging_budget = Some(kib << 10),
                None => return usage(),
            },
            "--precopy-give-up-kib" => match value(&mut i).and_then(|v| v.parse::<u64>().ok()) {
                Some(kib) => options.precopy_give_up = kib << 10,
                None => return usage(),
            },
            "--stop-timeout-ms" => match value(&mut i).and_then(|v| v.parse().ok()) {
                Some(ms) => options.stop_timeout = Duration::from_millis(ms),
                None => return usage(),
            },
            "--deadline-s" => match value(&mut i).and_then(|v| v.parse().ok()) {
                Some(s) => options.deadline = Some(Duration::from_secs(s)),
                None => return usage(),
            },
            "--snapshots" => {
                plan.get_or_insert_with(SnapshotPlan::default);
            }
            "--session" => match value(&mut i) {
                Some(name) => plan
                    .get_or_insert_with(SnapshotPlan::default)
                    .extra_sessions
                    .push(name),
                None => return usage(),
            },
            "--no-user-daemon" => {
                plan.get_or_insert_with(SnapshotPlan::default).user_daemon = false
            }
            "--snapshot-deadline-ms" => match value(&mut i).and_then(|v| v.parse().ok()) {
                Some(ms) => {
                    plan.get_or_insert_with(SnapshotPlan::default).deadline =
                        Duration::from_millis(ms)
                }
                None => return usage(),
            },
            "--stages" => stages = true,
            "--hold-at" => match value(&mut i).as_deref().and_then(Stage::from_name) {
                Some(stage) => hold = Some(stage),
                None => return usage(),
            },
            _ if pid.is_none() && !arg.starts_with('-') => match arg.parse() {
                Ok(p) => pid = Some(p),
                Err(_) => return usage(),
            },
            _ => return usage(),
        }
        i += 1;
    }
    let (Some(pid), Some(output)) = (pid, output) else {
        return usage();
    };
    // A caller's staging place (as the handler gives one in its store): an
    // unnamed file in DIR, within the budget.
    match (staging_in, staging_budget) {
        (None, None) => {}
        (Some(dir), Some(budget)) => {
            use std::os::unix::fs::OpenOptionsExt;
            let file = match std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .mode(0o600)
                .custom_flags(libc::O_TMPFILE)
                .open(&dir)
            {
                Ok(file) => file,
                Err(e) => {
                    eprintln!("lttng-coredump-livecore: a staging file in {dir}: {e}");
                    return ExitCode::from(1);
                }
            };
            options.staging = Some(StagingSpace {
                file: Arc::new(OwnedFd::from(file)),
                budget,
                limit: "--staging-budget-kib".into(),
            });
        }
        _ => return usage(),
    }
    let to_stdout = matches!(output, Output::Fd(_));
    options.snapshots = plan;
    if stages || hold.is_some() {
        options.stage_hook = Some(Arc::new(move |stage: Stage| {
            // SAFETY: getpid has no memory effects.
            let me = unsafe { libc::getpid() };
            if stages {
                raw_line(&format!("stage {} {me}", stage.name()));
            }
            if hold == Some(stage) {
                raw_line(&format!("hold {} {me}", stage.name()));
                raw_wait_line();
            }
        }));
    }
    let result = dump(pid, output, &options);
    let json = serde_json::to_string(&result).unwrap_or_default();
    if to_stdout {
        eprintln!("{json}");
    } else {
        println!("{json}");
    }
    match result {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lttng-coredump-livecore: {e}");
            ExitCode::from(1)
        }
    }
}
