//! `lttng-coredump demo`: one traced crash, shown from end to end
//! ([`crate::setup::demo`]), on the machine's own kernel settings.

use crate::kernel::settings::{KernelFiles, DEFAULT_PROC_SYS_KERNEL};
use crate::setup::demo::{self, DemoOptions, DEFAULT_DIR};
use std::path::{Path, PathBuf};

// The variant's doc comment in `Command` is the subcommand's help.
#[derive(clap::Args)]
pub struct DemoArgs {
    /// Where the cores and crash records (DIR/core) and the snapshots
    /// (DIR/snapshot) go; must be root-owned and writable only by root.
    #[arg(long, default_value = DEFAULT_DIR)]
    dir: PathBuf,
}

/// Runs the demo.
pub fn run(args: DemoArgs) -> anyhow::Result<()> {
    demo::run(&DemoOptions {
        dir: args.dir,
        kernel: KernelFiles::under(Path::new(DEFAULT_PROC_SYS_KERNEL)),
    })
}
