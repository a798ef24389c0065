//! Creating files in the core directory so that nothing planted there can
//! redirect or replace them: the data is written into an unnamed file
//! (`O_TMPFILE`, or where the filesystem lacks it a randomly named one made
//! with `O_CREAT|O_EXCL|O_NOFOLLOW`), and only then given its final name by
//! a link that never replaces an existing entry. A symlink, a FIFO or a file
//! someone put under the chosen name is never opened, followed or
//! overwritten: the name just gets a suffix.

use rustix::fs::{AtFlags, Mode, OFlags};
use rustix::io::Errno;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

/// How many suffixed names are tried before giving up (`NAME`, `NAME.1`, ...).
pub const MAX_NAME_ATTEMPTS: u32 = 1000;

/// A file being written in a directory, not yet visible under a real name.
#[derive(Debug)]
pub struct NewFile {
    file: File,
    dir: OwnedFd,
    /// The random placeholder name when `O_TMPFILE` was not available.
    placeholder: Option<String>,
}

impl NewFile {
    /// Creates an unnamed file of mode 0600 in `dir`, owned by the caller.
    pub fn create_in(dir: BorrowedFd<'_>) -> io::Result<NewFile> {
        let dir_copy = dir.try_clone_to_owned()?;
        let mode = Mode::from_raw_mode(0o600);
        match rustix::fs::openat(
            dir,
            ".",
            OFlags::TMPFILE | OFlags::RDWR | OFlags::CLOEXEC,
            mode,
        ) {
            Ok(fd) => {
                let file = File::from(fd);
                // The mode given to open is reduced by the umask.
                rustix::fs::fchmod(&file, mode)?;
                Ok(NewFile {
                    file,
                    dir: dir_copy,
                    placeholder: None,
                })
            }
            Err(Errno::OPNOTSUPP | Errno::ISDIR | Errno::INVAL) => {
                NewFile::create_placeholder(dir_copy)
            }
            Err(err) => Err(err.into()),
        }
    }

    fn create_placeholder(dir: OwnedFd) -> io::Result<NewFile> {
        let mode = Mode::from_raw_mode(0o600);
        for _ in 0..16 {
            let name = format!(".lttng-coredump-tmp-{}", random_hex()?);
            match rustix::fs::openat(
                &dir,
                name.as_str(),
                OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::RDWR | OFlags::CLOEXEC,
                mode,
            ) {
                Ok(fd) => {
                    let file = File::from(fd);
                    rustix::fs::fchmod(&file, mode)?;
                    return Ok(NewFile {
                        file,
                        dir,
                        placeholder: Some(name),
                    });
                }
                Err(Errno::EXIST) => continue,
                Err(err) => return Err(err.into()),
            }
        }
        Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            "no free temporary name in the core directory",
        ))
    }

    pub fn file(&self) -> &File {
        &self.file
    }

    pub fn file_mut(&mut self) -> &mut File {
        &mut self.file
    }

    /// Gives the file its name: `name(0)`, or when that exists `name(1)`,
    /// `name(2)`... Returns the open file and the name it got.
    pub fn publish(mut self, name: impl Fn(u32) -> String) -> io::Result<(File, String)> {
        for attempt in 0..MAX_NAME_ATTEMPTS {
            let candidate = name(attempt);
            match self.link_as(&candidate) {
                Ok(()) => {
                    if let Some(placeholder) = self.placeholder.take() {
                        let _ =
                            rustix::fs::unlinkat(&self.dir, placeholder.as_str(), AtFlags::empty());
                    }
                    let file = self.file.try_clone()?;
                    return Ok((file, candidate));
                }
                Err(Errno::EXIST) => continue,
                Err(err) => return Err(err.into()),
            }
        }
        Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!(
                "{MAX_NAME_ATTEMPTS} names taken, up to {:?}",
                name(MAX_NAME_ATTEMPTS - 1)
            ),
        ))
    }

    fn link_as(&self, candidate: &str) -> Result<(), Errno> {
        if candidate.contains('/') || candidate.is_empty() || candidate == "." || candidate == ".."
        {
            return Err(Errno::INVAL);
        }
        match &self.placeholder {
            // linkat never replaces an existing entry and does not follow
            // the placeholder (no AT_SYMLINK_FOLLOW).
            Some(placeholder) => rustix::fs::linkat(
                &self.dir,
                placeholder.as_str(),
                &self.dir,
                candidate,
                AtFlags::empty(),
            ),
            None => {
                match rustix::fs::linkat(&self.file, "", &self.dir, candidate, AtFlags::EMPTY_PATH)
                {
                    // AT_EMPTY_PATH needs CAP_DAC_READ_SEARCH; the /proc link
                    // of the fd does the same without it.
                    Err(Errno::NOENT | Errno::PERM) => rustix::fs::linkat(
                        rustix::fs::CWD,
                        format!(
                            "/proc/self/fd/{}",
                            std::os::fd::AsRawFd::as_raw_fd(&self.file)
                        )
                        .as_str(),
                        &self.dir,
                        candidate,
                        AtFlags::SYMLINK_FOLLOW,
                    ),
                    other => other,
                }
            }
        }
    }

    pub fn dir(&self) -> BorrowedFd<'_> {
        self.dir.as_fd()
    }
}

impl Drop for NewFile {
    fn drop(&mut self) {
        if let Some(placeholder) = self.placeholder.take() {
            let _ = rustix::fs::unlinkat(&self.dir, placeholder.as_str(), AtFlags::empty());
        }
    }
}

fn random_hex() -> io::Result<String> {
    let mut bytes = [0u8; 8];
    rustix::rand::getrandom(&mut bytes, rustix::rand::GetRandomFlags::empty())?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Seek, Write};
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    use std::path::PathBuf;

    pub(crate) fn scratch_dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("handler-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn published_files_are_private_and_never_replace_anything() {
        let dir = scratch_dir("safefile");
        let dirfd = File::open(&dir).unwrap();
        // Someone planted the first two names: a symlink to a file they
        // would like root to overwrite, and a FIFO.
        let victim = dir.join("victim");
        std::fs::write(&victim, "precious").unwrap();
        std::os::unix::fs::symlink(&victim, dir.join("core.x")).unwrap();
        rustix::fs::mknodat(
            &dirfd,
            "core.x.1",
            rustix::fs::FileType::Fifo,
            Mode::from_raw_mode(0o666),
            0,
        )
        .unwrap();

        let mut new_file = NewFile::create_in(dirfd.as_fd()).unwrap();
        new_file.file_mut().write_all(b"core data").unwrap();
        let (mut file, name) = new_file
            .publish(|n| {
                if n == 0 {
                    "core.x".into()
                } else {
                    format!("core.x.{n}")
                }
            })
            .unwrap();
        assert_eq!(name, "core.x.2");
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        let published = dir.join("core.x.2");
        assert_eq!(std::fs::read(&published).unwrap(), b"core data");
        let metadata = std::fs::symlink_metadata(&published).unwrap();
        assert!(metadata.file_type().is_file());
        assert_eq!(metadata.permissions().mode() & 0o7777, 0o600);
        assert_eq!(metadata.uid(), rustix::process::geteuid().as_raw());
        let mut back = String::new();
        file.rewind().unwrap();
        file.read_to_string(&mut back).unwrap();
        assert_eq!(back, "core data");
        // Nothing else was left behind.
        let mut names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["core.x", "core.x.1", "core.x.2", "victim"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn placeholder_files_are_removed() {
        let dir = scratch_dir("safefile-placeholder");
        let dirfd = File::open(&dir).unwrap();
        let new_file = NewFile::create_placeholder(dirfd.try_clone().unwrap().into()).unwrap();
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
        let (_, name) = new_file.publish(|n| format!("rec.{n}")).unwrap();
        assert_eq!(name, "rec.0");
        let names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, ["rec.0"]);

        let abandoned = NewFile::create_placeholder(dirfd.try_clone().unwrap().into()).unwrap();
        drop(abandoned);
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn names_that_are_paths_are_refused() {
        let dir = scratch_dir("safefile-paths");
        let dirfd = File::open(&dir).unwrap();
        let new_file = NewFile::create_in(dirfd.as_fd()).unwrap();
        assert!(new_file.publish(|_| "../escape".to_string()).is_err());
        assert!(!dir.parent().unwrap().join("escape").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
