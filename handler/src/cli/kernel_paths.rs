//! The options that say where the kernel's settings and the handler's
//! backup are (`install`, `serve`, `uninstall`, `status`): the real
//! `/proc/sys/kernel` by default, a stand-in for tests and packagers.

use crate::kernel::other_handlers::BootFiles;
use crate::kernel::settings::{KernelFiles, DEFAULT_PROC_SYS_KERNEL};
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct KernelPaths {
    /// Directory holding core_pattern and core_pipe_limit.
    #[arg(long, default_value = DEFAULT_PROC_SYS_KERNEL)]
    pub proc_sys_kernel: PathBuf,
    /// Where the previous core_pattern and core_pipe_limit are kept.
    #[arg(long, default_value = crate::kernel::backup::DEFAULT_BACKUP)]
    pub backup: PathBuf,
    /// The sysctl.d file of install --persist (default:
    /// /etc/sysctl.d/90-lttng-coredump.conf, only with the real /proc/sys/kernel).
    #[arg(long)]
    pub sysctl_file: Option<PathBuf>,
    /// systemd unit directories to read, the first taking the masks of
    /// install --persist, instead of the machine's (for tests).
    #[arg(long, hide = true)]
    pub unit_dir: Vec<PathBuf>,
}

impl KernelPaths {
    /// The kernel's settings under `--proc-sys-kernel`.
    pub fn kernel(&self) -> KernelFiles {
        KernelFiles::under(&self.proc_sys_kernel)
    }

    /// Where the boot's settings come from.
    pub fn boot_files(&self) -> BootFiles {
        if self.unit_dir.is_empty() {
            BootFiles::system()
        } else {
            BootFiles::with_unit_dirs(self.unit_dir.clone())
        }
    }

    /// Whether install --persist may mask the machine's services: with the
    /// real /proc/sys/kernel, or unit directories of the caller's own.
    pub fn may_mask(&self) -> bool {
        !self.unit_dir.is_empty() || self.proc_sys_kernel == Path::new(DEFAULT_PROC_SYS_KERNEL)
    }

    /// The sysctl.d file to write or remove: never the machine's for a
    /// stand-in /proc/sys/kernel (tests, packagers).
    pub fn sysctl_file(&self) -> Option<PathBuf> {
        self.sysctl_file.clone().or_else(|| {
            (self.proc_sys_kernel == Path::new(DEFAULT_PROC_SYS_KERNEL))
                .then(|| crate::kernel::persist::DEFAULT_SYSCTL_FILE.into())
        })
    }
}
