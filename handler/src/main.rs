//! `lttng-coredump`: the core_pattern handler (`handle`, run by the kernel)
//! and the subcommands a person uses to put it in place.

// Every system call goes through rustix or std; the unsafe code lives in the
// FFI crates (lttng-ctl-sys, lttng-ctl, capi), none here.
#![forbid(unsafe_code)]

mod recover_cmd;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use lttng_coredump_handler::base::syslog::Log;
use lttng_coredump_handler::crash::pipeline::{self, Verdict};
use lttng_coredump_handler::kernel::settings::{KernelFeatures, KernelFiles};
use lttng_coredump_handler::service::serve::{self, ServeOptions};
use lttng_coredump_handler::setup::demo::{self, DemoOptions};
use lttng_coredump_handler::setup::install::{self, InstallOptions};
use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

/// What `handle` says when it is not run by the kernel.
const HANDLE_USAGE: &str = "\
usage: lttng-coredump handle [--config PATH] P=%P u=%u g=%g s=%s t=%t c=%c d=%d F=%F h=%h e=%e E=%E

`handle` is run by the kernel on a crash, with the core on its standard input
(a pipe), from the line `lttng-coredump install` writes to
/proc/sys/kernel/core_pattern. Only that call handles a crash: its arguments
hold the field P= (the crashing PID). Run from a terminal, or without a P=
field (--help included), it does nothing and exits with status 2.
See `lttng-coredump install --help` and `lttng-coredump status`.";

#[derive(Parser)]
#[command(
    name = "lttng-coredump",
    version,
    about = "Keep the LTTng trace and the core of every crash"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run by the kernel on a crash (from core_pattern): snapshots the
    /// traces, then saves the core read on stdin. Takes `[--config PATH]`
    /// then the fields `P=%P u=%u g=%g s=%s t=%t c=%c d=%d F=%F h=%h e=%e E=%E`.
    /// Without a `P=` field, or from a terminal, it prints its usage and
    /// exits with status 2, doing nothing.
    Handle {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 0..)]
        fields: Vec<OsString>,
    },
    /// Put the handler in /proc/sys/kernel/core_pattern (backing up what is there).
    Install {
        /// The handler binary core_pattern runs (default: this program).
        #[arg(long)]
        binary: Option<PathBuf>,
        /// A configuration file for the handler (default: /etc/lttng-coredump/config.toml).
        #[arg(long)]
        config: Option<PathBuf>,
        #[command(flatten)]
        paths: KernelPaths,
        /// core_pipe_limit to set (default: 64, only when it is 0).
        #[arg(long)]
        pipe_limit: Option<u32>,
        /// Also write /etc/sysctl.d/90-lttng-coredump.conf, so that the
        /// line survives a reboot (and wins over systemd's 50-coredump.conf).
        #[arg(long)]
        persist: bool,
        /// Hand every core on to the handler the replaced line ran
        /// (systemd-coredump, apport): writes the [chain] section of the
        /// configuration.
        #[arg(long)]
        chain_previous: bool,
        /// Send cores to the crash service (`serve`) on this socket
        /// (`@@SOCKET`, else `@SOCKET`, else the pipe line, whichever this
        /// kernel takes); refused unless the service answers there.
        #[arg(long, num_args = 0..=1, default_missing_value = serve::DEFAULT_SOCKET)]
        socket: Option<PathBuf>,
    },
    /// Run the crash service on the kernel's coredump socket (core_pattern
    /// `@@SOCKET`): each crash handled like `handle` does, by a resident
    /// process. Puts the socket line in core_pattern when installed with
    /// `install --socket`, and the pipe line back when it stops (SIGTERM).
    ///
    /// The listening socket is the one systemd passes (lttng-coredump.socket,
    /// socket activation), else, with --hold, one a small holder process
    /// keeps while it restarts the service whenever it dies, else its own.
    /// A held socket keeps each crash waiting in its backlog while the
    /// service restarts; one of its own goes with the service, and until it
    /// is back the kernel drops every core.
    Serve {
        /// Where to listen (its directory is made root-only).
        #[arg(long, default_value = serve::DEFAULT_SOCKET)]
        socket: PathBuf,
        /// The configuration every crash uses (default: /etc/lttng-coredump/config.toml).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Crashes handled at once (more wait in the kernel, held).
        #[arg(long, default_value_t = serve::DEFAULT_WORKERS)]
        workers: usize,
        /// Hold the listening socket in a small parent process and run the
        /// service as its child, started again whenever it dies (for
        /// machines without systemd's socket activation).
        #[arg(long)]
        hold: bool,
        /// The listening socket is on standard input (how --hold passes it).
        #[arg(long, hide = true)]
        socket_on_stdin: bool,
        #[command(flatten)]
        paths: KernelPaths,
    },
    /// Restore the core_pattern and core_pipe_limit saved by install.
    Uninstall {
        #[command(flatten)]
        paths: KernelPaths,
        /// Restore even if core_pattern no longer runs the handler.
        #[arg(long)]
        force: bool,
        /// The package is being removed (its prerm): leave nothing of the
        /// handler for the kernel to run, now or after a reboot, and keep a
        /// line someone else wrote since the install.
        #[arg(long, hide = true, conflicts_with = "force")]
        removing: bool,
    },
    /// Say what is installed, whether a session daemon runs, where cores go.
    ///
    /// Exit status: 0 when installed and a crash would be handled as
    /// configured (the binary exists, the configuration is valid, the core
    /// directory is usable, the root session daemon runs); 1 when not
    /// installed; 2 when installed but something is wrong (each printed as
    /// "problem:"). Warnings do not change it.
    Status {
        /// The configuration to check (default: the installed line's, or the default file).
        #[arg(long)]
        config: Option<PathBuf>,
        #[command(flatten)]
        paths: KernelPaths,
        /// Everything as one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Show it work: trace a program built for the demo, install the handler
    /// for the duration, crash the program, and print where its core and its
    /// trace snapshot are, with its last events (needs root and babeltrace2).
    ///
    /// Starts a root session daemon if none runs (and stops it at the end).
    /// Puts core_pattern and core_pipe_limit back exactly, also on an error
    /// or Ctrl-C. Takes no lock: whoever serializes core_pattern changes may
    /// hold its own lock around the demo.
    Demo {
        /// Where the cores and crash records (DIR/core) and the snapshots
        /// (DIR/snapshot) go; must be root-owned and writable only by root.
        #[arg(long, default_value = lttng_coredump_handler::setup::demo::DEFAULT_DIR)]
        dir: PathBuf,
    },
    /// Recover the LTTng trace from a core's own ring buffers (when no
    /// snapshot could be taken). Exit status: 0 recovered; 1 no LTTng
    /// buffers with data in the core; 2 bad usage or input; 3 streams
    /// written but metadata missing.
    Recover(recover_cmd::RecoverArgs),
    /// Write the man pages and shell completions (for packagers).
    #[command(hide = true)]
    GenerateDocs { dir: PathBuf },
    /// The crash tools (list, info, debug, dump, trace, vacuum).
    #[command(flatten)]
    Crash(lttng_coredump_handler::tools::CrashCommand),
}

#[derive(clap::Args)]
struct KernelPaths {
    /// Directory holding core_pattern and core_pipe_limit.
    #[arg(long, default_value = lttng_coredump_handler::kernel::settings::DEFAULT_PROC_SYS_KERNEL)]
    proc_sys_kernel: PathBuf,
    /// Where the previous core_pattern and core_pipe_limit are kept.
    #[arg(long, default_value = lttng_coredump_handler::kernel::backup::DEFAULT_BACKUP)]
    backup: PathBuf,
    /// The sysctl.d file of install --persist (default:
    /// /etc/sysctl.d/90-lttng-coredump.conf, only with the real /proc/sys/kernel).
    #[arg(long)]
    sysctl_file: Option<PathBuf>,
    /// systemd unit directories to read, the first taking the masks of
    /// install --persist, instead of the machine's (for tests).
    #[arg(long, hide = true)]
    unit_dir: Vec<PathBuf>,
}

impl KernelPaths {
    /// Where the boot's settings come from.
    fn boot_files(&self) -> lttng_coredump_handler::kernel::other_handlers::BootFiles {
        if self.unit_dir.is_empty() {
            lttng_coredump_handler::kernel::other_handlers::BootFiles::system()
        } else {
            lttng_coredump_handler::kernel::other_handlers::BootFiles::with_unit_dirs(
                self.unit_dir.clone(),
            )
        }
    }

    /// Whether install --persist may mask the machine's services: with the
    /// real /proc/sys/kernel, or unit directories of the caller's own.
    fn may_mask(&self) -> bool {
        !self.unit_dir.is_empty()
            || self.proc_sys_kernel
                == std::path::Path::new(
                    lttng_coredump_handler::kernel::settings::DEFAULT_PROC_SYS_KERNEL,
                )
    }

    /// The sysctl.d file to write or remove: never the machine's for a
    /// stand-in /proc/sys/kernel (tests, packagers).
    fn sysctl_file(&self) -> Option<PathBuf> {
        self.sysctl_file.clone().or_else(|| {
            (self.proc_sys_kernel
                == std::path::Path::new(
                    lttng_coredump_handler::kernel::settings::DEFAULT_PROC_SYS_KERNEL,
                ))
            .then(|| lttng_coredump_handler::kernel::persist::DEFAULT_SYSCTL_FILE.into())
        })
    }
}

fn main() -> ExitCode {
    // A child of a crash tool acting as a user (`user_child`), before
    // anything else.
    if let Some(code) = lttng_coredump_handler::base::user_child::trampoline(
        lttng_coredump_handler::tools::user_side::TASKS,
    ) {
        return code;
    }
    // The kernel's call never goes through the option parser: no argument,
    // however malformed, may stop the core from being read.
    let mut raw = std::env::args_os();
    let _program = raw.next();
    let mut rest: Vec<OsString> = raw.collect();
    if rest.first().is_some_and(|first| first == "handle") {
        rest.remove(0);
        // The kernel always gives a pipe and a P= field: a terminal on
        // stdin, or arguments without P= (`--help`, a script's guess), is a
        // person trying the command, who gets its usage rather than fired
        // triggers, snapshots and a core file made of whatever stdin held.
        if std::io::IsTerminal::is_terminal(&std::io::stdin())
            || !lttng_coredump_handler::crash::context::is_kernel_form(&rest)
        {
            eprintln!("{}", HANDLE_USAGE);
            return ExitCode::from(2);
        }
        let mut log = Log::default();
        let mut stdin = std::io::stdin().lock();
        // Once the core is read, fd 0 becomes /dev/null: the kernel waits
        // for the pipe's last reader to close before it lets the crashed
        // process go, and the stop actions must run after that.
        let release = || {
            let null = std::fs::File::open("/dev/null")?;
            rustix::stdio::dup2_stdin(&null)?;
            Ok(())
        };
        return match pipeline::handle_then_release(rest, &mut stdin, release, &mut log) {
            Verdict::Done => ExitCode::SUCCESS,
            Verdict::CoreLost => ExitCode::FAILURE,
        };
    }
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Handle { .. } => unreachable!("handled above"),
        Command::Recover(args) => return recover_cmd::run(args),
        Command::Crash(command) => return lttng_coredump_handler::tools::run(command),
        Command::GenerateDocs { dir } => {
            lttng_coredump_handler::docs::generate(<Cli as clap::CommandFactory>::command(), &dir)
                .map(|written| written.join("\n") + "\n")
                .with_context(|| format!("cannot write the documentation in {}", dir.display()))
        }
        Command::Install {
            binary,
            config,
            paths,
            pipe_limit,
            socket,
            persist,
            chain_previous,
        } => {
            let binary = match binary {
                Some(binary) => Ok(binary),
                None => std::env::current_exe().context("cannot tell where this program is"),
            };
            let persist = match (persist, paths.sysctl_file()) {
                (false, _) => Ok(None),
                (true, Some(file)) => Ok(Some(file)),
                (true, None) => Err(anyhow::anyhow!(
                    "--persist with another --proc-sys-kernel needs --sysctl-file"
                )),
            };
            let boot = paths.boot_files();
            let mask = paths.may_mask();
            binary.and_then(|binary| {
                let persist = persist?;
                install::install(&InstallOptions {
                    binary,
                    config,
                    backup: paths.backup,
                    pipe_limit,
                    kernel: KernelFiles::under(&paths.proc_sys_kernel),
                    features: KernelFeatures::running(),
                    socket,
                    persist,
                    chain_previous,
                    boot,
                    mask,
                })
            })
        }
        Command::Serve {
            socket,
            config,
            workers,
            hold,
            socket_on_stdin,
            paths,
        } => {
            let options = ServeOptions {
                socket,
                config,
                workers,
                kernel: KernelFiles::under(&paths.proc_sys_kernel),
                backup: paths.backup,
                socket_on_stdin,
            };
            if hold {
                lttng_coredump_handler::service::hold::run(&options)
            } else {
                serve::run(&options)
            }
            .map(|()| String::new())
        }
        Command::Uninstall {
            paths,
            force,
            removing: true,
        } if !force => lttng_coredump_handler::setup::removal::run(
            &KernelFiles::under(&paths.proc_sys_kernel),
            &paths.backup,
            paths.sysctl_file().as_deref(),
            &paths.boot_files(),
        ),
        Command::Uninstall { paths, force, .. } => install::uninstall(
            &KernelFiles::under(&paths.proc_sys_kernel),
            &paths.backup,
            paths.sysctl_file().as_deref(),
            force,
        ),
        Command::Demo { dir } => demo::run(&DemoOptions {
            dir,
            kernel: KernelFiles::under(std::path::Path::new(
                lttng_coredump_handler::kernel::settings::DEFAULT_PROC_SYS_KERNEL,
            )),
        })
        .map(|()| String::new()),
        Command::Status {
            config,
            paths,
            json,
        } => {
            let status = lttng_coredump_handler::setup::status::gather_with(
                &KernelFiles::under(&paths.proc_sys_kernel),
                &paths.backup,
                config.as_deref(),
                std::path::Path::new(lttng_coredump_handler::setup::status::ROOT_SESSIOND_SOCKET),
                &paths.boot_files(),
            );
            print!("{}", if json { status.json() } else { status.text() });
            return ExitCode::from(status.exit_status);
        }
    };
    match result {
        Ok(report) => {
            print!("{report}");
            ExitCode::SUCCESS
        }
        Err(err) => {
            // `:#` for the whole chain: what was attempted, then why.
            eprintln!("lttng-coredump: {err:#}");
            ExitCode::FAILURE
        }
    }
}
