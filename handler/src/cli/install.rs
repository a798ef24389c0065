//! `lttng-coredump install`: its options, turned into what
//! [`crate::setup::install::install`] does.

use super::kernel_paths::KernelPaths;
use crate::kernel::settings::KernelFeatures;
use crate::service::serve::DEFAULT_SOCKET;
use crate::setup::install::{self, InstallOptions};
use anyhow::Context as _;
use std::path::PathBuf;

// The variant's doc comment in `Command` is the subcommand's help.
#[derive(clap::Args)]
pub struct InstallArgs {
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
    /// line survives a reboot (and wins over systemd's 50-coredump.conf);
    /// when fs.fuse.max_request_timeout is 0, set it to 300 and keep it
    /// there too.
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
    #[arg(long, num_args = 0..=1, default_missing_value = DEFAULT_SOCKET)]
    socket: Option<PathBuf>,
}

/// Installs the handler; what was done, for a person.
pub fn run(args: InstallArgs) -> anyhow::Result<String> {
    let InstallArgs {
        binary,
        config,
        paths,
        pipe_limit,
        socket,
        persist,
        chain_previous,
    } = args;
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
            kernel: paths.kernel(),
            backup: paths.backup,
            pipe_limit,
            features: KernelFeatures::running(),
            socket,
            persist,
            chain_previous,
            boot,
            mask,
        })
    })
}
