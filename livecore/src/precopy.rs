//! The mechanics of write-tracked pre-copy ([`crate::Method::PreCopy`]):
//! a userfaultfd in asynchronous write-protect mode bound to the target's
//! address space, the page-table scan that lists (and protects again) the
//! pages written since the last scan, and the staging file the memory is
//! copied into while the process runs. `work` runs the method: one brief
//! stop to get the userfaultfd, the passes, the final stop.
//!
//! **The userfaultfd.** `userfaultfd()` binds the descriptor to the
//! address space of the process that calls it, so it is called by the
//! target (an injected system call, `inject`, during a stop of a few
//! microseconds), with `UFFD_USER_MODE_ONLY` (the call runs with the
//! target's credentials, and `vm.unprivileged_userfaultfd=0` refuses a
//! descriptor that also handles kernel-mode faults to one without
//! `CAP_SYS_PTRACE`), `O_CLOEXEC | O_NONBLOCK`. The dumper takes it with
//! `pidfd_getfd()` and an injected `close()` drops the target's number:
//! the target keeps nothing in its descriptor table. Every `ioctl` on the
//! descriptor acts on the address space it is bound to, whoever makes it:
//! `UFFDIO_API` with `UFFD_FEATURE_WP_ASYNC` (a write to a protected page
//! is not reported to anyone: the kernel unprotects the page and lets the
//! write go on, at the cost of one minor fault) and
//! `UFFD_FEATURE_WP_UNPOPULATED`, then `UFFDIO_REGISTER` in write-protect
//! mode for every private region the core will hold. The dumper holds the
//! only reference: when it closes it, or dies, the kernel unregisters
//! every region (their `VmFlags` lose `uw`) and drops the protection bits.
//!
//! **The scan.** `PAGEMAP_SCAN` on `/proc/PID/pagemap` with
//! `PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC`, category
//! `PAGE_IS_WRITTEN`, returns the pages of a region written since the
//! previous scan (a present or swapped page without its protection bit:
//! whoever wrote it, the process or the kernel on its behalf, `read(2)`
//! into it) and protects them again in the same walk. A page never
//! populated is not written: it reads as zeroes and is a hole, and it
//! shows as written once the process populates it.
//!
//! **What can change behind the tracking** (what the final stop does about
//! it):
//! - Shared mappings (`MAP_SHARED`, SysV shm, memfd): another process may
//!   write them through its own page tables. They are not tracked; they
//!   are copied whole during the final stop (their content is then what it
//!   is at the stop, written or not by others later).
//! - A private file mapping's pages the process never wrote still show the
//!   file's page cache: a write to the file by anyone changes them without
//!   a write in this address space. They are copied during the passes like
//!   the rest; the core holds the file's content at the time they were
//!   read, as gdb's gcore (which reads while stopped, but reads file pages
//!   as they are then) would at that time. The kernel's own core dump
//!   does not dump unwritten private file pages by default
//!   (`coredump_filter` bit 2 is off), and neither does this one.
//! - A page the process gives back after a pass copied it, without
//!   writing it again (`MADV_DONTNEED`, `MADV_FREE` once reclaimed,
//!   `MADV_PAGEOUT`): it is not always "written". In an anonymous mapping
//!   the kernel drops its entry; the scan reports an empty entry as
//!   written, and a range left with no page table at all (a whole huge
//!   page, a table the kernel freed, `PT_RECLAIM`) only on a kernel with a
//!   fix of 2026 (sent to the stable kernels, by its description; the
//!   6.18.44 these tests ran on has it, a probe says: [`reports_holes`]).
//!   (A hole punched in the file under a private file mapping changes
//!   only the pages that are the file's: the case of the item above.) In
//!   a private file mapping a write protection marker takes the entry's
//!   place: not written, and the page now reads as the file's. So the
//!   final stop also lists, once per tracked region (one more walk of its
//!   page tables, no protection changed): in an anonymous region, the
//!   pages with no entry at all ([`Tracker::unpopulated`], only on a
//!   kernel that does not report them as written: [`reports_holes`]) are
//!   zeroes, made holes in the staging file where it held data
//!   (swapped-out pages are left as copied: one written since would be
//!   "written"). In a private file
//!   mapping, the passes note the pages that were private copies when
//!   they were copied ([`Tracker::private_copies`]); those that now read
//!   as the file's ([`Tracker::file_pages`]: a page cache page mapped again
//!   by a read after the marker, or still nothing) are read again.
//! - What only smaps says (`MADV_DONTDUMP`) is taken from the smaps read
//!   after the last pass; a mapping marked whole since is left out when a
//!   last smaps read, once the threads are let go, shows the mark (`work`,
//!   `leave_out_marked_since`).
//! - Mappings made, removed or changed (`mmap`, `munmap`, `mprotect`,
//!   `mremap`, `brk`) after the registration: the final stop reads the
//!   mappings again; one that is not exactly a registered region still
//!   registered (`uw` in its `VmFlags`) is copied whole during the stop.
//! - A region whose registration failed (the kernel refuses some kinds of
//!   mapping) is copied whole during the final stop.
//!
//! **The staging file.** The memory is copied into a sparse file of the
//! dumper's (`O_TMPFILE`: it has no name, and disappears with the dumper
//! whatever happens; beside a file output or in `$TMPDIR`, or the one a
//! caller gives, `crate::StagingSpace`, within its budget: the handler's
//! in its crash store, counted by the store's limits), each region at its
//! own place; a page written again
//! is copied again over its old bytes (a page that reads as zeroes now
//! becomes a hole). Once the threads are let go for the last time, the core
//! is written from it as the other methods write theirs (sparse, or a
//! stream, zstd optional).

use crate::memory::{is_zero, Copier};
use crate::regions::{Content, PAGE_SIZE};
use crate::report::{ErrorKind, LiveError, Result};
use crate::sys::Pid;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// The flags of the injected `userfaultfd()`: `O_CLOEXEC | O_NONBLOCK |
/// UFFD_USER_MODE_ONLY`.
pub const USERFAULTFD_FLAGS: u64 = (libc::O_CLOEXEC | libc::O_NONBLOCK) as u64 | 1;

const UFFD_API: u64 = 0xaa;
const UFFD_FEATURE_WP_UNPOPULATED: u64 = 1 << 13;
const UFFD_FEATURE_WP_ASYNC: u64 = 1 << 15;
const UFFDIO_REGISTER_MODE_WP: u64 = 1 << 1;

const fn iowr(kind: u64, nr: u64, size: u64) -> u64 {
    (3 << 30) | (size << 16) | (kind << 8) | nr
}
const fn ior(kind: u64, nr: u64, size: u64) -> u64 {
    (2 << 30) | (size << 16) | (kind << 8) | nr
}
const UFFDIO_API: u64 = iowr(0xaa, 0x3f, 24);
const UFFDIO_REGISTER: u64 = iowr(0xaa, 0x00, 32);
const UFFDIO_UNREGISTER: u64 = ior(0xaa, 0x01, 16);
const PAGEMAP_SCAN: u64 = iowr(b'f' as u64, 16, 96);

const PM_SCAN_WP_MATCHING: u64 = 1;
const PM_SCAN_CHECK_WPASYNC: u64 = 2;
const PAGE_IS_WRITTEN: u64 = 1 << 1;
const PAGE_IS_FILE: u64 = 1 << 2;
const PAGE_IS_PRESENT: u64 = 1 << 3;
const PAGE_IS_SWAPPED: u64 = 1 << 4;

#[repr(C)]
#[derive(Default)]
struct UffdioApi {
    api: u64,
    features: u64,
    ioctls: u64,
}

#[repr(C)]
#[derive(Default)]
struct UffdioRegister {
    start: u64,
    len: u64,
    mode: u64,
    ioctls: u64,
}

#[repr(C)]
#[derive(Default)]
struct UffdioRange {
    start: u64,
    len: u64,
}

#[repr(C)]
#[derive(Default)]
struct PmScanArg {
    size: u64,
    flags: u64,
    start: u64,
    end: u64,
    walk_end: u64,
    vec: u64,
    vec_len: u64,
    max_pages: u64,
    category_inverted: u64,
    category_mask: u64,
    category_anyof_mask: u64,
    return_mask: u64,
}

#[repr(C)]
#[derive(Default, Clone, Copy)]
struct PageRegion {
    start: u64,
    end: u64,
    categories: u64,
}

fn ioctl<T>(fd: RawFd, request: u64, arg: &mut T) -> io::Result<i64> {
    // SAFETY: `arg` is the structure `request` reads and writes (its size
    // is in the request number), alive and exclusively borrowed for the
    // call.
    let ret = unsafe { libc::ioctl(fd, request as _, arg as *mut T) };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret as i64)
    }
}

/// Takes descriptor `fd` of the process `pidfd` names (`pidfd_getfd`).
pub fn take_descriptor(pidfd: RawFd, fd: i32) -> io::Result<OwnedFd> {
    // SAFETY: a plain system call with integer arguments.
    let ret = unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd, fd, 0) };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a new descriptor the kernel just gave us, owned by nothing
    // else.
    Ok(unsafe { OwnedFd::from_raw_fd(ret as RawFd) })
}

/// A userfaultfd bound to the target's address space, in asynchronous
/// write-protect mode.
pub struct Tracker {
    uffd: OwnedFd,
    pagemap: File,
    vec: Vec<PageRegion>,
    /// Whether the scan reports a range with no page table at all as
    /// written ([`reports_holes`]).
    reports_holes: bool,
}

impl Tracker {
    /// Enables asynchronous write protection on `uffd` (the target's) and
    /// opens the page map of `pid` for the scans.
    pub fn new(uffd: OwnedFd, pid: Pid) -> io::Result<Tracker> {
        let mut api = UffdioApi {
            api: UFFD_API,
            features: UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED,
            ioctls: 0,
        };
        ioctl(uffd.as_raw_fd(), UFFDIO_API, &mut api)?;
        Ok(Tracker {
            uffd,
            pagemap: File::open(format!("/proc/{pid}/pagemap"))?,
            vec: vec![PageRegion::default(); 1024],
            reports_holes: false,
        })
    }

    /// [`Tracker::new`], and whether this kernel's scan reports a range
    /// with no page table as written, found out once on the dumper's own
    /// memory ([`reports_holes`]).
    pub fn with_probe(uffd: OwnedFd, pid: Pid) -> io::Result<Tracker> {
        let mut tracker = Tracker::new(uffd, pid)?;
        tracker.reports_holes = reports_holes();
        Ok(tracker)
    }

    /// Registers `[start, end)` for write protection.
    pub fn register(&self, start: u64, end: u64) -> io::Result<()> {
        let mut r = UffdioRegister {
            start,
            len: end - start,
            mode: UFFDIO_REGISTER_MODE_WP,
            ioctls: 0,
        };
        ioctl(self.uffd.as_raw_fd(), UFFDIO_REGISTER, &mut r).map(drop)
    }

    /// Unregisters `[start, end)` (closing the descriptor does it too).
    pub fn unregister(&self, start: u64, end: u64) -> io::Result<()> {
        let mut r = UffdioRange {
            start,
            len: end - start,
        };
        ioctl(self.uffd.as_raw_fd(), UFFDIO_UNREGISTER, &mut r).map(drop)
    }

    /// The pages of `[start, end)` written since the last scan (ranges,
    /// merged), protected again.
    pub fn written(&mut self, start: u64, end: u64) -> io::Result<Vec<(u64, u64)>> {
        let arg = PmScanArg {
            flags: PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC,
            category_mask: PAGE_IS_WRITTEN,
            return_mask: PAGE_IS_WRITTEN,
            ..PmScanArg::default()
        };
        self.scan(start, end, arg)
    }

    /// The pages of `[start, end)` in the categories `arg` asks for
    /// (`PAGEMAP_SCAN`, its flags and masks), as ranges merged.
    fn scan(&mut self, start: u64, end: u64, arg: PmScanArg) -> io::Result<Vec<(u64, u64)>> {
        let mut out: Vec<(u64, u64)> = Vec::new();
        let mut at = start;
        while at < end {
            let mut arg = PmScanArg {
                size: std::mem::size_of::<PmScanArg>() as u64,
                start: at,
                end,
                vec: self.vec.as_mut_ptr() as u64,
                vec_len: self.vec.len() as u64,
                ..arg
            };
            let n = ioctl(self.pagemap.as_raw_fd(), PAGEMAP_SCAN, &mut arg)? as usize;
            for r in &self.vec[..n.min(self.vec.len())] {
                match out.last_mut() {
                    Some(last) if last.1 == r.start => last.1 = r.end,
                    _ => out.push((r.start, r.end)),
                }
            }
            if arg.walk_end <= at {
                break;
            }
            at = arg.walk_end;
        }
        Ok(out)
    }

    /// The pages of `[start, end)` in the categories asked (as
    /// `PAGEMAP_SCAN` takes them), protection unchanged: one walk of the
    /// region's page tables, as [`Tracker::written`]'s.
    fn pages(&mut self, (start, end): (u64, u64), inverted: u64, mask: u64, anyof: u64) -> io::Result<Vec<(u64, u64)>> {
        let arg = PmScanArg {
            category_inverted: inverted,
            category_mask: mask,
            category_anyof_mask: anyof,
            ..PmScanArg::default()
        };
        self.scan(start, end, arg)
    }

    /// The pages of an anonymous region with no entry at all now (neither
    /// in memory nor swapped out, nor a marker), not reported as written:
    /// zeroes. None where the kernel reports them as written (the last
    /// [`Tracker::written`] listed them).
    pub fn unpopulated(&mut self, start: u64, end: u64) -> io::Result<Vec<(u64, u64)>> {
        if self.reports_holes {
            return Ok(Vec::new());
        }
        let both = PAGE_IS_PRESENT | PAGE_IS_SWAPPED;
        self.pages((start, end), both, both, 0)
    }

    /// The pages of a private file mapping that are not the file's (its
    /// private copies, in memory or swapped out; and markers, to be sure).
    pub fn private_copies(&mut self, start: u64, end: u64) -> io::Result<Vec<(u64, u64)>> {
        let any = PAGE_IS_PRESENT | PAGE_IS_SWAPPED;
        self.pages((start, end), PAGE_IS_FILE, PAGE_IS_FILE, any)
    }

    /// The pages of a private file mapping that read as the file's now: a
    /// page cache page mapped, or nothing in memory (a marker where a page
    /// was, no entry, swapped out).
    pub fn file_pages(&mut self, start: u64, end: u64) -> io::Result<Vec<(u64, u64)>> {
        let any = PAGE_IS_FILE | PAGE_IS_PRESENT;
        self.pages((start, end), PAGE_IS_PRESENT, 0, any)
    }
}

/// Whether `PAGEMAP_SCAN` reports as written (and protects) a range of a
/// registered anonymous region that has no page table at all, as it does
/// an empty entry: what a whole huge page or a page table's span given
/// back (`MADV_DONTNEED`; the kernel frees the table, `PT_RECLAIM`) leaves.
/// A kernel with a fix of 2026 does (6.18.44 does); before it, such a
/// range is never "written", and the final stop must
/// look for it ([`Tracker::unpopulated`]: one more walk of every tracked
/// anonymous region, about 0.7 ms per GiB of 4 KiB pages). Found out on a
/// fresh, never touched mapping of the dumper's own (its own userfaultfd,
/// user-mode faults only); no answer (a refusal) counts as no.
fn reports_holes() -> bool {
    const TABLE: u64 = 2 << 20;
    let Ok(mut probe) = own_tracker() else {
        return false;
    };
    let Ok(region) = crate::sys::AnonRegion::reserve(2 * TABLE as usize) else {
        return false;
    };
    // A table's span inside it, never touched: no page table.
    let start = (region.as_ptr() as u64).next_multiple_of(TABLE);
    let reported = probe.register(start, start + TABLE).is_ok()
        && probe
            .written(start, start + TABLE)
            .is_ok_and(|written| !written.is_empty());
    // Unregistered (the descriptor closed), then unmapped.
    drop(probe);
    drop(region);
    reported
}

/// A tracker of the dumper's own memory (its own userfaultfd).
fn own_tracker() -> io::Result<Tracker> {
    // SAFETY: a plain system call with integer arguments.
    let fd = unsafe { libc::syscall(libc::SYS_userfaultfd, USERFAULTFD_FLAGS) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a new descriptor the kernel just gave us, owned by nothing
    // else.
    let uffd = unsafe { OwnedFd::from_raw_fd(fd as RawFd) };
    // SAFETY: getpid has no memory effects.
    Tracker::new(uffd, unsafe { libc::getpid() })
}

/// Where the memory is copied until the core is written: a sparse file
/// without a name.
pub struct Staging {
    pub file: File,
    /// The next free offset.
    end: u64,
    /// The most bytes the file may take on disk, and what sets it (a
    /// caller's [`crate::StagingSpace`]).
    budget: Option<(u64, String)>,
    /// A write was refused for the budget.
    over_budget: std::sync::atomic::AtomicBool,
}

/// A directory for the staging file: the output's when it is a file (its
/// file system takes the core anyway), else `$TMPDIR` or `/var/tmp`.
fn staging_dir(output: RawFd) -> PathBuf {
    if let Ok(path) = std::fs::read_link(format!("/proc/self/fd/{output}")) {
        if path.is_absolute() && path.is_file() {
            if let Some(dir) = path.parent() {
                return dir.to_path_buf();
            }
        }
    }
    std::env::var_os("TMPDIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/tmp"))
}

impl Staging {
    /// The caller's staging file, within its budget, when it gave one;
    /// else a staging file beside the output `output` (see
    /// [`staging_dir`]).
    pub fn new(output: RawFd, given: Option<&crate::StagingSpace>) -> Result<Staging> {
        if let Some(given) = given {
            let file = given
                .file
                .try_clone()
                .map(File::from)
                .and_then(|file| file.set_len(0).map(|()| file))
                .map_err(|e| {
                    LiveError::new(
                        ErrorKind::Output,
                        format!("using the pre-copy's staging file given: {e}"),
                    )
                })?;
            return Ok(Staging {
                file,
                end: 0,
                budget: Some((given.budget, given.limit.clone())),
                over_budget: std::sync::atomic::AtomicBool::new(false),
            });
        }
        let dir = staging_dir(output);
        let file = open_unnamed(&dir)
            .or_else(|_| open_unnamed(Path::new("/tmp")))
            .map_err(|e| {
                LiveError::new(
                    ErrorKind::Output,
                    format!(
                        "creating the pre-copy's staging file in {}: {e}",
                        dir.display()
                    ),
                )
            })?;
        Ok(Staging {
            file,
            end: 0,
            budget: None,
            over_budget: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// Whether a write was refused because the budget would be exceeded.
    pub fn over_budget(&self) -> bool {
        self.over_budget.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Gives the file's blocks back (pre-copy gave up: the dump goes on
    /// without it, and the core needs the room).
    pub fn release(&self) {
        let _ = self.file.set_len(0);
    }

    /// Refuses a write of `len` more bytes when the file's blocks on disk
    /// (what the file system counts, holes excluded) plus `len` would go
    /// beyond the budget. A write over bytes already there is counted as
    /// if it grew the file: the check errs on the safe side.
    fn check_budget(&self, len: u64) -> Result<()> {
        let Some((budget, limit)) = &self.budget else {
            return Ok(());
        };
        use std::os::unix::fs::MetadataExt;
        let taken = self
            .file
            .metadata()
            .map(|m| m.blocks() * 512)
            .map_err(staging_error)?;
        if taken.saturating_add(len) > *budget {
            self.over_budget.store(true, std::sync::atomic::Ordering::Relaxed);
            return Err(LiveError::new(
                ErrorKind::Output,
                format!(
                    "pre-copy's staging file would take more than the {} KiB it may ({limit}): {} KiB staged, {} KiB more to copy",
                    budget >> 10,
                    taken >> 10,
                    len.div_ceil(1024)
                ),
            ));
        }
        Ok(())
    }

    /// Room for `len` bytes (page-aligned); returns its offset.
    pub fn allocate(&mut self, len: u64) -> u64 {
        let at = self.end;
        self.end += len.div_ceil(PAGE_SIZE) * PAGE_SIZE;
        // Its length covers it, holes included (a failure shows when it is
        // read back).
        let _ = self.file.set_len(self.end);
        at
    }

    /// Copies `[start, start + len)` of the memory `copier` reads to
    /// `offset`; zero or unreadable pages are holes (`again`: the range was
    /// copied before, so they are punched). Returns the bytes of data.
    #[allow(clippy::too_many_arguments)]
    pub fn copy(
        &self,
        copier: &mut Copier,
        buffer: &mut [u8],
        start: u64,
        len: u64,
        offset: u64,
        content: Content,
        again: bool,
    ) -> Result<u64> {
        let page = PAGE_SIZE as usize;
        let mut populated = Vec::new();
        let mut done = 0u64;
        let mut data = 0u64;
        while done < len {
            let chunk = (len - done).min(buffer.len() as u64) as usize;
            copier.read_chunk(start + done, chunk, content, buffer, &mut populated)?;
            let pages = chunk / page;
            let mut i = 0;
            while i < pages {
                let full = populated[i] && !is_zero(&buffer[i * page..(i + 1) * page]);
                let mut j = i + 1;
                while j < pages
                    && (populated[j] && !is_zero(&buffer[j * page..(j + 1) * page])) == full
                {
                    j += 1;
                }
                let at = offset + done + (i * page) as u64;
                if full {
                    self.check_budget(((j - i) * page) as u64)?;
                    self.file
                        .write_all_at(&buffer[i * page..j * page], at)
                        .map_err(staging_error)?;
                    data += ((j - i) * page) as u64;
                } else if again {
                    punch(&self.file, at, ((j - i) * page) as u64).map_err(staging_error)?;
                }
                i = j;
            }
            done += chunk as u64;
        }
        Ok(data)
    }
}

impl Staging {
    /// Makes `[at, at + len)` zeroes (a hole), if it holds data.
    pub fn zero(&self, at: u64, len: u64) -> Result<()> {
        // SAFETY: a plain system call on a descriptor we own.
        let data = unsafe {
            libc::lseek(
                self.file.as_raw_fd(),
                at as libc::off_t,
                libc::SEEK_DATA,
            )
        };
        // No data from `at` on (ENXIO), or none before `at + len`.
        if data < 0 || data as u64 >= at + len {
            return Ok(());
        }
        punch(&self.file, at, len).map_err(staging_error)
    }
}

fn staging_error(e: io::Error) -> LiveError {
    LiveError::new(
        ErrorKind::Output,
        format!("writing the pre-copy's staging file: {e}"),
    )
}

fn open_unnamed(dir: &Path) -> io::Result<File> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .mode(0o600)
        .custom_flags(libc::O_TMPFILE)
        .open(dir)
}

/// Makes `[at, at + len)` of `file` a hole (zeroes).
fn punch(file: &File, at: u64, len: u64) -> io::Result<()> {
    // SAFETY: a plain system call on a descriptor we own.
    let ret = unsafe {
        libc::fallocate(
            file.as_raw_fd(),
            libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
            at as libc::off_t,
            len as libc::off_t,
        )
    };
    if ret == 0 {
        return Ok(());
    }
    let e = io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::EOPNOTSUPP) {
        // No holes on this file system: zeroes.
        let zeroes = vec![0u8; len as usize];
        return file.write_all_at(&zeroes, at);
    }
    Err(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_numbers_are_the_kernels() {
        // From <linux/userfaultfd.h> and <linux/fs.h> (6.7+).
        assert_eq!(UFFDIO_API, 0xc018_aa3f);
        assert_eq!(UFFDIO_REGISTER, 0xc020_aa00);
        assert_eq!(UFFDIO_UNREGISTER, 0x8010_aa01);
        assert_eq!(PAGEMAP_SCAN, 0xc060_6610);
        assert_eq!(std::mem::size_of::<PmScanArg>(), 96);
    }

    #[test]
    fn a_range_given_back_becomes_zeroes_in_the_staging_file() {
        let dir = std::env::temp_dir();
        let staging = Staging {
            file: open_unnamed(&dir).unwrap(),
            end: 0,
            budget: None,
            over_budget: std::sync::atomic::AtomicBool::new(false),
        };
        let page = PAGE_SIZE as usize;
        staging.file.set_len(4 * PAGE_SIZE).unwrap();
        staging.file.write_all_at(&vec![7u8; 2 * page], 0).unwrap();
        // A range without data: nothing to do; a range with: zeroes.
        staging.zero(2 * PAGE_SIZE, 2 * PAGE_SIZE).unwrap();
        staging.zero(PAGE_SIZE, PAGE_SIZE).unwrap();
        let mut back = vec![0u8; 4 * page];
        staging.file.read_exact_at(&mut back, 0).unwrap();
        assert!(back[..page].iter().all(|&b| b == 7));
        assert!(back[page..].iter().all(|&b| b == 0));
    }

    /// Maps `len` bytes private and writable (of `fd`, or anonymous).
    fn map(len: usize, fd: RawFd) -> *mut u8 {
        let anonymous = if fd < 0 { libc::MAP_ANONYMOUS } else { 0 };
        // SAFETY: a new private mapping where the kernel chooses; the
        // tests unmap it.
        let addr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | anonymous,
                fd,
                0,
            )
        };
        assert_ne!(addr, libc::MAP_FAILED);
        addr.cast()
    }

    fn dontneed(at: u64, len: u64) {
        // SAFETY: pages of a private mapping of this test's, which no
        // reference points into.
        let ret = unsafe { libc::madvise(at as *mut libc::c_void, len as usize, libc::MADV_DONTNEED) };
        assert_eq!(ret, 0);
    }

    #[test]
    fn pages_given_back_are_listed() {
        const TABLE: u64 = 2 << 20;
        let mut tracker = own_tracker().unwrap();
        // Anonymous: 4 table spans, touched, protected; then one whole
        // span given back (no page table may be left) and 3 pages of
        // another (empty entries).
        let len = 4 * TABLE;
        let base = map(len as usize, -1);
        // SAFETY: the mapping just made, `len` bytes.
        unsafe { std::ptr::write_bytes(base, 1, len as usize) };
        let (start, end) = (base as u64, base as u64 + len);
        tracker.register(start, end).unwrap();
        tracker.written(start, end).unwrap();
        let span = start.next_multiple_of(TABLE);
        let part = span + TABLE + 5 * PAGE_SIZE;
        dontneed(span, TABLE);
        dontneed(part, 3 * PAGE_SIZE);
        assert_eq!(
            tracker.unpopulated(start, end).unwrap(),
            vec![(span, span + TABLE), (part, part + 3 * PAGE_SIZE)]
        );
        // SAFETY: the mapping made above, no longer used.
        unsafe { libc::munmap(base.cast(), len as usize) };

        // A private file mapping of 8 pages, pages 2 to 4 written (private
        // copies), then pages 3 and 4 given back (the file's again).
        let file = open_unnamed(&std::env::temp_dir()).unwrap();
        file.write_all_at(&vec![9u8; 8 * PAGE_SIZE as usize], 0).unwrap();
        let len = 8 * PAGE_SIZE;
        let base = map(len as usize, file.as_raw_fd());
        // SAFETY: pages 2 to 4 of the mapping just made.
        unsafe { std::ptr::write_bytes(base.add(2 * PAGE_SIZE as usize), 7, 3 * PAGE_SIZE as usize) };
        let (start, end) = (base as u64, base as u64 + len);
        let page = |i: u64| start + i * PAGE_SIZE;
        tracker.register(start, end).unwrap();
        tracker.written(start, end).unwrap();
        // Read, as a pass reads them (the file's pages mapped).
        for i in 0..8 {
            // SAFETY: a byte of the mapping.
            unsafe { std::ptr::read_volatile(base.add((i * PAGE_SIZE) as usize)) };
        }
        assert_eq!(tracker.private_copies(start, end).unwrap(), vec![(page(2), page(5))]);
        dontneed(page(3), 2 * PAGE_SIZE);
        // Page 3 read again (the page cache's, mapped), page 4 not.
        // SAFETY: a byte of the mapping.
        assert_eq!(unsafe { std::ptr::read_volatile(base.add(3 * PAGE_SIZE as usize)) }, 9);
        let file_pages = tracker.file_pages(start, end).unwrap();
        assert!(
            file_pages.iter().any(|&(s, e)| s <= page(3) && page(5) <= e)
                && !file_pages.iter().any(|&(s, e)| s < page(3) && page(2) < e),
            "{file_pages:x?}"
        );
        // SAFETY: the mapping made above, no longer used.
        unsafe { libc::munmap(base.cast(), len as usize) };
    }
}
