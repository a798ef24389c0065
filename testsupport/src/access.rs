//! Who may read a file: its ACL, its mode, and a read tried as a user.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};

/// Users an access ACL grants read to, as `getfacl` shows them.
pub fn acl_users(path: &Path) -> Vec<String> {
    let output = Command::new("getfacl")
        .args(["--omit-header", "--numeric"])
        .arg(path)
        .output()
        .unwrap_or_else(|e| panic!("cannot run getfacl (apt-get install -y acl): {e}"));
    assert!(
        output.status.success(),
        "getfacl {}: {output:?}",
        path.display()
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.strip_prefix("user:"))
        .filter(|entry| !entry.starts_with(':'))
        .map(str::to_owned)
        .collect()
}

/// Whether `uid` (with gid `gid` and no other group) can read `path`.
pub fn readable_by(uid: u32, gid: u32, path: &Path) -> bool {
    crate::crasher::command_as(uid, gid, "/bin/cat")
        .arg(path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("running setpriv")
        .success()
}

/// The file mode bits of `path` (not following a symlink).
pub fn mode_of(path: &Path) -> u32 {
    fs::symlink_metadata(path).unwrap().permissions().mode() & 0o7777
}
