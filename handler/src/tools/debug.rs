//! `debug`: a debugger (gdb by default) on the executable and the core of
//! the latest matching crash. A compressed core is first decompressed into
//! a private temporary directory (mode 0700, under $TMPDIR or /var/tmp, as
//! cores can be larger than a RAM-backed /tmp), removed when the debugger
//! exits. Without a terminal gdb runs in batch mode and prints the
//! backtrace, so the command can be scripted.

use super::core::{copy_sparse, create_private, open, reader};
use super::human::escape;
use super::output::require_program;
use super::show;
use super::DebugArgs;
use anyhow::{Context, Result};
use std::io::IsTerminal;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

/// A directory only this user can enter, removed with its contents when dropped.
pub(super) struct PrivateDir(pub(super) PathBuf);

impl PrivateDir {
    pub(super) fn create() -> Result<PrivateDir> {
        let base = std::env::var_os("TMPDIR")
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
            .unwrap_or_else(|| PathBuf::from("/var/tmp"));
        let mut random = [0u8; 8];
        rustix::rand::getrandom(&mut random, rustix::rand::GetRandomFlags::empty())
            .context("getrandom")?;
        let name: String = random.iter().map(|b| format!("{b:02x}")).collect();
        let path = base.join(format!("lttng-coredump-{name}"));
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&path)
            .with_context(|| format!("cannot create the temporary directory {}", path.display()))?;
        Ok(PrivateDir(path))
    }
}

impl Drop for PrivateDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn run(args: &DebugArgs) -> Result<ExitCode> {
    let crash = show::latest(&args.selection, args.count)?;
    // Said before anything is decompressed: a missing gdb names its package.
    require_program(&args.debugger)?;
    let extra = match &args.debugger_arguments {
        Some(text) => shlex::split(text).ok_or_else(|| {
            anyhow::anyhow!(
                "--debugger-arguments {:?}: unbalanced quotes (the arguments are split as a \
                 shell would)",
                text
            )
        })?,
        None => Vec::new(),
    };
    let quiet = args.selection.quiet;
    let file = open(&crash)?;
    let stored = crash.core_path().expect("open checked it");
    let mut temporary = None;
    let core: PathBuf = if crash.compression() == "none" {
        drop(file);
        stored.clone()
    } else {
        let dir = PrivateDir::create()?;
        let path = dir.0.join("core");
        let mut to = create_private(&path, true)?;
        let mut from = reader(&crash, file)?;
        if !quiet {
            eprintln!("decompressing {} into {}", stored.display(), path.display());
        }
        copy_sparse(&mut from, &mut to)
            .with_context(|| format!("decompressing {} to {}", stored.display(), path.display()))?;
        temporary = Some(dir);
        path
    };
    let exe = crash.exe_path().map(PathBuf::from);
    let mut command = Command::new(&args.debugger);
    let batch = !std::io::stdin().is_terminal() && is_gdb(&args.debugger);
    if batch {
        command.args(["--batch", "-ex", "bt"]);
    }
    command.args(&extra);
    match &exe {
        Some(exe) if Path::new(exe).is_file() => {
            command.arg(exe).arg(&core);
        }
        Some(exe) => {
            eprintln!(
                "lttng-coredump: the executable {} is no longer there; debugging the core alone",
                escape(&exe.to_string_lossy())
            );
            if is_gdb(&args.debugger) {
                command.arg("--core").arg(&core);
            } else {
                command.arg(&core);
            }
        }
        None => {
            if is_gdb(&args.debugger) {
                command.arg("--core").arg(&core);
            } else {
                command.arg(&core);
            }
        }
    }
    if !quiet {
        eprintln!(
            "debugging the crash of PID {} ({}) at {}",
            crash.pid().unwrap_or(0),
            escape(crash.process_name().unwrap_or("?")),
            crash
                .time()
                .map(super::select::local_time)
                .unwrap_or_default()
        );
    }
    // Ctrl-C belongs to the debugger: this process waits for it and then
    // removes the temporary core (a second handler cannot be set: ignore).
    let _ = ctrlc::set_handler(|| {});
    let status = command
        .status()
        .with_context(|| format!("cannot run the debugger {:?}", args.debugger))?;
    drop(temporary);
    Ok(match status.code() {
        Some(0) => ExitCode::SUCCESS,
        Some(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        None => ExitCode::FAILURE,
    })
}

fn is_gdb(debugger: &str) -> bool {
    Path::new(debugger)
        .file_name()
        .is_some_and(|name| name == "gdb")
}
