//! The kernel's own bound on a FUSE file system that never answers
//! (`fs.fuse.max_request_timeout`, Linux 6.14+): a connection with a
//! request older than that many seconds is aborted by the kernel (checked
//! every 15 s), so whatever waits on it goes on: a crashed process's dump
//! when the handler has given up on it or may not abort it
//! (`abort_stalled_fuse = false`), and anything else of root's that
//! touches a user's file system. 0, the default, is no bound. It applies
//! to the connections made after it is set.
//!
//! `install` recommends it; `install --persist`, which makes the
//! machine's crash settings its own across boots, sets it when it is 0 and
//! keeps it in its sysctl.d file (removed by `uninstall`, after which the
//! next boot has the kernel's 0 again); a value someone else chose is left
//! to them. `status` warns while it is 0.

use crate::kernel::settings::KernelFiles;
use std::path::PathBuf;

/// The value recommended: long enough for a slow network file system's
/// request, and still a bound.
pub const RECOMMENDED_SECS: u32 = 300;

/// `fs/fuse/max_request_timeout` beside the `kernel` directory of
/// `kernel`'s files (the real `/proc/sys`, or a stand-in tree).
pub fn file(kernel: &KernelFiles) -> Option<PathBuf> {
    Some(
        kernel
            .core_pattern
            .parent()?
            .parent()?
            .join("fs/fuse/max_request_timeout"),
    )
}

/// What to say of the setting: `None` when it bounds requests, or this
/// kernel has no such setting.
pub fn advice(kernel: &KernelFiles) -> Option<String> {
    let path = file(kernel)?;
    let value = std::fs::read_to_string(&path).ok()?;
    match value.trim().parse::<u64>() {
        Ok(0) => Some(format!(
            "fs.fuse.max_request_timeout is 0: a FUSE file system that never answers holds \
             whatever waits on it for good (a crashed process's dump keeps its core_pipe_limit \
             slot when the handler has given up on it or abort_stalled_fuse is false); bound \
             it: sysctl -w fs.fuse.max_request_timeout={RECOMMENDED_SECS} (and a file in \
             /etc/sysctl.d to keep it; it applies to file systems mounted after)"
        )),
        Ok(_) => None,
        Err(_) => Some(format!(
            "{} holds {:?}, not a number of seconds",
            path.display(),
            value.trim()
        )),
    }
}

/// The bound in force, when this kernel has the setting.
pub fn read(kernel: &KernelFiles) -> Option<u64> {
    std::fs::read_to_string(file(kernel)?)
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// What `install --persist` keeps in `persist_file`: when the bound is 0,
/// [`RECOMMENDED_SECS`], set now too; when it is not, the value in force
/// if `persist_file` kept it before (an earlier `install --persist` set
/// it), else nothing (someone else chose it). Notes in `report` what it
/// did.
pub fn to_persist(
    kernel: &KernelFiles,
    persist_file: &std::path::Path,
    report: &mut String,
) -> Option<u64> {
    match read(kernel)? {
        0 => {
            let path = file(kernel)?;
            match crate::kernel::settings::write_setting(&path, &RECOMMENDED_SECS.to_string()) {
                Ok(()) => report.push_str(&format!(
                    "fs.fuse.max_request_timeout set to {RECOMMENDED_SECS} (it was 0: no bound on \
                     a FUSE file system that never answers; it applies to file systems mounted \
                     from now on)\n"
                )),
                Err(err) => report.push_str(&format!(
                    "warning: cannot set fs.fuse.max_request_timeout now ({err:#}); it is set \
                     at the next boot\n"
                )),
            }
            Some(RECOMMENDED_SECS.into())
        }
        seconds => crate::kernel::persist::persisted_fuse_timeout(persist_file).map(|_| seconds),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_is_advised_against_and_a_bound_is_not() {
        let root =
            std::env::temp_dir().join(format!("handler-fuse-timeout-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("kernel")).unwrap();
        let kernel = KernelFiles::under(&root.join("kernel"));
        // A kernel without the setting: nothing to say.
        assert_eq!(advice(&kernel), None);
        std::fs::create_dir_all(root.join("fs/fuse")).unwrap();
        std::fs::write(root.join("fs/fuse/max_request_timeout"), "0\n").unwrap();
        assert!(advice(&kernel)
            .unwrap()
            .contains("sysctl -w fs.fuse.max_request_timeout=300"));
        std::fs::write(root.join("fs/fuse/max_request_timeout"), "600\n").unwrap();
        assert_eq!(advice(&kernel), None);
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn persist_sets_a_zero_bound_and_keeps_only_its_own() {
        let root =
            std::env::temp_dir().join(format!("handler-fuse-persist-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("kernel")).unwrap();
        std::fs::create_dir_all(root.join("fs/fuse")).unwrap();
        let kernel = KernelFiles::under(&root.join("kernel"));
        let persist_file = root.join("90-lttng-coredump.conf");
        let mut report = String::new();
        // No such setting: nothing.
        assert_eq!(to_persist(&kernel, &persist_file, &mut report), None);
        // 0: set now and kept.
        std::fs::write(root.join("fs/fuse/max_request_timeout"), "0\n").unwrap();
        assert_eq!(
            to_persist(&kernel, &persist_file, &mut report),
            Some(RECOMMENDED_SECS.into())
        );
        assert_eq!(read(&kernel), Some(RECOMMENDED_SECS.into()));
        assert!(report.contains("set to 300"), "{report}");
        // Someone else's choice: left to them.
        std::fs::write(root.join("fs/fuse/max_request_timeout"), "600\n").unwrap();
        assert_eq!(to_persist(&kernel, &persist_file, &mut report), None);
        // Ours from an earlier install: kept at the value in force.
        crate::kernel::persist::write(&persist_file, "|/x handle", "64", Some(300)).unwrap();
        let text = std::fs::read_to_string(&persist_file).unwrap();
        assert!(
            text.contains("\n-fs.fuse.max_request_timeout = 300\n"),
            "{text}"
        );
        assert_eq!(
            crate::kernel::persist::persisted_fuse_timeout(&persist_file),
            Some(300)
        );
        assert_eq!(to_persist(&kernel, &persist_file, &mut report), Some(600));
        std::fs::remove_dir_all(&root).unwrap();
    }
}
