//! The kernel's own bound on a FUSE file system that never answers
//! (`fs.fuse.max_request_timeout`, Linux 6.14+): a connection with a
//! request older than that many seconds is aborted by the kernel (checked
//! every 15 s), so whatever waits on it goes on: a crashed process's dump
//! when the handler has given up on it or may not abort it
//! (`abort_stalled_fuse = false`), and anything else of root's that
//! touches a user's file system. 0, the default, is no bound. It applies
//! to the connections made after it is set.
//!
//! `install` recommends it (it is a policy for every FUSE file system of
//! the machine, not only for crashes: it is not ours to set); `status`
//! warns while it is 0.

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
}
