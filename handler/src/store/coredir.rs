//! Opening the directory cores and records go to, so that no other user can
//! have a say in where they land: every component of the path is opened
//! without following symlinks, must be owned by root, and may be writable by
//! others only if it is sticky (like `/tmp`); the directory itself must be
//! owned by root and writable by root only. A missing directory is created
//! with mode 0755. When the configured directory fails these checks the
//! built-in default is used and the reason is reported.

use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;
use std::os::fd::OwnedFd;
use std::path::{Component, Path, PathBuf};

/// An opened core directory.
#[derive(Debug)]
pub struct CoreDir {
    pub fd: OwnedFd,
    pub path: PathBuf,
}

/// Opens `configured`, or `fallback` when `configured` is unsafe or cannot
/// be opened. The error list says what was wrong with each refused one.
pub fn open_with_fallback(
    configured: &Path,
    fallback: &Path,
) -> Result<(CoreDir, Vec<String>), Vec<String>> {
    let mut problems = Vec::new();
    match open_checked(configured, true) {
        Ok(dir) => return Ok((dir, problems)),
        Err(err) => problems.push(format!("core directory {}: {err}", configured.display())),
    }
    if configured == fallback {
        return Err(problems);
    }
    match open_checked(fallback, true) {
        Ok(dir) => {
            problems.push(format!(
                "using the default core directory {} instead",
                fallback.display()
            ));
            Ok((dir, problems))
        }
        Err(err) => {
            problems.push(format!(
                "default core directory {}: {err}",
                fallback.display()
            ));
            Err(problems)
        }
    }
}

/// Where [`open_with_fallback`] would put the cores, found without
/// creating anything (for `config`, `list` and `info`): `configured` when
/// it is safe, or missing below a safe directory (the handler makes it);
/// else `fallback`, with what was wrong; `None` when neither would do.
pub fn would_use(configured: &Path, fallback: &Path) -> (Option<PathBuf>, Vec<String>) {
    let mut problems = Vec::new();
    for (index, path) in [configured, fallback].into_iter().enumerate() {
        if index == 1 && configured == fallback {
            break;
        }
        match check_without_creating(path) {
            Ok(()) => {
                if index == 1 {
                    problems.push(format!(
                        "the handler uses the default core directory {} instead",
                        fallback.display()
                    ));
                }
                return (Some(path.to_path_buf()), problems);
            }
            Err(err) => problems.push(format!(
                "{}core directory {}: {err}",
                if index == 0 { "" } else { "default " },
                path.display()
            )),
        }
    }
    (None, problems)
}

/// [`open_checked`] without creating: a missing directory is checked up
/// to its deepest existing ancestor, which the handler would create it in.
fn check_without_creating(path: &Path) -> Result<(), String> {
    if !path.is_absolute() {
        return Err("not an absolute path".into());
    }
    let mut existing = path;
    while std::fs::symlink_metadata(existing)
        .is_err_and(|err| err.kind() == std::io::ErrorKind::NotFound)
    {
        match existing.parent() {
            Some(parent) => existing = parent,
            None => break,
        }
    }
    if existing == path {
        return open_checked(path, false).map(drop);
    }
    // The ancestor is on the way, not the target: sticky and
    // world-writable (as /tmp) is fine there, but not for a directory of
    // the handler's own making, which is 0755.
    open_checked(existing, false).map(drop).or_else(|err| {
        if err.contains("writable by group or others") {
            let parent = existing.parent().unwrap_or(existing);
            let stat = std::fs::metadata(existing).map_err(|e| e.to_string())?;
            use std::os::unix::fs::MetadataExt;
            if stat.mode() & 0o1000 != 0 && stat.uid() == 0 {
                return open_checked(parent, false).map(drop);
            }
        }
        Err(err)
    })
}

/// Opens `path` safely (see the module's doc), creating missing components
/// when `create` is set.
pub fn open_checked(path: &Path, create: bool) -> Result<CoreDir, String> {
    if !path.is_absolute() {
        return Err("not an absolute path".into());
    }
    let directory_flags = OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::RDONLY;
    let mut current = rustix::fs::open("/", directory_flags, Mode::empty())
        .map_err(|err| format!("cannot open /: {err}"))?;
    check_component(&current, Path::new("/"), false)?;
    let mut walked = PathBuf::from("/");
    let components: Vec<_> = path.components().collect();
    for (index, component) in components.iter().enumerate() {
        let name = match component {
            Component::RootDir | Component::CurDir => continue,
            Component::ParentDir => return Err("contains \"..\"".into()),
            Component::Prefix(_) => return Err("not a Linux path".into()),
            Component::Normal(name) => *name,
        };
        walked.push(name);
        let next = match rustix::fs::openat(&current, name, directory_flags, Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::NOENT) if create => {
                match rustix::fs::mkdirat(&current, name, Mode::from_raw_mode(0o755)) {
                    Ok(()) | Err(Errno::EXIST) => {}
                    Err(err) => return Err(format!("cannot create {}: {err}", walked.display())),
                }
                let fd = rustix::fs::openat(&current, name, directory_flags, Mode::empty())
                    .map_err(|err| format!("cannot open {}: {err}", walked.display()))?;
                // mkdir's mode is reduced by the umask; make it what we said.
                let stat = rustix::fs::fstat(&fd).map_err(|err| err.to_string())?;
                if stat.st_uid == 0 && stat.st_mode & 0o022 == 0 {
                    let _ = rustix::fs::fchmod(&fd, Mode::from_raw_mode(0o755));
                }
                fd
            }
            Err(Errno::LOOP | Errno::NOTDIR) => {
                return Err(format!(
                    "{} is a symlink or not a directory",
                    walked.display()
                ))
            }
            Err(err) => return Err(format!("cannot open {}: {err}", walked.display())),
        };
        let last = index + 1 == components.len();
        check_component(&next, &walked, last)?;
        current = next;
    }
    Ok(CoreDir {
        fd: current,
        path: path.to_path_buf(),
    })
}

fn check_component(fd: &OwnedFd, path: &Path, is_target: bool) -> Result<(), String> {
    let stat =
        rustix::fs::fstat(fd).map_err(|err| format!("cannot stat {}: {err}", path.display()))?;
    if stat.st_uid != 0 {
        return Err(format!(
            "{} is owned by uid {}, not root",
            path.display(),
            stat.st_uid
        ));
    }
    let writable_by_others = stat.st_mode & 0o022 != 0;
    let sticky = stat.st_mode & 0o1000 != 0;
    if writable_by_others && (is_target || !sticky) {
        return Err(format!(
            "{} is writable by group or others (mode {:o})",
            path.display(),
            stat.st_mode & 0o7777
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    fn scratch(tag: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("handler-coredir-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        dir
    }

    #[test]
    fn missing_directory_is_created_0755() {
        let base = scratch("create");
        let target = base.join("a/b");
        let dir = open_checked(&target, true).unwrap();
        assert_eq!(dir.path, target);
        let metadata = std::fs::metadata(&target).unwrap();
        assert_eq!(metadata.mode() & 0o7777, 0o755);
        assert!(open_checked(&base.join("absent"), false).is_err());
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn unsafe_directories_are_refused_and_the_default_is_used() {
        let base = scratch("unsafe");
        let safe = base.join("safe");
        std::fs::create_dir(&safe).unwrap();
        std::fs::set_permissions(&safe, std::fs::Permissions::from_mode(0o755)).unwrap();

        let open = base.join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
        let err = open_checked(&open, true).unwrap_err();
        assert!(err.contains("writable by group or others"), "{err}");
        // Sticky world-writable directories are fine on the way (like
        // /tmp), never as the target.
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o1777)).unwrap();
        assert!(open_checked(&open, true).is_err());
        let below = open.join("below");
        std::fs::create_dir(&below).unwrap();
        std::fs::set_permissions(&below, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert!(open_checked(&below, true).is_ok());

        let link = base.join("link");
        std::os::unix::fs::symlink(&safe, &link).unwrap();
        let err = open_checked(&link, true).unwrap_err();
        assert!(err.contains("symlink"), "{err}");
        let err = open_checked(&link.join("inside"), true).unwrap_err();
        assert!(err.contains("symlink"), "{err}");

        let owned = base.join("owned");
        std::fs::create_dir(&owned).unwrap();
        std::os::unix::fs::chown(&owned, Some(65534), None).unwrap();
        let err = open_checked(&owned, true).unwrap_err();
        assert!(err.contains("uid 65534"), "{err}");

        let (dir, problems) = open_with_fallback(&link, &safe).unwrap();
        assert_eq!(dir.path, safe);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[1].contains("using the default core directory"));

        assert!(open_with_fallback(&link, &link).is_err());
        assert!(open_checked(Path::new("relative"), true).is_err());
        assert!(open_checked(&base.join("safe/../safe"), true).is_err());
        std::fs::remove_dir_all(&base).unwrap();
    }
}
