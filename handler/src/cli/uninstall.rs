//! `lttng-coredump uninstall`: the backup put back
//! ([`crate::setup::install::uninstall`]), or, for the package's prerm
//! (`--removing`), nothing of the handler left for the kernel to run
//! ([`crate::setup::removal`]).

use super::kernel_paths::KernelPaths;

// The variant's doc comment in `Command` is the subcommand's help.
#[derive(clap::Args)]
pub struct UninstallArgs {
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
}

/// Restores or removes; what was done, for a person.
pub fn run(args: UninstallArgs) -> anyhow::Result<String> {
    let UninstallArgs {
        paths,
        force,
        removing,
    } = args;
    if removing && !force {
        crate::setup::removal::run(
            &paths.kernel(),
            &paths.backup,
            paths.sysctl_file().as_deref(),
            &paths.boot_files(),
        )
    } else {
        crate::setup::install::uninstall(
            &paths.kernel(),
            &paths.backup,
            paths.sysctl_file().as_deref(),
            force,
        )
    }
}
