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
        paths,
    } = args;
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
