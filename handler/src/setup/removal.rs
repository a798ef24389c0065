//! `lttng-coredump uninstall --removing`, what the package's prerm runs
//! before the binary goes: nothing of the handler may be left for the
//! kernel to run, neither now nor after a reboot.
//!
//! - the sysctl.d file of `install --persist` is removed in every case (the
//!   next boot would put back a line running a binary that is gone);
//! - when core_pattern is the handler's (its pipe line, or a socket line of
//!   `install --socket`, which nothing will serve), the line the backup
//!   holds is put back, or, without a backup, the line the next boot would
//!   give (another handler's sysctl.d file, else the kernel's `core`);
//! - a line someone else wrote since the install is theirs: left as it is;
//! - the services `install --persist` masked are unmasked, and the backup
//!   removed.

use crate::kernel::backup::Backup;
use crate::kernel::other_handlers::{self, BootFiles};
use crate::kernel::settings::KernelFiles;
use std::fmt::Write as _;
use std::path::Path;

/// Whether `pattern` sends cores to the handler or to its service.
fn handler_owns(pattern: &str, backup: Option<&Backup>) -> bool {
    crate::kernel::pattern::is_our_line(pattern, backup)
        || crate::kernel::pattern::socket_of_line(pattern)
            == Some(Path::new(crate::service::serve::DEFAULT_SOCKET))
}

pub fn run(
    kernel: &KernelFiles,
    backup_path: &Path,
    sysctl_file: Option<&Path>,
    boot: &BootFiles,
) -> anyhow::Result<String> {
    let mut report = match sysctl_file {
        Some(file) => crate::kernel::persist::remove(file)?,
        None => String::new(),
    };
    let backup = match Backup::read(backup_path) {
        Ok(backup) => backup,
        Err(err) => {
            writeln!(report, "{err:#}: taken as no backup").expect("String");
            None
        }
    };
    let pattern = kernel.read_pattern()?;
    if handler_owns(&pattern, backup.as_ref()) {
        let line = match &backup {
            Some(backup) if !handler_owns(&backup.core_pattern, Some(backup)) => {
                backup.core_pattern.clone()
            }
            _ => {
                let outlook = other_handlers::after_boot(boot, None);
                if outlook.ours || handler_owns(&outlook.line, backup.as_ref()) {
                    "core".to_string()
                } else {
                    outlook.line
                }
            }
        };
        crate::kernel::settings::write_setting(&kernel.core_pattern, &line)?;
        if let Some(backup) = &backup {
            crate::kernel::settings::write_setting(
                &kernel.core_pipe_limit,
                &backup.core_pipe_limit,
            )?;
        }
        writeln!(
            report,
            "core_pattern was the handler's ({pattern:?}): set to {line:?}"
        )
        .expect("String");
    } else {
        writeln!(
            report,
            "core_pattern is {pattern:?}, not the handler's (someone changed it since the \
             install): left as it is"
        )
        .expect("String");
    }
    if let Some(backup) = &backup {
        other_handlers::unmask(&backup.masked_units, &mut report);
        match std::fs::remove_file(backup_path) {
            Ok(()) => writeln!(report, "removed {}", backup_path.display()).expect("String"),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => {
                writeln!(report, "cannot remove {}: {err}", backup_path.display()).expect("String")
            }
        }
    }
    // Whatever else would put the handler back at boot (an administrator's
    // own sysctl file) is named: it would run a binary that is gone.
    let outlook = other_handlers::after_boot(boot, None);
    if outlook.ours {
        writeln!(
            report,
            "warning: {}: remove that setting, the binary it runs is being removed",
            outlook.describe()
        )
        .expect("String");
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::settings::tests::fake_kernel;

    fn no_boot_files(dir: &Path) -> BootFiles {
        BootFiles {
            sysctl_dirs: vec![dir.join("sysctl.d")],
            sysctl_conf: dir.join("sysctl.conf"),
            unit_dirs: vec![dir.join("units")],
        }
    }

    #[test]
    fn the_handlers_line_goes_and_someone_elses_stays() {
        let (dir, kernel) = fake_kernel("@@/run/lttng-coredump/coredump.socket", "64");
        let boot = no_boot_files(&dir);
        let sysctl = dir.join("90-lttng-coredump.conf");
        std::fs::write(
            &sysctl,
            "kernel.core_pattern = |/usr/bin/lttng-coredump handle P=%P\n",
        )
        .unwrap();
        // No backup, a socket line of the packaged service: the kernel's
        // default, and the persistent file gone.
        let report = run(&kernel, &dir.join("none.bkp"), Some(&sysctl), &boot).unwrap();
        assert_eq!(kernel.read_pattern().unwrap(), "core", "{report}");
        assert!(!sysctl.exists());
        // A line someone else wrote stays.
        crate::kernel::settings::write_setting(&kernel.core_pattern, "|/usr/bin/other %P").unwrap();
        let report = run(&kernel, &dir.join("none.bkp"), Some(&sysctl), &boot).unwrap();
        assert!(report.contains("left as it is"), "{report}");
        assert_eq!(kernel.read_pattern().unwrap(), "|/usr/bin/other %P");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
