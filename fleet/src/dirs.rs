//! Directories held open, and the file operations the spool does relative to
//! them (`openat`, `mkdirat`, `renameat2`, `unlinkat`): no path is walked
//! twice and no symbolic link is followed, so that root, enqueuing into
//! directories the submitter's user owns, never writes or deletes anywhere
//! else. Each state change is made durable with `fsync` of the file and of
//! the directory that names it.

use rustix::fs::{self as rfs, AtFlags, FlockOperation, Mode, OFlags, RenameFlags};
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

/// A directory, open.
#[derive(Debug)]
pub struct Dir {
    fd: OwnedFd,
    path: PathBuf,
}

/// What a directory entry is, as `lstat` sees it.
#[derive(Debug, Clone, Copy)]
pub struct EntryStat {
    pub is_dir: bool,
    pub is_file: bool,
    pub size: u64,
    pub uid: u32,
    pub mode: u32,
}

fn with_path(err: io::Error, what: &str, path: &Path) -> io::Error {
    io::Error::new(err.kind(), format!("{what} {}: {err}", path.display()))
}

impl Dir {
    /// Opens `path`, which must be a directory and not a symbolic link.
    pub fn open(path: &Path) -> io::Result<Dir> {
        let fd = rfs::open(
            path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| with_path(e.into(), "opening directory", path))?;
        Ok(Dir {
            fd,
            path: path.to_owned(),
        })
    }

    /// Opens the subdirectory `name`.
    pub fn open_sub(&self, name: &str) -> io::Result<Dir> {
        let path = self.path.join(name);
        let fd = rfs::openat(
            &self.fd,
            name,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| with_path(e.into(), "opening directory", &path))?;
        Ok(Dir { fd, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Creates the subdirectory `name` (an existing one is an error).
    pub fn mkdir(&self, name: &str, mode: u32) -> io::Result<()> {
        rfs::mkdirat(&self.fd, name, Mode::from_raw_mode(mode))
            .map_err(|e| with_path(e.into(), "creating directory", &self.path.join(name)))
    }

    /// Creates the new file `name` for writing (never an existing one, never
    /// through a symbolic link).
    pub fn create_file(&self, name: &str, mode: u32) -> io::Result<File> {
        rfs::openat(
            &self.fd,
            name,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(mode),
        )
        .map(File::from)
        .map_err(|e| with_path(e.into(), "creating", &self.path.join(name)))
    }

    /// Opens the file `name` for reading (not through a symbolic link).
    pub fn open_file(&self, name: &str) -> io::Result<File> {
        rfs::openat(
            &self.fd,
            name,
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK,
            Mode::empty(),
        )
        .map(File::from)
        .map_err(|e| with_path(e.into(), "opening", &self.path.join(name)))
    }

    /// Opens (creating if needed) the file `name` for appending.
    pub fn append_file(&self, name: &str, mode: u32) -> io::Result<File> {
        rfs::openat(
            &self.fd,
            name,
            OFlags::WRONLY | OFlags::CREATE | OFlags::APPEND | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(mode),
        )
        .map(File::from)
        .map_err(|e| with_path(e.into(), "opening", &self.path.join(name)))
    }

    /// Whether `name` exists (as anything).
    pub fn exists(&self, name: &str) -> bool {
        rfs::statat(&self.fd, name, AtFlags::SYMLINK_NOFOLLOW).is_ok()
    }

    /// `lstat` of `name`.
    pub fn stat(&self, name: &str) -> io::Result<EntryStat> {
        let st = rfs::statat(&self.fd, name, AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| with_path(e.into(), "examining", &self.path.join(name)))?;
        Ok(entry_stat(&st))
    }

    /// `fstat` of the directory itself.
    pub fn self_stat(&self) -> io::Result<EntryStat> {
        Ok(entry_stat(&rfs::fstat(&self.fd)?))
    }

    /// Moves `name` to `to/to_name`, never replacing anything there.
    pub fn rename(&self, name: &str, to: &Dir, to_name: &str) -> io::Result<()> {
        rfs::renameat_with(&self.fd, name, &to.fd, to_name, RenameFlags::NOREPLACE).map_err(|e| {
            io::Error::new(
                io::Error::from(e).kind(),
                format!(
                    "moving {} to {}: {e}",
                    self.path.join(name).display(),
                    to.path.join(to_name).display()
                ),
            )
        })
    }

    /// Moves `name` to `to_name` in the same directory, replacing it (the
    /// atomic replacement of a small state file).
    pub fn replace(&self, name: &str, to_name: &str) -> io::Result<()> {
        rfs::renameat(&self.fd, name, &self.fd, to_name)
            .map_err(|e| with_path(e.into(), "replacing", &self.path.join(to_name)))
    }

    /// Removes the file (or symbolic link) `name`; a missing one is fine.
    pub fn remove_file(&self, name: &str) -> io::Result<()> {
        match rfs::unlinkat(&self.fd, name, AtFlags::empty()) {
            Ok(()) | Err(rustix::io::Errno::NOENT) => Ok(()),
            Err(e) => Err(with_path(e.into(), "removing", &self.path.join(name))),
        }
    }

    /// Removes the directory `name` and the files in it (one level: the
    /// spool's items hold only files; anything else in one is removed as a
    /// file or left, and then the removal fails). A missing one is fine.
    pub fn remove_tree(&self, name: &str) -> io::Result<()> {
        let sub = match self.open_sub(name) {
            Ok(sub) => sub,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e)
                if e.raw_os_error() == Some(libc_eloop())
                    || e.raw_os_error() == Some(libc_enotdir()) =>
            {
                // A symbolic link or a file where an item was: removed as such.
                return self.remove_file(name);
            }
            Err(e) => return Err(e),
        };
        for entry in sub.entries()? {
            sub.remove_file(&entry)?;
        }
        match rfs::unlinkat(&self.fd, name, AtFlags::REMOVEDIR) {
            Ok(()) | Err(rustix::io::Errno::NOENT) => Ok(()),
            Err(e) => Err(with_path(e.into(), "removing", &self.path.join(name))),
        }
    }

    /// The names in the directory (not `.` and `..`), sorted.
    pub fn entries(&self) -> io::Result<Vec<String>> {
        let mut dir = rfs::Dir::read_from(&self.fd)
            .map_err(|e| with_path(e.into(), "listing", &self.path))?;
        let mut names = Vec::new();
        while let Some(entry) = dir.read() {
            let entry = entry.map_err(|e| with_path(e.into(), "listing", &self.path))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name != "." && name != ".." {
                names.push(name);
            }
        }
        names.sort();
        Ok(names)
    }

    /// Makes the directory's entries durable.
    pub fn sync(&self) -> io::Result<()> {
        rfs::fsync(&self.fd).map_err(|e| with_path(e.into(), "syncing", &self.path))
    }

    /// Gives the directory to `uid:gid` and sets its mode.
    pub fn set_owner_and_mode(&self, owner: Option<(u32, u32)>, mode: u32) -> io::Result<()> {
        if let Some((uid, gid)) = owner {
            rfs::fchown(
                &self.fd,
                Some(rfs::Uid::from_raw(uid)),
                Some(rfs::Gid::from_raw(gid)),
            )
            .map_err(|e| with_path(e.into(), "changing the owner of", &self.path))?;
        }
        rfs::fchmod(&self.fd, Mode::from_raw_mode(mode))
            .map_err(|e| with_path(e.into(), "changing the mode of", &self.path))
    }

    /// Takes a `flock` on the directory itself (released when `Dir` is
    /// dropped, or by [`Dir::unlock`]); `false` when `nonblocking` and
    /// another holds it.
    pub fn lock(&self, nonblocking: bool) -> io::Result<bool> {
        lock_fd(self.fd.as_fd(), nonblocking)
    }

    /// Takes a shared `flock` on this directory (waiting for an exclusive
    /// one to go), held until this `Dir` is dropped.
    pub fn lock_shared(&self) -> io::Result<()> {
        rfs::flock(self.fd.as_fd(), FlockOperation::LockShared)?;
        Ok(())
    }
}

/// Takes an exclusive `flock` on `fd`; `false` when `nonblocking` and
/// another holds it.
pub fn lock_fd(fd: BorrowedFd<'_>, nonblocking: bool) -> io::Result<bool> {
    let op = if nonblocking {
        FlockOperation::NonBlockingLockExclusive
    } else {
        FlockOperation::LockExclusive
    };
    match rfs::flock(fd, op) {
        Ok(()) => Ok(true),
        Err(rustix::io::Errno::WOULDBLOCK) if nonblocking => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Gives a file to `uid:gid` (by its descriptor, never by path).
pub fn set_file_owner(file: &File, owner: Option<(u32, u32)>) -> io::Result<()> {
    if let Some((uid, gid)) = owner {
        rfs::fchown(
            file,
            Some(rfs::Uid::from_raw(uid)),
            Some(rfs::Gid::from_raw(gid)),
        )?;
    }
    Ok(())
}

fn entry_stat(st: &rfs::Stat) -> EntryStat {
    let kind = rfs::FileType::from_raw_mode(st.st_mode);
    EntryStat {
        is_dir: kind == rfs::FileType::Directory,
        is_file: kind == rfs::FileType::RegularFile,
        size: st.st_size as u64,
        uid: st.st_uid,
        mode: st.st_mode & 0o7777,
    }
}

fn libc_eloop() -> i32 {
    rustix::io::Errno::LOOP.raw_os_error()
}

fn libc_enotdir() -> i32 {
    rustix::io::Errno::NOTDIR.raw_os_error()
}
