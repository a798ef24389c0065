//! `debug`: a debugger (gdb by default) on the executable and the core of
//! the latest matching crash. A compressed core is first decompressed into
//! a private temporary directory (mode 0700, under $TMPDIR or /var/tmp, as
//! cores can be larger than a RAM-backed /tmp), removed when the debugger
//! exits. Without a terminal gdb runs in batch mode and prints the
//! backtrace, so the command can be scripted.
//!
//! When root debugs another user's crash, the debugger runs as that user
//! ([`crate::base::user_child`]: their executable, their core, their `.gdbinit`
//! and auto-load scripts never run as root), decompressing the core, when
//! it must, into a directory it creates itself; on a terminal it gets a
//! pseudo-terminal of its own that root relays, never root's terminal. A
//! core only root may read (the process was not the user's own in every
//! respect) is not shown to that user: refused, with what to do instead.

use super::output::require_program;
use super::read_core::{copy_sparse, create_private, open, reader};
use super::show;
use super::DebugArgs;
use crate::base::human::escape;
use crate::base::user_child::{self, Input, UserCommand, Who};
use anyhow::{bail, Context, Result};
use std::io::{BufRead, BufReader, IsTerminal, Write};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Duration;

/// A directory only this user can enter, removed with its contents when dropped.
pub(super) struct PrivateDir(pub(super) PathBuf);

impl PrivateDir {
    pub(super) fn create() -> Result<PrivateDir> {
        let path = super::user_side::temporary_name()?;
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
    let extra = debugger_arguments(args)?;
    let quiet = args.selection.quiet;
    if let Some(who) = user_child::acting_as(crash.uid().map(u64::from), crash.gid().map(u64::from))
    {
        return run_as_user(args, &crash, who, &extra);
    }
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

/// The default `--timeout`s: a person at a terminal debugs for long.
const BATCH_TIMEOUT: Duration = Duration::from_secs(300);
const TERMINAL_TIMEOUT: Duration = Duration::from_secs(24 * 3600);
/// Bytes of a batch debugger's output relayed at most.
const MAX_OUTPUT: u64 = 256 << 20;

/// `-A ARGS`, split as a shell would (quotes keep words together).
fn debugger_arguments(args: &DebugArgs) -> Result<Vec<String>> {
    match &args.debugger_arguments {
        Some(text) => shlex::split(text).ok_or_else(|| {
            anyhow::anyhow!(
                "--debugger-arguments {text:?}: unbalanced quotes (the arguments are split as a \
                 shell would)"
            )
        }),
        None => Ok(Vec::new()),
    }
}

/// `debug` by root over the crash of `who`: the debugger runs as them.
fn run_as_user(
    args: &DebugArgs,
    crash: &crate::store::crashes::Crash,
    who: Who,
    extra: &[String],
) -> Result<ExitCode> {
    let pid = crash.pid().unwrap_or(0);
    let Some(core) = crash.core_path() else {
        drop(open(crash)?);
        bail!("the crash of PID {pid} has no core");
    };
    if crash.core().readable_by_uid != Some(who.uid) {
        bail!(
            "the core of PID {pid} may be read by root only (the process was not {}'s own in \
             every respect: set-uid, capabilities, or not dumpable): debugging it as that user \
             would show it to them, and root does not run a debugger over their executable. \
             Copy it (lttng-coredump dump {pid} -o FILE) and debug that copy knowingly, e.g. \
             gdb -nx -iex 'set auto-load off' EXE FILE",
            escape(&who.name)
        );
    }
    let terminal = std::io::stdin().is_terminal();
    let temporary = super::user_side::temporary_name()?;
    let exe = crash.exe_path().unwrap_or_default().to_string();
    let timeout = args
        .timeout
        .map(Duration::from_secs)
        .unwrap_or(if terminal {
            TERMINAL_TIMEOUT
        } else {
            BATCH_TIMEOUT
        });
    let command = UserCommand::task(Some(who.clone()), super::user_side::DEBUG)
        .arg(&core)
        .arg(crash.compression())
        .arg(&temporary)
        .arg(&args.debugger)
        .arg(exe)
        .arg(if terminal { "-" } else { "batch" })
        .args(extra)
        .deadline(timeout)
        .max_output(MAX_OUTPUT);
    if !args.selection.quiet {
        eprintln!(
            "debugging the crash of PID {pid} ({}) at {}, as {}",
            escape(crash.process_name().unwrap_or("?")),
            crash
                .time()
                .map(super::select::local_time)
                .unwrap_or_default(),
            escape(&who.describe())
        );
    }
    let status = if terminal {
        command.run_on_terminal()
    } else {
        relay_batch(command)
    };
    // The child removes its directory; one it was killed before removing
    // is removed by another child of the same user.
    if crash.compression() != "none" {
        let _ = UserCommand::task(Some(who), super::user_side::REMOVE)
            .arg(&temporary)
            .deadline(Duration::from_secs(30))
            .spawn(Input::Null)
            .and_then(|running| running.finish());
    }
    let status = status?;
    Ok(match status.code() {
        Some(0) => ExitCode::SUCCESS,
        Some(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        None => ExitCode::FAILURE,
    })
}

/// Runs a batch debugger with pipes: its output to standard output (its
/// control characters escaped when that is a terminal), its errors to
/// standard error.
fn relay_batch(command: UserCommand) -> Result<std::process::ExitStatus> {
    let running = command.spawn(Input::Null)?;
    let to_terminal = std::io::stdout().is_terminal();
    let mut reader = BufReader::new(running);
    let mut out = std::io::stdout().lock();
    let mut line = Vec::new();
    let relayed = loop {
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) => break Ok(()),
            Ok(_) if to_terminal => {
                let text = String::from_utf8_lossy(&line);
                let text = crate::base::human::escape_controls(text.trim_end_matches('\n'));
                writeln!(out, "{text}")?;
            }
            Ok(_) => out.write_all(&line)?,
            Err(err) => break Err(err),
        }
    };
    out.flush()?;
    let finished = reader.into_inner().finish()?;
    relayed?;
    for line in finished.errors.lines() {
        eprintln!("{}", crate::base::human::escape_controls(line));
    }
    Ok(finished.status)
}

fn is_gdb(debugger: &str) -> bool {
    Path::new(debugger)
        .file_name()
        .is_some_and(|name| name == "gdb")
}
