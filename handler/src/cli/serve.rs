//! `lttng-coredump serve`: its options, and whether the service runs
//! under its holder (`--hold`) or alone.

use super::kernel_paths::KernelPaths;
use crate::service::serve::{self, ServeOptions, DEFAULT_SOCKET, DEFAULT_WORKERS};
use std::path::PathBuf;

// The variant's doc comment in `Command` is the subcommand's help.
#[derive(clap::Args)]
pub struct ServeArgs {
    /// Where to listen (its directory is made root-only).
    #[arg(long, default_value = DEFAULT_SOCKET)]
    socket: PathBuf,
    /// The configuration every crash uses (default: /etc/lttng-coredump/config.toml).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Crashes handled at once (more wait in the kernel, held).
    #[arg(long, default_value_t = DEFAULT_WORKERS)]
    workers: usize,
    /// Hold the listening socket in a small parent process and run the
    /// service as its child, started again whenever it dies (for
    /// machines without systemd's socket activation).
    #[arg(long)]
    hold: bool,
    /// The listening socket is on standard input (how --hold passes it).
    #[arg(long, hide = true)]
    socket_on_stdin: bool,
    /// Handle the one crash whose connection is on standard input, when
    /// the service says so on standard output (how the service runs each
    /// crash in a process of its own).
    #[arg(long, hide = true, conflicts_with_all = ["hold", "socket_on_stdin"])]
    crash_on_stdin: bool,
    /// The crash's uid's share of the workers (with --crash-on-stdin).
    #[arg(long, hide = true, requires = "crash_on_stdin")]
    share: Option<u32>,
    /// Started ahead of its crash (with --crash-on-stdin): nothing on
    /// standard input; the connection and the share come on standard
    /// output's line from the service.
    #[arg(
        long,
        hide = true,
        requires = "crash_on_stdin",
        conflicts_with = "share"
    )]
    spare: bool,
    #[command(flatten)]
    paths: KernelPaths,
}

/// Runs the service until it is stopped.
pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    let ServeArgs {
        socket,
        config,
        workers,
        hold,
        socket_on_stdin,
        crash_on_stdin,
        share,
        spare,
        paths,
    } = args;
    if crash_on_stdin {
        return serve::run_one_crash(config.as_deref(), share, spare);
    }
    let options = ServeOptions {
        socket,
        config,
        workers,
        kernel: paths.kernel(),
        backup: paths.backup,
        socket_on_stdin,
    };
    if hold {
        crate::service::hold::run(&options)
    } else {
        serve::run(&options)
    }
}
