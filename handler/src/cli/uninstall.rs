//! `lttng-coredump uninstall`: the backup put back
//! ([`crate::setup::install::uninstall`]), or, for the package's prerm
//! (`--removing`), nothing of the handler left for the kernel to run
//! ([`crate::setup::removal`]); then, not for the package (which keeps
//! them until it is purged), what install made for `[submit]`: the spool
//! when no crash in it waits to be sent, and its user
//! ([`crate::setup::submit_removal`]).

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
    /// The configuration whose [submit] spool and user install made
    /// (default: /etc/lttng-coredump/config.toml): the spool is removed when
    /// no crash in it waits to be sent, then the user, when install made
    /// it. The crashes' cores and records stay.
    #[arg(long)]
    config: Option<std::path::PathBuf>,
}

/// Restores or removes; what was done, for a person.
pub fn run(args: UninstallArgs) -> anyhow::Result<String> {
    let UninstallArgs {
        paths,
        force,
        removing,
        config,
    } = args;
    if !removing {
        let restored = crate::setup::install::uninstall(
            &paths.kernel(),
            &paths.backup,
            paths.sysctl_file().as_deref(),
            force,
        );
        // The spool goes whether core_pattern was the handler's or not:
        // a second uninstall, once the queue is sent, removes it.
        let mut spool = crate::setup::submit_removal::remove(config.as_deref())?;
        // The submitter unit's drop-in install wrote for a spool elsewhere,
        // once that spool is gone (one that stays, crashes still queued in
        // it, keeps the unit able to send them; an administrator's own
        // drop-in of that name always stays).
        let boot = paths.boot_files();
        let spool_gone = crate::base::config::Config::load(config.as_deref())
            .config
            .submit
            .is_none_or(|submit| !submit.spool_dir.exists());
        if let Some(dir) = boot.mask_dir().filter(|_| paths.may_mask() && spool_gone) {
            match crate::setup::submit_unit::sync(dir, None) {
                Ok(said) => spool.push_str(&said),
                Err(err) => spool.push_str(&format!("note: {err:#}\n")),
            }
        }
        return match restored {
            Ok(report) => Ok(format!("{report}{spool}")),
            Err(err) => {
                print!("{spool}");
                Err(err)
            }
        };
    }
    // The package's prerm (`--force` is refused with it).
    crate::setup::removal::run(
        &paths.kernel(),
        &paths.backup,
        paths.sysctl_file().as_deref(),
        &paths.boot_files(),
    )
}
