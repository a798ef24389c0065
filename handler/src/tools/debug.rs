//! `debug`: a debugger (gdb by default) on the executable and the core of
//! the latest matching crash. A compressed core is first decompressed into
//! a private temporary directory (mode 0700, under $TMPDIR or /var/tmp, as
//! cores can be larger than a RAM-backed /tmp), removed when the debugger
//! exits. Without a terminal gdb runs in batch mode and prints the
//! backtrace, so the command can be scripted. SIGTERM or SIGHUP ends the
//! debugger with the tool, puts the terminal back and removes what was
//! decompressed ([`super::termination`]); Ctrl-C is the debugger's.
//!
//! When root debugs another user's crash, the debugger runs as that user
//! ([`crate::base::user_child`]: their executable, their core, their `.gdbinit`
//! and auto-load scripts never run as root), decompressing the core, when
//! it must, into a directory it creates itself; on a terminal it gets a
//! pseudo-terminal of its own that root relays, never root's terminal.
//!
//! A core only root may read (the process was not the user's own in every
//! respect: set-uid, capabilities) is not shown to that user. Root debugs
//! it as root, when the files involved are root's and nobody else's: the
//! executable and every directory on its path only root can change
//! ([`crate::base::trusted_path`], resolved by hand, links followed one by
//! one); the core a copy root makes in a directory of its own; gdb (no
//! other debugger) with no init file (`-nx -nh`), no auto-loading of any
//! kind (`set auto-load off`: scripts beside objfiles, `.debug_gdb_scripts`,
//! a local `.gdbinit`, libthread_db), no debuginfod, no user site of
//! Python, `HOME` root's own whatever the caller's is, in `/`, in a new
//! session with a pseudo-terminal of its own as for users. An executable
//! someone else could change (a user's program holding capabilities, a
//! set-uid program in a user's directory) is refused, with what to do.

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
        let pid = crash.pid().unwrap_or(0);
        if crash.core_path().is_none() {
            drop(open(&crash)?);
            bail!("the crash of PID {pid} has no core");
        }
        if crash.core().readable_by_uid != Some(who.uid) {
            return run_as_root_over_root_only_core(args, &crash, &who, &extra);
        }
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
    // Ctrl-C and Ctrl-\ belong to the debugger: this process waits for it
    // and then removes the temporary core. SIGTERM and SIGHUP end both.
    super::termination::hear_but_not_obey_interrupts();
    let leftover = temporary.as_ref().map(|dir| dir.0.clone());
    let debugger = super::termination::TerminalProgram::register(move || {
        if let Some(dir) = &leftover {
            let _ = std::fs::remove_dir_all(dir);
        }
    });
    let mut child = command
        .spawn()
        .with_context(|| format!("cannot run the debugger {:?}", args.debugger))?;
    debugger.started(child.id());
    let status = child.wait();
    super::termination::hold_if_terminating();
    drop(debugger);
    let status =
        status.with_context(|| format!("cannot wait for the debugger {:?}", args.debugger))?;
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

/// `--timeout`, or its default: a person at a terminal debugs for long.
fn timeout_of(args: &DebugArgs, terminal: bool) -> Duration {
    args.timeout
        .map(Duration::from_secs)
        .unwrap_or(if terminal {
            TERMINAL_TIMEOUT
        } else {
            BATCH_TIMEOUT
        })
}

/// What gdb is told before anything else when root runs it over a
/// root-only core: no init file of anyone's, no auto-loading of any kind,
/// no debuginfod.
pub const ROOT_GDB_ARGUMENTS: [&str; 6] = [
    "-nx",
    "-nh",
    "-iex",
    "set auto-load off",
    "-iex",
    "set debuginfod enabled off",
];

/// `debug` by root over a core only root may read (the process of `who`
/// was set-uid, or held capabilities): gdb runs as root, hardened (see the
/// module's documentation), over root's copy of the core, when the
/// executable is root's alone; refused otherwise.
fn run_as_root_over_root_only_core(
    args: &DebugArgs,
    crash: &crate::store::crashes::Crash,
    who: &Who,
    extra: &[String],
) -> Result<ExitCode> {
    let pid = crash.pid().unwrap_or(0);
    let what_instead = format!(
        "copy the core (lttng-coredump dump {pid} -o FILE) and debug that copy knowingly, e.g. \
         gdb -nx -iex 'set auto-load off' EXE FILE"
    );
    let exe = crash.exe_path().map(PathBuf::from);
    let refused = |why: String| {
        anyhow::anyhow!(
            "the core of PID {pid} may be read by root only (the process was not {}'s own in \
             every respect: set-uid or capabilities), and root debugs it only when the files \
             involved are root's alone: {why}; {what_instead}",
            escape(&who.name)
        )
    };
    if !is_gdb(&args.debugger) {
        return Err(refused(format!(
            "only gdb, whose init files and auto-loading can all be turned off, is run as root \
             over it, not {}",
            escape(&args.debugger)
        )));
    }
    // A gdb named by its path is root's alone too (a name is looked up in
    // a fixed PATH of root's directories).
    if args.debugger.contains('/') {
        if let Err(why) =
            crate::base::trusted_path::check_only_root_can_change(Path::new(&args.debugger))
        {
            return Err(refused(format!(
                "the debugger is not root's alone ({})",
                escape(&why)
            )));
        }
    }
    let Some(exe) = exe.filter(|exe| exe.is_absolute()) else {
        return Err(refused("the record names no executable".into()));
    };
    if let Err(why) = crate::base::trusted_path::check_only_root_can_change(&exe) {
        return Err(refused(format!(
            "its executable is not root's alone ({})",
            escape(&why)
        )));
    }
    let quiet = args.selection.quiet;
    let file = open(crash)?;
    let stored = crash.core_path().expect("open checked it");
    let dir = PrivateDir::create()?;
    let copy = dir.0.join("core");
    {
        let mut to = create_private(&copy, true)?;
        let mut from = reader(crash, file)?;
        if !quiet {
            eprintln!("copying {} into {}", stored.display(), copy.display());
        }
        copy_sparse(&mut from, &mut to)
            .with_context(|| format!("copying {} to {}", stored.display(), copy.display()))?;
    }
    let terminal = std::io::stdin().is_terminal();
    let root_home = Who::user(0, 0).home;
    let mut command = UserCommand::program(None, &args.debugger)
        .args(ROOT_GDB_ARGUMENTS)
        .env("HOME", root_home)
        .env("PYTHONNOUSERSITE", "1")
        .deadline(timeout_of(args, terminal))
        .max_output(MAX_OUTPUT);
    if !terminal {
        command = command.args(["--batch", "-ex", "bt"]);
    }
    let command = command.args(extra).arg(&exe).arg(&copy);
    if !quiet {
        eprintln!(
            "debugging the crash of PID {pid} ({}) at {}, as root over root's copy of its \
             root-only core (the process was not {}'s own in every respect), gdb with no init \
             file and no auto-loading",
            escape(crash.process_name().unwrap_or("?")),
            crash
                .time()
                .map(super::select::local_time)
                .unwrap_or_default(),
            escape(&who.name)
        );
    }
    let status = if terminal {
        command.run_on_terminal()
    } else {
        let leftover = dir.0.clone();
        let _on_termination = super::termination::on_termination(move || {
            let _ = std::fs::remove_dir_all(&leftover);
        });
        relay_batch(command)
    };
    drop(dir);
    let status = status?;
    Ok(match status.code() {
        Some(0) => ExitCode::SUCCESS,
        Some(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        None => ExitCode::FAILURE,
    })
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
    let terminal = std::io::stdin().is_terminal();
    let temporary = super::user_side::temporary_name()?;
    let exe = crash.exe_path().unwrap_or_default().to_string();
    let timeout = timeout_of(args, terminal);
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
    // The child removes its directory; one it was killed before removing
    // is removed by another child of the same user.
    let remove_leftover = {
        let (who, temporary) = (who.clone(), temporary.clone());
        let compressed = crash.compression() != "none";
        move || {
            if compressed {
                let _ = UserCommand::task(Some(who), super::user_side::REMOVE)
                    .arg(&temporary)
                    .deadline(Duration::from_secs(30))
                    .spawn(Input::Null)
                    .and_then(|running| running.finish());
            }
        }
    };
    let status = if terminal {
        command.run_on_terminal()
    } else {
        let _on_termination = super::termination::on_termination(remove_leftover.clone());
        relay_batch(command)
    };
    remove_leftover();
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
