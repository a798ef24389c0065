//! Compressing a saved core after the crashed process was let go: with
//! `compression = "zstd"` the core is first stored raw (sparse, at the
//! speed the kernel sends it), the kernel's pipe or socket is closed, and
//! only then is the raw file compressed into a new, unnamed file under the
//! same limits (size, directory, free space) as any core, linked as
//! `NAME.zst`, and the raw file removed. At every instant one whole copy
//! has a name: a crash of the machine mid-compression leaves the raw core.

use crate::base::safefile::NewFile;
use crate::crash::corefile::{CoreOutcome, CoreSettings, CoreWriter};
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::fd::BorrowedFd;
use std::os::unix::fs::MetadataExt;
use std::sync::{Condvar, Mutex};

/// Bytes read from the raw file at a time.
const PIECE: usize = 1 << 20;

/// Compressions running at once in this process, at most one per CPU: the
/// crash service handles many crashes on its threads, and a storm of cores
/// compressed together would only share the CPUs and add up the
/// compressors' memory (a pipe handler compresses one core anyway).
static SLOTS: (Mutex<usize>, Condvar) = (Mutex::new(0), Condvar::new());

fn with_a_slot<R>(work: impl FnOnce() -> R) -> R {
    let limit = std::thread::available_parallelism().map_or(1, |n| n.get());
    let (running, freed) = &SLOTS;
    {
        let mut running = running.lock().unwrap_or_else(|e| e.into_inner());
        while *running >= limit {
            running = freed.wait(running).unwrap_or_else(|e| e.into_inner());
        }
        *running += 1;
    }
    // Given back even if `work` panics.
    struct Release;
    impl Drop for Release {
        fn drop(&mut self) {
            let (running, freed) = &SLOTS;
            *running.lock().unwrap_or_else(|e| e.into_inner()) -= 1;
            freed.notify_one();
        }
    }
    let _release = Release;
    work()
}

/// What compressing did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Compressed {
    /// The compressed file's name, when it replaced the raw file.
    pub name: Option<String>,
    /// Bytes of the compressed file.
    pub stored_bytes: u64,
    /// Why the raw core was kept as it is, if it was.
    pub kept_raw_because: Option<String>,
    pub errors: Vec<String>,
    /// Cores deleted to make room for the compressed one.
    pub deleted: Vec<String>,
}

/// Compresses the complete raw core `raw` (open, named `raw_name` in
/// `dir`) with zstd at `level` into `raw_name` + `.zst` (or a numbered name
/// when taken), readable by `uid_to_grant` like the raw core, then removes
/// `raw_name` if it still names `raw`. On any failure the raw core stays.
pub fn replace_with_zstd(
    dir: BorrowedFd<'_>,
    raw: &File,
    raw_name: &str,
    level: i32,
    settings: &CoreSettings,
    uid_to_grant: Option<u32>,
) -> Compressed {
    with_a_slot(|| compress_and_replace(dir, raw, raw_name, level, settings, uid_to_grant))
}

fn compress_and_replace(
    dir: BorrowedFd<'_>,
    raw: &File,
    raw_name: &str,
    level: i32,
    settings: &CoreSettings,
    uid_to_grant: Option<u32>,
) -> Compressed {
    let mut done = Compressed::default();
    let keep = |mut done: Compressed, why: String| {
        done.kept_raw_because = Some(why);
        done
    };
    let settings = CoreSettings {
        zstd_level: Some(level),
        ..settings.clone()
    };
    let mut writer = match NewFile::create_in(dir).and_then(|file| CoreWriter::new(file, &settings))
    {
        Ok(writer) => writer,
        Err(err) => return keep(done, format!("cannot create the compressed file: {err}")),
    };
    let mut reader = match raw.try_clone() {
        Ok(reader) => reader,
        Err(err) => return keep(done, format!("cannot read the raw core: {err}")),
    };
    if let Err(err) = reader.seek(SeekFrom::Start(0)) {
        return keep(done, format!("cannot read the raw core: {err}"));
    }
    let mut buffer = vec![0u8; PIECE];
    loop {
        match reader.read(&mut buffer) {
            Ok(0) => break,
            Ok(read) => writer.write(&buffer[..read]),
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return keep(done, format!("cannot read the raw core: {err}")),
        }
        if !writer.wants_more() {
            break;
        }
    }
    let stem = raw_name.to_string();
    let (outcome, file): (CoreOutcome, Option<File>) = writer.finish(uid_to_grant, |n| {
        if n == 0 {
            format!("{stem}.zst")
        } else {
            format!("{stem}.{n}.zst")
        }
    });
    done.errors = outcome.errors.clone();
    done.deleted = outcome.deleted.clone();
    let raw_size = raw.metadata().map(|m| m.len()).unwrap_or(0);
    let (Some(name), Some(file)) = (outcome.name.clone(), file) else {
        return keep(done, "the compressed file could not be named".into());
    };
    if let Some(reason) = &outcome.truncated {
        // Never trade a whole core for a cut one.
        let _ = rustix::fs::unlinkat(dir, name.as_str(), rustix::fs::AtFlags::empty());
        return keep(done, format!("the compressed copy was cut ({reason})"));
    }
    if outcome.size != raw_size {
        let _ = rustix::fs::unlinkat(dir, name.as_str(), rustix::fs::AtFlags::empty());
        return keep(
            done,
            format!(
                "the compressed copy holds {} bytes of the {raw_size}",
                outcome.size
            ),
        );
    }
    if let Err(err) = file.sync_all() {
        done.errors.push(format!("cannot sync {name}: {err}"));
    }
    done.stored_bytes = outcome.stored_bytes;
    done.name = Some(name);
    // The raw name is removed only if it is still the raw core.
    let same = rustix::fs::statat(dir, raw_name, rustix::fs::AtFlags::SYMLINK_NOFOLLOW)
        .ok()
        .zip(raw.metadata().ok())
        .is_some_and(|(named, raw)| named.st_ino == raw.ino() && named.st_dev == raw.dev());
    if same {
        if let Err(err) = rustix::fs::unlinkat(dir, raw_name, rustix::fs::AtFlags::empty()) {
            done.errors.push(format!(
                "cannot remove the raw core {raw_name} after compressing it: {err}"
            ));
        }
    } else {
        done.errors.push(format!(
            "{raw_name} no longer names the raw core: left as it is"
        ));
    }
    done
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::space::SpacePolicy;
    use std::io::Write;
    use std::os::fd::AsFd;
    use std::path::PathBuf;

    fn scratch(tag: &str) -> (PathBuf, File) {
        let dir =
            std::env::temp_dir().join(format!("handler-compress-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let fd = File::open(&dir).unwrap();
        (dir, fd)
    }

    fn settings(max_size: Option<u64>) -> CoreSettings {
        CoreSettings {
            zstd_level: None,
            max_size,
            space: SpacePolicy {
                max_dir_size: u64::MAX,
                min_free: 0,
            },
            owner_uid: None,
        }
    }

    fn raw_core(dir: &std::path::Path, name: &str) -> (Vec<u8>, File) {
        let mut core = vec![0u8; 3 << 20];
        for (i, byte) in core[..1 << 20].iter_mut().enumerate() {
            *byte = (i % 251) as u8;
        }
        let mut file = std::fs::OpenOptions::new()
            .create_new(true)
            .read(true)
            .write(true)
            .open(dir.join(name))
            .unwrap();
        file.write_all(&core).unwrap();
        (core, file)
    }

    #[test]
    fn the_raw_core_is_replaced_by_a_whole_compressed_copy() {
        let (dir, fd) = scratch("whole");
        let (core, raw) = raw_core(&dir, "core.x.1.2");
        let done = replace_with_zstd(fd.as_fd(), &raw, "core.x.1.2", 3, &settings(None), None);
        assert_eq!(done.name.as_deref(), Some("core.x.1.2.zst"), "{done:?}");
        assert!(done.kept_raw_because.is_none());
        assert!(done.stored_bytes > 0 && done.stored_bytes < core.len() as u64);
        assert!(!dir.join("core.x.1.2").exists());
        let compressed = std::fs::read(dir.join("core.x.1.2.zst")).unwrap();
        assert_eq!(zstd::decode_all(&compressed[..]).unwrap(), core);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_compressed_copy_that_would_be_cut_leaves_the_raw_core() {
        let (dir, fd) = scratch("cut");
        let (core, raw) = raw_core(&dir, "core.y.1.2");
        let done = replace_with_zstd(
            fd.as_fd(),
            &raw,
            "core.y.1.2",
            3,
            &settings(Some(1 << 20)),
            None,
        );
        assert!(done.name.is_none(), "{done:?}");
        assert!(done.kept_raw_because.unwrap().contains("cut"));
        assert_eq!(std::fs::read(dir.join("core.y.1.2")).unwrap(), core);
        let names: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
        assert_eq!(names.len(), 1, "{names:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
