//! Analyzes one core file the way the handler will, and prints its report:
//!
//!     analyze-core CORE [--exe PATH] [--uid UID] [--json] [--threads] [--systemd] [--stats] [--no-source]
//!
//! `--uid` analyzes as that user (root only), as the handler does for a
//! crash of that user; run as root without it, it analyzes as `nobody`
//! (a core is never parsed as root). The benchmark (`bench/report`) times this program
//! against `eu-stack --core` and gdb on the same cores; with `--stats` it
//! prints the analysis time and the child's peak memory on stderr.

use lttng_coredump_report::{analyze, render, signature, Debuginfod, Executable, Identity, Limits};
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let mut core = None;
    let (mut exe, mut uid) = (None::<PathBuf>, None::<u32>);
    let (mut json, mut threads, mut systemd, mut stats) = (false, false, false, false);
    let mut source_lines = true;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--exe" => exe = args.next().map(PathBuf::from),
            "--uid" => uid = args.next().and_then(|u| u.parse().ok()),
            "--json" => json = true,
            "--threads" => threads = true,
            "--systemd" => systemd = true,
            "--stats" => stats = true,
            "--no-source" => source_lines = false,
            _ => core = Some(PathBuf::from(arg)),
        }
    }
    let Some(core) = core else {
        eprintln!("usage: analyze-core CORE [--exe PATH] [--uid UID] [--json] [--threads] [--systemd] [--stats] [--no-source]");
        return ExitCode::from(2);
    };
    let file = match std::fs::File::open(&core) {
        Ok(file) => file,
        Err(e) => {
            eprintln!("analyze-core: {}: {e}", core.display());
            return ExitCode::from(2);
        }
    };
    if uid.is_none() && rustix::process::geteuid().is_root() {
        uid = Some(65534);
    }
    let identity = match uid.map(Identity::of_user).transpose() {
        Ok(identity) => identity,
        Err(e) => {
            eprintln!("analyze-core: {e}");
            return ExitCode::from(2);
        }
    };
    let limits = Limits {
        debuginfod: Debuginfod::from_env(),
        source_lines,
        ..Limits::default()
    };
    let report = analyze(
        file.as_fd(),
        exe.as_deref().map(Executable::Path),
        identity.as_ref(),
        &limits,
    );
    match report {
        Ok(report) => {
            if stats {
                eprintln!(
                    "analysis {} ms, child peak RSS {} KiB",
                    report.analysis.milliseconds,
                    report.analysis.peak_rss_kib.unwrap_or(0)
                );
            }
            if json {
                println!("{}", serde_json::to_string_pretty(&report).unwrap());
            } else if systemd {
                print!("{}", render::systemd_stack_trace(&report));
            } else {
                print!(
                    "{}",
                    render::text(
                        &report,
                        &render::Options {
                            all_threads: threads
                        }
                    )
                );
                let sig = signature(&report);
                println!("Signature: {} ({})", sig.hash, sig.title);
            }
            ExitCode::SUCCESS
        }
        Err(failed) => {
            eprintln!("{failed}");
            ExitCode::FAILURE
        }
    }
}
