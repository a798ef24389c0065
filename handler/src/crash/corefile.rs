//! Writing the core as it streams in: constant memory whatever its size,
//! all-zero blocks left as holes (a sparse file), optional streaming zstd,
//! cut at the size limit or when the directory has no room left (the core
//! is then marked truncated, and writing simply stops: nothing fails).
//! The file is unnamed until it is complete (see `safefile`).

use crate::base::safefile::NewFile;
use crate::store::ledger::{ReservationId, ReservedCache};
use crate::store::space::{self, SpacePolicy};
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::FileExt;

/// Granularity of hole detection: the usual filesystem block size.
pub const HOLE_BLOCK: usize = 4096;
/// Room under the directory size limit is measured (the directory listed)
/// at most this much at a time.
const ROOM_STEP: u64 = 64 * 1024 * 1024;
/// How a core is stored and what bounds it.
#[derive(Debug, Clone)]
pub struct CoreSettings {
    pub zstd_level: Option<i32>,
    /// Largest uncompressed size kept (the smaller of the process's core
    /// limit and the configured maximum); `None` for no limit.
    pub max_size: Option<u64>,
    pub space: SpacePolicy,
    /// The crashing uid: the core is marked with it (`space::OWNER_XATTR`),
    /// and making room for it never deletes another user's latest core.
    pub owner_uid: Option<u32>,
}

/// What became of the core.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CoreOutcome {
    /// The name it was given in the core directory, if it was saved.
    pub name: Option<String>,
    /// Bytes of the core that the file holds (uncompressed).
    pub size: u64,
    /// Bytes the file takes on disk.
    pub stored_bytes: u64,
    /// Why the core is incomplete, if it is.
    pub truncated: Option<String>,
    /// Problems that did not stop the core from being saved.
    pub errors: Vec<String>,
    /// Cores deleted to make room.
    pub deleted: Vec<String>,
}

/// A file sink that stops at the room the directory gives it.
struct Budgeted {
    file: File,
    dir: OwnedFd,
    /// The space lock ([`space::SPACE_LOCK`]); `None` when it cannot be opened
    /// (writing then goes on, with the floor checked but not serialized).
    space_lock: Option<OwnedFd>,
    policy: SpacePolicy,
    owner_uid: Option<u32>,
    /// Room left under the directory size limit since it was last measured.
    room: u64,
    stored: u64,
    /// Cleared once the directory had no more room to give.
    may_grow: bool,
    deleted: Vec<String>,
    errors: Vec<String>,
    /// A live core's: the room it reserved in the directory (not counted
    /// against it), and the unnamed staging file beside the core (whose
    /// blocks are: the core and it exist together).
    reservation: Option<ReservationId>,
    staging: Option<File>,
    /// The room others reserved, read again when the ledger changes.
    reserved: ReservedCache,
}

impl Budgeted {
    /// Runs one "reserve, write, spend" step holding the space lock.
    fn with_space_lock<R>(&mut self, step: impl FnOnce(&mut Budgeted) -> R) -> R {
        let locked = self.space_lock.as_ref().is_some_and(|fd| {
            rustix::fs::flock(fd, rustix::fs::FlockOperation::LockExclusive).is_ok()
        });
        let result = step(self);
        if locked {
            if let Some(fd) = &self.space_lock {
                let _ = rustix::fs::flock(fd, rustix::fs::FlockOperation::Unlock);
            }
        }
        result
    }

    /// Makes sure `wanted` more bytes may be stored, asking the directory
    /// for room (and deleting old cores) when what it gave last time is
    /// spent or the free-space floor is near. Returns how many may. Called
    /// with the space lock held, and the bytes written before it is let go,
    /// so that the free space seen here is exact.
    fn reserve(&mut self, wanted: u64) -> u64 {
        let reserved = self.reserved.get(self.dir.as_fd(), self.reservation);
        let above_floor = match space::room_above_floor(self.dir.as_fd(), self.policy, reserved) {
            Ok(room) => room,
            Err(err) => {
                self.errors
                    .push(format!("cannot measure the room left: {err}"));
                0
            }
        };
        if self.may_grow && (self.room < wanted || above_floor < wanted) {
            let claimant = space::Claimant {
                uid: self.owner_uid,
                own_stem: None,
                own_reservation: self.reservation,
            };
            let staged = self.staging.as_ref().map_or(0, |file| {
                use std::os::unix::fs::MetadataExt;
                file.metadata().map_or(0, |m| m.blocks() * 512)
            });
            let unlisted = self.stored.saturating_add(staged);
            match space::make_room(self.dir.as_fd(), self.policy, wanted, unlisted, claimant) {
                Ok((room, deleted)) => {
                    self.room = room.min(ROOM_STEP);
                    self.deleted.extend(deleted);
                }
                Err(err) => {
                    self.errors
                        .push(format!("cannot measure the room left: {err}"));
                    self.room = 0;
                }
            }
            if self.room < wanted {
                self.may_grow = false;
            }
            // Measured just now (the room freed by deletions included).
            return self.room.min(wanted);
        }
        self.room.min(above_floor).min(wanted)
    }

    fn spend(&mut self, bytes: u64) {
        self.room = self.room.saturating_sub(bytes);
        self.stored += bytes;
    }
}

/// Sequential writes for the compressor; a refused byte is an error the
/// compressor passes back to the core writer.
impl Write for Budgeted {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.with_space_lock(|budgeted| {
            let allowed = budgeted.reserve(data.len() as u64) as usize;
            if allowed == 0 && !data.is_empty() {
                return Err(io::Error::new(io::ErrorKind::StorageFull, NO_ROOM));
            }
            let written = budgeted.file.write(&data[..allowed])?;
            budgeted.spend(written as u64);
            Ok(written)
        })
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

const NO_ROOM: &str = "no room left in the core directory (size limits or free-space floor)";

enum Sink {
    Sparse(Budgeted),
    Zstd(zstd::stream::write::Encoder<'static, Budgeted>),
}

/// A core being written.
pub struct CoreWriter {
    new_file: NewFile,
    sink: Option<Sink>,
    max_size: Option<u64>,
    /// Bytes of the core accepted so far (uncompressed, holes included).
    size: u64,
    truncated: Option<String>,
}

impl CoreWriter {
    /// Starts a core in `new_file`.
    pub fn new(new_file: NewFile, settings: &CoreSettings) -> io::Result<CoreWriter> {
        let mut errors = Vec::new();
        if let Some(uid) = settings.owner_uid {
            if let Err(err) = space::mark_owner(new_file.file(), uid) {
                errors.push(format!(
                    "cannot mark the core as uid {uid}'s (making room may then delete it \
                     first): {err}"
                ));
            }
        }
        let budgeted = Budgeted {
            file: new_file.file().try_clone()?,
            dir: new_file.dir().try_clone_to_owned()?,
            space_lock: space::open_space_lock(),
            policy: settings.space,
            owner_uid: settings.owner_uid,
            room: 0,
            stored: 0,
            may_grow: true,
            deleted: Vec::new(),
            errors,
            reservation: None,
            staging: None,
            reserved: ReservedCache::default(),
        };
        let sink = match settings.zstd_level {
            None => Sink::Sparse(budgeted),
            Some(level) => Sink::Zstd(zstd::stream::write::Encoder::new(budgeted, level)?),
        };
        Ok(CoreWriter {
            new_file,
            sink: Some(sink),
            max_size: settings.max_size,
            size: 0,
            truncated: None,
        })
    }

    /// A live core's writer: `reservation` is the room it reserved in the
    /// directory (not counted against it), `staging` the unnamed staging
    /// file it holds there meanwhile (its blocks counted with the core's).
    pub fn live(&mut self, reservation: Option<ReservationId>, staging: Option<File>) {
        let budgeted = match self.sink.as_mut() {
            Some(Sink::Sparse(budgeted)) => budgeted,
            Some(Sink::Zstd(encoder)) => encoder.get_mut(),
            None => return,
        };
        budgeted.reservation = reservation;
        budgeted.staging = staging;
    }

    /// Whether the writer still takes data (false once it was cut).
    pub fn wants_more(&self) -> bool {
        self.truncated.is_none()
    }

    /// Writes the next part of the core. Never fails: a limit or a write
    /// error marks the core truncated and later data is ignored.
    pub fn write(&mut self, mut data: &[u8]) {
        if self.truncated.is_some() {
            return;
        }
        if let Some(max) = self.max_size {
            let left = max.saturating_sub(self.size);
            if (data.len() as u64) > left {
                data = &data[..left as usize];
                self.truncated = Some(format!("core size limit of {max} bytes reached"));
            }
        }
        let result = match self.sink.as_mut() {
            Some(Sink::Sparse(budgeted)) => write_sparse(budgeted, self.size, data),
            // The compressor buffers input, so on an error how much of this
            // piece reached the file is unknown: none of it is counted.
            Some(Sink::Zstd(encoder)) => encoder
                .write_all(data)
                .map(|()| data.len() as u64)
                .map_err(|err| (0, err)),
            None => Ok(0),
        };
        match result {
            Ok(accepted) => self.size += accepted,
            Err((accepted, err)) => {
                self.size += accepted;
                self.truncated = Some(describe_write_error(&err));
            }
        }
    }

    /// Ends the core: finishes the compressed stream or sets the length of
    /// the sparse file, then gives the file its name.
    pub fn finish(
        mut self,
        uid_to_grant: Option<u32>,
        name: impl Fn(u32) -> String,
    ) -> (CoreOutcome, Option<File>) {
        let mut outcome = CoreOutcome::default();
        let mut take_stats = |budgeted: &mut Budgeted| {
            outcome.stored_bytes = budgeted.stored;
            outcome.deleted = std::mem::take(&mut budgeted.deleted);
            outcome.errors.append(&mut budgeted.errors);
        };
        match self.sink.take() {
            Some(Sink::Sparse(mut budgeted)) => {
                take_stats(&mut budgeted);
                // Trailing holes are not written: the length makes them.
                if let Err(err) = budgeted.file.set_len(self.size) {
                    outcome
                        .errors
                        .push(format!("cannot set the core's length: {err}"));
                }
            }
            Some(Sink::Zstd(mut encoder)) => {
                if self.truncated.is_none() {
                    if let Err(err) = encoder.do_finish() {
                        self.truncated = Some(describe_write_error(&err));
                    }
                }
                // A cut stream has no closed frame: the file then holds a
                // readable prefix of the core.
                take_stats(encoder.get_mut());
            }
            None => {}
        }
        outcome.size = self.size;
        outcome.truncated = self.truncated;
        if let Some(uid) = uid_to_grant {
            if let Err(err) = crate::base::acl::grant_read(self.new_file.file(), uid) {
                outcome.errors.push(format!(
                    "cannot let uid {uid} read the core (it stays root-only): {err}"
                ));
            }
        }
        match self.new_file.publish(name) {
            Ok((file, name)) => {
                outcome.name = Some(name);
                (outcome, Some(file))
            }
            Err(err) => {
                outcome
                    .errors
                    .push(format!("cannot name the core file: {err}"));
                (outcome, None)
            }
        }
    }
}

fn describe_write_error(err: &io::Error) -> String {
    if err.kind() == io::ErrorKind::StorageFull && err.to_string().contains(NO_ROOM) {
        NO_ROOM.to_string()
    } else if err.raw_os_error() == Some(rustix::io::Errno::NOSPC.raw_os_error()) {
        format!("filesystem full: {err}")
    } else {
        format!("write failed: {err}")
    }
}

/// Writes `data`, which starts at `offset` in the core, leaving all-zero
/// blocks as holes. Returns the bytes accepted, or those accepted before an
/// error and the error.
fn write_sparse(
    budgeted: &mut Budgeted,
    offset: u64,
    data: &[u8],
) -> Result<u64, (u64, io::Error)> {
    let mut position = 0usize;
    while position < data.len() {
        // Skip a run of zero blocks.
        while position < data.len() && is_zero(block_at(data, position)) {
            position += block_at(data, position).len();
        }
        if position >= data.len() {
            break;
        }
        // Gather a run of non-zero blocks into one write.
        let start = position;
        while position < data.len() && !is_zero(block_at(data, position)) {
            position += block_at(data, position).len();
        }
        let run = &data[start..position];
        let allowed = budgeted.with_space_lock(|budgeted| {
            let allowed = budgeted.reserve(run.len() as u64) as usize;
            budgeted
                .file
                .write_all_at(&run[..allowed], offset + start as u64)?;
            budgeted.spend(allowed as u64);
            Ok(allowed)
        });
        let allowed = match allowed {
            Ok(allowed) => allowed,
            Err(err) => return Err((start as u64, err)),
        };
        if allowed < run.len() {
            return Err((
                (start + allowed) as u64,
                io::Error::new(io::ErrorKind::StorageFull, NO_ROOM),
            ));
        }
    }
    Ok(data.len() as u64)
}

/// The hole-detection block starting at `position`. Blocks line up with
/// the filesystem's when pieces start at multiples of `HOLE_BLOCK` in the
/// core, as the pump's full buffers do.
fn block_at(data: &[u8], position: usize) -> &[u8] {
    &data[position..data.len().min(position + HOLE_BLOCK)]
}

fn is_zero(block: &[u8]) -> bool {
    let mut words = block.chunks_exact(8);
    words
        .by_ref()
        .all(|word| u64::from_ne_bytes(word.try_into().expect("8 bytes")) == 0)
        && words.remainder().iter().all(|&byte| byte == 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::os::unix::fs::MetadataExt;
    use std::path::PathBuf;

    fn scratch(tag: &str) -> (PathBuf, File) {
        let dir =
            std::env::temp_dir().join(format!("handler-corefile-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let fd = File::open(&dir).unwrap();
        (dir, fd)
    }

    fn settings(zstd_level: Option<i32>, max_size: Option<u64>) -> CoreSettings {
        CoreSettings {
            zstd_level,
            max_size,
            space: SpacePolicy {
                max_dir_size: u64::MAX,
                min_free: 0,
            },
            owner_uid: None,
        }
    }

    /// 1 MiB of data, 6 MiB of zeros, 1 MiB of data, 2 MiB of zeros.
    fn sparse_core() -> Vec<u8> {
        let mut core = vec![0u8; 10 << 20];
        for (i, byte) in core[..1 << 20].iter_mut().enumerate() {
            *byte = (i % 251) as u8 + 1;
        }
        for (i, byte) in core[7 << 20..8 << 20].iter_mut().enumerate() {
            *byte = (i % 13) as u8 + 1;
        }
        core
    }

    fn write_in_pieces(writer: &mut CoreWriter, core: &[u8], piece: usize) {
        for chunk in core.chunks(piece) {
            writer.write(chunk);
        }
    }

    #[test]
    fn zero_blocks_become_holes() {
        let (dir, fd) = scratch("sparse");
        let core = sparse_core();
        let mut writer = CoreWriter::new(
            NewFile::create_in(fd.as_fd()).unwrap(),
            &settings(None, None),
        )
        .unwrap();
        write_in_pieces(&mut writer, &core, 1 << 20);
        let (outcome, _) = writer.finish(None, |n| format!("core.t.{n}"));
        assert_eq!(outcome.truncated, None);
        assert_eq!(outcome.name.as_deref(), Some("core.t.0"));
        assert_eq!(outcome.size, core.len() as u64);
        assert_eq!(outcome.stored_bytes, 2 << 20);
        let path = dir.join("core.t.0");
        assert_eq!(std::fs::read(&path).unwrap(), core);
        let metadata = std::fs::metadata(&path).unwrap();
        assert_eq!(metadata.len(), core.len() as u64);
        assert!(
            metadata.blocks() * 512 <= (2 << 20) + 64 * 1024,
            "{} blocks",
            metadata.blocks()
        );
        assert_eq!(metadata.mode() & 0o777, 0o600);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn odd_piece_sizes_and_a_partial_last_block() {
        let (dir, fd) = scratch("odd");
        let mut core = sparse_core();
        core.extend_from_slice(&[0, 0, 7]);
        let mut writer = CoreWriter::new(
            NewFile::create_in(fd.as_fd()).unwrap(),
            &settings(None, None),
        )
        .unwrap();
        // The pump hands over whatever a read returned; blocks are cut
        // relative to each piece, so holes are only found when pieces are
        // block multiples, but the content is always right.
        write_in_pieces(&mut writer, &core, 65_537);
        let (outcome, _) = writer.finish(None, |n| format!("core.t.{n}"));
        assert_eq!(outcome.size, core.len() as u64);
        assert_eq!(std::fs::read(dir.join("core.t.0")).unwrap(), core);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn size_limit_cuts_and_marks_truncated() {
        let (dir, fd) = scratch("limit");
        let core = sparse_core();
        let limit = (7 << 20) + 100;
        let mut writer = CoreWriter::new(
            NewFile::create_in(fd.as_fd()).unwrap(),
            &settings(None, Some(limit)),
        )
        .unwrap();
        write_in_pieces(&mut writer, &core, 1 << 20);
        assert!(!writer.wants_more());
        let (outcome, _) = writer.finish(None, |n| format!("core.t.{n}"));
        assert_eq!(outcome.size, limit);
        assert!(outcome.truncated.unwrap().contains("limit"));
        assert_eq!(
            std::fs::read(dir.join("core.t.0")).unwrap(),
            &core[..limit as usize]
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn zero_limit_keeps_an_empty_file() {
        let (dir, fd) = scratch("zero-limit");
        let mut writer = CoreWriter::new(
            NewFile::create_in(fd.as_fd()).unwrap(),
            &settings(None, Some(0)),
        )
        .unwrap();
        writer.write(b"abc");
        let (outcome, _) = writer.finish(None, |n| format!("core.t.{n}"));
        assert_eq!(outcome.size, 0);
        assert!(outcome.truncated.is_some());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn directory_limit_cuts_and_marks_truncated() {
        let (dir, fd) = scratch("dirlimit");
        let core = sparse_core();
        let mut settings = settings(None, None);
        settings.space.max_dir_size = (1 << 20) + (512 << 10);
        let mut writer =
            CoreWriter::new(NewFile::create_in(fd.as_fd()).unwrap(), &settings).unwrap();
        write_in_pieces(&mut writer, &core, 1 << 20);
        let (outcome, _) = writer.finish(None, |n| format!("core.t.{n}"));
        assert_eq!(outcome.truncated.as_deref(), Some(NO_ROOM));
        assert_eq!(outcome.stored_bytes, (1 << 20) + (512 << 10));
        // The file holds the core up to where room ran out.
        assert_eq!(outcome.size, (7 << 20) + (512 << 10));
        let saved = std::fs::read(dir.join("core.t.0")).unwrap();
        assert_eq!(saved, &core[..saved.len()]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn zstd_stream_decompresses_to_the_core() {
        let (dir, fd) = scratch("zstd");
        let core = sparse_core();
        let mut writer = CoreWriter::new(
            NewFile::create_in(fd.as_fd()).unwrap(),
            &settings(Some(3), None),
        )
        .unwrap();
        write_in_pieces(&mut writer, &core, 1 << 20);
        let (outcome, _) = writer.finish(None, |n| format!("core.t.{n}.zst"));
        assert_eq!(outcome.truncated, None);
        assert_eq!(outcome.size, core.len() as u64);
        let compressed = std::fs::read(dir.join("core.t.0.zst")).unwrap();
        assert_eq!(outcome.stored_bytes, compressed.len() as u64);
        assert!(compressed.len() < core.len() / 4);
        let mut decoded = Vec::new();
        zstd::stream::read::Decoder::new(&compressed[..])
            .unwrap()
            .read_to_end(&mut decoded)
            .unwrap();
        assert_eq!(decoded, core);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn zero_detection() {
        assert!(is_zero(&[0; 4096]));
        assert!(is_zero(&[0; 13]));
        assert!(is_zero(&[]));
        let mut block = [0u8; 4096];
        block[4095] = 1;
        assert!(!is_zero(&block));
        assert!(!is_zero(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 1]));
    }
}
