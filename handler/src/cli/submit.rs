//! `lttng-coredump submit [--follow]`: the spool's submitter (see
//! `service/submitter.rs`).

use std::path::PathBuf;
use std::process::ExitCode;

// The variant's doc comment in `Command` is the subcommand's help.
#[derive(clap::Args)]
pub struct SubmitArgs {
    /// The configuration whose [submit] section says where crashes go
    /// (default: /etc/lttng-coredump/config.toml).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Keep running: send each crash as it is queued, retrying failed
    /// destinations with a bounded back-off (what the unit runs).
    #[arg(long)]
    follow: bool,
    /// Run as the child of this process (serve's): end when it ends.
    #[arg(long, hide = true)]
    parent: Option<u32>,
    /// For the package's postinst: create the submitter's system user and
    /// the spool ([submit] user and spool_dir, their defaults when there is
    /// no [submit] yet), as install does; send nothing.
    #[arg(long, hide = true, conflicts_with_all = ["follow", "parent"])]
    prepare: bool,
}

pub fn run(args: SubmitArgs) -> ExitCode {
    if args.prepare {
        return super::report(crate::setup::submit_setup::prepare_for_package(
            args.config.as_deref(),
        ));
    }
    let result = crate::service::submitter::submit_config(args.config.as_deref())
        .and_then(|submit| crate::service::submitter::run(&submit, args.follow, args.parent));
    match result {
        Ok(outcome) => {
            print!("{}", outcome.report);
            if outcome.failed {
                // Some crash stays queued: a later run sends it.
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(err) => {
            eprintln!("lttng-coredump: {err:#}");
            ExitCode::FAILURE
        }
    }
}
