//! Whether only root can change what a path names: used by `install`
//! before it puts a binary in core_pattern, which the kernel then runs as
//! root on every crash. The path is resolved by hand, one component at a
//! time and every symbolic link followed explicitly, so that every
//! directory a lookup passes through is checked: each must be owned by
//! root and writable by nobody else (sticky or not: `/tmp` is refused, as
//! anyone may create names there before root does), and the file itself
//! too. A user who could rename, replace or retarget any of them could
//! have the kernel run their program as root.

use std::ffi::OsString;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

/// Symbolic links followed at most (as the kernel's 40).
const MAX_LINKS: u32 = 40;

/// Checks that nobody but root can change the file `path` names or any
/// directory on the way to it; says why not, naming the culprit.
pub fn check_only_root_can_change(path: &Path) -> Result<(), String> {
    if !path.is_absolute() {
        return Err(format!("{} is not an absolute path", path.display()));
    }
    let mut pending: Vec<OsString> = components(path);
    pending.reverse();
    let mut at = PathBuf::from("/");
    check_owner_and_mode(&at, "directory")?;
    let mut links = 0;
    while let Some(name) = pending.pop() {
        if name == ".." {
            at.pop();
            continue;
        }
        let next = at.join(&name);
        let metadata =
            std::fs::symlink_metadata(&next).map_err(|err| format!("{}: {err}", next.display()))?;
        if metadata.file_type().is_symlink() {
            links += 1;
            if links > MAX_LINKS {
                return Err(format!("{}: too many symbolic links", path.display()));
            }
            // The link's directory (`at`) was checked: only root can
            // retarget it. Its target is checked like the rest.
            let target =
                std::fs::read_link(&next).map_err(|err| format!("{}: {err}", next.display()))?;
            if target.is_absolute() {
                at = PathBuf::from("/");
            }
            let mut target_components = components(&target);
            target_components.reverse();
            pending.extend(target_components);
            continue;
        }
        at = next;
        if pending.is_empty() {
            if !metadata.is_file() {
                return Err(format!("{} is not a regular file", at.display()));
            }
            check_owner_and_mode(&at, "file")?;
        } else {
            if !metadata.is_dir() {
                return Err(format!("{} is not a directory", at.display()));
            }
            check_owner_and_mode(&at, "directory")?;
        }
    }
    Ok(())
}

fn components(path: &Path) -> Vec<OsString> {
    path.components()
        .filter_map(|c| match c {
            Component::Normal(name) => Some(name.to_owned()),
            Component::ParentDir => Some(OsString::from("..")),
            _ => None,
        })
        .collect()
}

fn check_owner_and_mode(path: &Path, what: &str) -> Result<(), String> {
    let metadata =
        std::fs::symlink_metadata(path).map_err(|err| format!("{}: {err}", path.display()))?;
    if metadata.uid() != 0 {
        return Err(format!(
            "the {what} {} is owned by uid {}, not root: that user could replace it",
            path.display(),
            metadata.uid()
        ));
    }
    if metadata.mode() & 0o022 != 0 {
        return Err(format!(
            "the {what} {} is writable by group or others (mode {:o}): they could replace it",
            path.display(),
            metadata.mode() & 0o7777
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn system_binaries_pass_and_user_writable_places_do_not() {
        check_only_root_can_change(Path::new("/bin/true")).unwrap();
        check_only_root_can_change(Path::new("/usr/bin/../bin/true")).unwrap();
        // /tmp is sticky but anyone may create names in it.
        let dir = std::env::temp_dir().join(format!("handler-trusted-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let file = dir.join("lc");
        std::fs::write(&file, "x").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o755)).unwrap();
        let error = check_only_root_can_change(&file).unwrap_err();
        assert!(
            error.contains("/tmp") && error.contains("writable"),
            "{error}"
        );
        std::fs::remove_dir_all(&dir).unwrap();

        // A symlink in a safe directory whose target is not safe.
        let safe = PathBuf::from(format!("/run/handler-trusted-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&safe);
        std::fs::create_dir_all(&safe).unwrap();
        std::fs::set_permissions(&safe, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::os::unix::fs::symlink("/tmp", safe.join("tmp")).unwrap();
        std::os::unix::fs::symlink("/bin/true", safe.join("true")).unwrap();
        check_only_root_can_change(&safe.join("true")).unwrap();
        let error = check_only_root_can_change(&safe.join("tmp/x")).unwrap_err();
        assert!(error.contains("/tmp"), "{error}");
        let writable = safe.join("w");
        std::fs::write(&writable, "x").unwrap();
        std::fs::set_permissions(&writable, std::fs::Permissions::from_mode(0o757)).unwrap();
        let error = check_only_root_can_change(&writable).unwrap_err();
        assert!(
            error.contains("file") && error.contains("writable"),
            "{error}"
        );
        std::os::unix::fs::chown(&writable, Some(65534), None).unwrap();
        std::fs::set_permissions(&writable, std::fs::Permissions::from_mode(0o755)).unwrap();
        let error = check_only_root_can_change(&writable).unwrap_err();
        assert!(error.contains("owned by uid 65534"), "{error}");
        std::fs::remove_dir_all(&safe).unwrap();
    }
}
