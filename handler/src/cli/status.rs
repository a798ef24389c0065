//! `lttng-coredump status`: what is in place, for people or as JSON, with
//! [`crate::setup::status`]'s exit status.

use super::kernel_paths::KernelPaths;
use crate::setup::status::{gather_with, ROOT_SESSIOND_SOCKET};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

// The variant's doc comment in `Command` is the subcommand's help.
#[derive(clap::Args)]
pub struct StatusArgs {
    /// The configuration to check (default: the installed line's, or the default file).
    #[arg(long)]
    config: Option<PathBuf>,
    #[command(flatten)]
    paths: KernelPaths,
    /// Everything as one JSON object.
    #[arg(long)]
    json: bool,
}

/// Prints the status; its exit status.
pub fn run(args: StatusArgs) -> ExitCode {
    let StatusArgs {
        config,
        paths,
        json,
    } = args;
    let status = gather_with(
        &paths.kernel(),
        &paths.backup,
        config.as_deref(),
        Path::new(ROOT_SESSIOND_SOCKET),
        &paths.boot_files(),
    );
    print!("{}", if json { status.json() } else { status.text() });
    ExitCode::from(status.exit_status)
}
