//! Stop-and-copy's memory buffer: while every thread is stopped, the
//! process's memory is copied into memory of the dumper's own (regions
//! allocated and faulted in *before* the stop, so that the stop pays for
//! the copy alone), the threads are let go, and only then is the core
//! written from it. The pause is then the copy's speed (a memory-to-memory
//! copy), not the file system's.
//!
//! What the core will be is kept as a list of pieces in file order: bytes
//! (the ELF head, memory read during the stop by other means), holes, and
//! pages held packed in a region (only the pages with content take room:
//! pages never touched or all zeroes are holes, as in the file).
//!
//! Bounded: the buffer may take at most [`limit`] bytes (by default three
//! quarters of the memory the kernel says is available, `MemAvailable`).
//! A process whose memory is larger than that is not buffered at all (the
//! core is written during the stop, as before, and the report says why);
//! one whose memory grows past the estimate during the stop is buffered
//! until the limit, then what is held is written out and the rest of the
//! core is written during the stop ("spilled", said in the report). Either
//! way the core is the same.

use crate::memory::Copier;
use crate::regions::{Content, PAGE_SIZE};
use crate::report::{ErrorKind, LiveError, Result};
use crate::sink::CoreSink;
use crate::sys::AnonRegion;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

/// Each region of the buffer is this large (or one copy piece, if larger).
const REGION: usize = 64 << 20;
/// Margin added to the estimate of the memory to buffer (what the process
/// may map between the estimate and the stop, the notes).
const ESTIMATE_MARGIN: u64 = 16 << 20;
/// A mapping of at least this many copy pieces is copied by several
/// threads (`Stash::with_readers`).
const PARALLEL_MIN_CHUNKS: u64 = 16;
/// Each of several copying threads takes this much of the buffer at a time
/// (what is left unused of its last one, at most this, is lost room).
const EXTENT: usize = 4 << 20;

/// A piece of the core, in file order.
enum Piece {
    Bytes(Vec<u8>),
    Hole(u64),
    /// `data.len()` pages: those marked true are held one after the other
    /// from `offset` in region `region`; the others are holes.
    Pages {
        region: usize,
        offset: usize,
        data: Vec<bool>,
    },
}

/// The core, kept in memory until the threads are let go.
pub struct Stash {
    regions: Vec<AnonRegion>,
    region_size: usize,
    /// The region being filled and the bytes used in it.
    current: usize,
    used: usize,
    pieces: Vec<Piece>,
    limit: u64,
    /// Written straight to the sink once the buffer is full.
    sink: CoreSink,
    spilled: bool,
    position: u64,
    /// Bytes of memory content held (or written, once spilled).
    pub held: u64,
    /// Why the core was partly written during the stop, when it was.
    pub spill_reason: Option<String>,
    chunk: usize,
    scratch: Vec<u8>,
    /// Threads that copy a large mapping at once (`parallel`).
    readers: usize,
}

/// How many bytes the buffer may take: `configured`, else three quarters
/// of `MemAvailable`.
pub fn limit(configured: Option<u64>) -> u64 {
    if let Some(bytes) = configured {
        return bytes;
    }
    let available = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|l| l.strip_prefix("MemAvailable:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kib| kib * 1024);
    available - available / 4
}

/// The memory a core of `pid` may need buffered: its resident and swapped
/// memory (`smaps_rollup`), plus a margin. Read before the stop.
pub fn estimate(pid: i32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
    };
    Some((field("Rss:")? + field("Swap:").unwrap_or(0)) * 1024 + ESTIMATE_MARGIN)
}

/// One region, its pages faulted in now (and asked to be huge pages before
/// they are), so that copying into it during the stop costs no page fault.
fn region(size: usize) -> io::Result<AnonRegion> {
    AnonRegion::new(size)
}

/// The regions of a buffer, allocated and faulted in before the stop.
pub struct Reserved {
    regions: Vec<AnonRegion>,
    region_size: usize,
    limit: u64,
}

impl Reserved {
    /// `count` regions of `region_size` bytes (the unit tests' small ones).
    #[cfg(test)]
    fn with_regions(count: usize, region_size: usize, limit: u64) -> Reserved {
        Reserved {
            regions: (0..count).map(|_| region(region_size).unwrap()).collect(),
            region_size,
            limit,
        }
    }

    /// Regions for about `estimate` bytes of memory (at most `limit`);
    /// `chunk`: the bytes read from the process at a time.
    pub fn new(estimate: u64, limit: u64, chunk: usize) -> Result<Reserved> {
        let region_size = REGION.max(chunk);
        let wanted = estimate.min(limit).div_ceil(region_size as u64) as usize;
        let mut regions = Vec::with_capacity(wanted);
        for _ in 0..wanted {
            regions.push(region(region_size).map_err(|e| {
                LiveError::new(
                    ErrorKind::Internal,
                    format!("allocating the stop-and-copy buffer: {e}"),
                )
            })?);
        }
        Ok(Reserved {
            regions,
            region_size,
            limit,
        })
    }
}

impl Stash {
    /// The buffer of `reserved` over `sink`. `chunk`: the bytes read from
    /// the process at a time (as given to [`Reserved::new`]).
    pub fn new(sink: CoreSink, reserved: Reserved, chunk: usize) -> Stash {
        let Reserved {
            regions,
            region_size,
            limit,
        } = reserved;
        Stash {
            regions,
            region_size,
            current: 0,
            used: 0,
            pieces: Vec::new(),
            limit,
            sink,
            spilled: false,
            position: 0,
            held: 0,
            spill_reason: None,
            chunk,
            scratch: Vec::new(),
            readers: 1,
        }
    }

    /// Copies large mappings with `readers` threads at once (at least one).
    pub fn with_readers(mut self, readers: usize) -> Stash {
        self.readers = readers.max(1);
        self
    }

    /// The bytes of memory the buffer took (its regions).
    pub fn allocated(&self) -> u64 {
        (self.regions.len() * self.region_size) as u64
    }

    pub fn position(&self) -> u64 {
        self.position
    }

    pub fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.position += bytes.len() as u64;
        if self.spilled {
            return self.sink.write(bytes);
        }
        self.pieces.push(Piece::Bytes(bytes.to_vec()));
        Ok(())
    }

    pub fn skip(&mut self, len: u64) -> io::Result<()> {
        self.position += len;
        if self.spilled {
            return self.sink.skip(len);
        }
        self.pieces.push(Piece::Hole(len));
        Ok(())
    }

    /// Room for `len` more bytes in a region: the next one, or a new one
    /// within the limit (faulted in during the stop: the estimate was
    /// short). False when the limit is reached.
    fn room_for(&mut self, len: usize) -> bool {
        if self.current < self.regions.len() && self.used + len <= self.region_size {
            return true;
        }
        if self.current < self.regions.len() && self.used > 0 {
            self.current += 1;
            self.used = 0;
        }
        if self.current < self.regions.len() {
            return true;
        }
        if self.allocated() + self.region_size as u64 > self.limit {
            return false;
        }
        match region(self.region_size) {
            Ok(region) => {
                self.regions.push(region);
                true
            }
            Err(_) => false,
        }
    }

    /// Writes out what is held, in order, and writes the rest of the core
    /// straight to the sink from now on.
    fn spill(&mut self, why: String) -> io::Result<()> {
        self.spill_reason = Some(why);
        self.flush_pieces()?;
        self.spilled = true;
        self.regions = Vec::new();
        Ok(())
    }

    fn flush_pieces(&mut self) -> io::Result<()> {
        let page = PAGE_SIZE as usize;
        for piece in std::mem::take(&mut self.pieces) {
            match piece {
                Piece::Bytes(bytes) => self.sink.write(&bytes)?,
                Piece::Hole(len) => self.sink.skip(len)?,
                Piece::Pages {
                    region,
                    offset,
                    data,
                } => {
                    let bytes = &self.regions[region];
                    let mut at = offset;
                    let mut i = 0;
                    while i < data.len() {
                        let kind = data[i];
                        let end = (i..data.len())
                            .find(|&j| data[j] != kind)
                            .unwrap_or(data.len());
                        let len = (end - i) * page;
                        if kind {
                            self.sink.write(&bytes[at..at + len])?;
                            at += len;
                        } else {
                            self.sink.skip(len as u64)?;
                        }
                        i = end;
                    }
                }
            }
        }
        Ok(())
    }

    /// Copies `[start, start + len)` of the process's memory into the
    /// buffer (or, once spilled, into the core). `on_chunk` is called after
    /// each piece.
    pub fn copy(
        &mut self,
        copier: &mut Copier,
        start: u64,
        len: u64,
        content: Content,
        on_chunk: &mut dyn FnMut(),
    ) -> Result<()> {
        let page = PAGE_SIZE as usize;
        let output =
            |e: io::Error| LiveError::new(ErrorKind::Output, format!("writing the core: {e}"));
        let mut done = 0u64;
        if self.readers > 1
            && !self.spilled
            && len.div_ceil(self.chunk as u64) >= PARALLEL_MIN_CHUNKS
        {
            done = self.copy_parallel(copier, start, len, content)?;
            copier.copied += done;
            if done > 0 {
                on_chunk();
            }
        }
        while done < len {
            let chunk = (len - done).min(self.chunk as u64) as usize;
            if !self.spilled && !self.room_for(chunk) {
                let why = format!(
                    "the stop-and-copy buffer reached its limit ({} MiB): the rest of the core was written while the threads were stopped",
                    self.limit >> 20
                );
                self.spill(why).map_err(output)?;
            }
            let mut data = Vec::with_capacity(chunk / page);
            if self.spilled {
                self.scratch.resize(self.chunk, 0);
                let mut scratch = std::mem::take(&mut self.scratch);
                copier.read_chunk(start + done, chunk, content, &mut scratch, &mut data)?;
                mark_zero_pages(&scratch, &mut data);
                write_spread(&mut self.sink, &scratch, &data).map_err(output)?;
                self.scratch = scratch;
                self.held += data.iter().filter(|&&d| d).count() as u64 * PAGE_SIZE;
            } else {
                let (region, offset) = (self.current, self.used);
                let buffer = &mut self.regions[region][offset..offset + chunk];
                copier.read_chunk(start + done, chunk, content, buffer, &mut data)?;
                mark_zero_pages(buffer, &mut data);
                let kept = pack(buffer, &data);
                self.used += kept;
                self.held += kept as u64;
                if kept == 0 {
                    self.pieces.push(Piece::Hole(chunk as u64));
                } else {
                    self.pieces.push(Piece::Pages {
                        region,
                        offset,
                        data,
                    });
                }
            }
            self.position += chunk as u64;
            copier.copied += chunk as u64;
            done += chunk as u64;
            on_chunk();
        }
        Ok(())
    }

    /// Copies `[start, start + len)` with `readers` threads, each reading
    /// the next piece not yet taken into an extent of the buffer of its own
    /// (the room left in the regions, cut in [`EXTENT`]s); returns how many
    /// bytes from `start` are now held (less than `len` when the regions
    /// are full: the rest is left to the one-thread copy, which takes a new
    /// region or spills). The pieces are put in file order whichever thread
    /// read them.
    fn copy_parallel(
        &mut self,
        copier: &Copier,
        start: u64,
        len: u64,
        content: Content,
    ) -> Result<u64> {
        let chunk = self.chunk as u64;
        let jobs = Jobs {
            start,
            end: start + len,
            chunk,
            count: len.div_ceil(chunk) as usize,
            next: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
            content,
        };
        let extent = EXTENT.max(self.chunk);
        let (current, used) = (self.current, self.used);
        let extents: Vec<Extent> = self
            .regions
            .iter_mut()
            .enumerate()
            .skip(current)
            .flat_map(|(region, bytes)| {
                let from = if region == current { used } else { 0 };
                bytes[from..]
                    .chunks_mut(extent)
                    .enumerate()
                    .map(move |(k, bytes)| Extent {
                        region,
                        base: from + k * extent,
                        bytes,
                        used: 0,
                    })
            })
            .filter(|e| e.bytes.len() >= self.chunk)
            .collect();
        let extents = Mutex::new(extents.into_iter());
        let mut copiers: Vec<Copier> = (0..self.readers).map(|_| copier.sibling()).collect();
        let results: Vec<Done> = std::thread::scope(|scope| {
            let mut mine = copiers.pop();
            let others: Vec<_> = copiers
                .iter_mut()
                .map(|c| {
                    let (jobs, extents) = (&jobs, &extents);
                    scope.spawn(move || read_pieces(c, jobs, extents))
                })
                .collect();
            let mut results = Vec::new();
            if let Some(c) = mine.as_mut() {
                results.push(read_pieces(c, &jobs, &extents));
            }
            for handle in others {
                results.push(handle.join().unwrap_or_else(|_| Done {
                    error: Some(LiveError::new(
                        ErrorKind::Internal,
                        "a copying thread panicked",
                    )),
                    ..Done::default()
                }));
            }
            results
        });
        let mut pieces = Vec::new();
        let mut last = None;
        for done in results {
            if let Some(error) = done.error {
                return Err(error);
            }
            pieces.extend(done.pieces);
            last = last.max(done.last);
        }
        // Filling goes on after the last extent taken (those before it
        // keep what they hold; the room after it is untouched).
        if let Some((region, _, end)) = last {
            self.current = region;
            self.used = end;
        }
        pieces.sort_by_key(|(job, _, _)| *job);
        let mut handed = 0u64;
        for (expected, (job, piece, kept)) in pieces.into_iter().enumerate() {
            if job != expected {
                // A gap (a thread found no room): the rest is copied again.
                break;
            }
            let piece_len = (jobs.end - (start + handed)).min(chunk);
            self.pieces.push(piece);
            self.held += kept;
            self.position += piece_len;
            handed += piece_len;
        }
        Ok(handed)
    }

    /// Writes the core from the buffer (the threads have been let go);
    /// returns the core's size and the bytes written.
    pub fn finish(mut self) -> io::Result<(u64, u64)> {
        self.flush_pieces()?;
        self.regions = Vec::new();
        self.sink.finish()
    }
}

/// Marks the pages of `buffer` that read as zeroes as holes.
fn mark_zero_pages(buffer: &[u8], data: &mut [bool]) {
    let page = PAGE_SIZE as usize;
    for (i, populated) in data.iter_mut().enumerate() {
        *populated = *populated && !crate::memory::is_zero(&buffer[i * page..(i + 1) * page]);
    }
}

/// Moves the pages of `buffer` marked in `data` to its start, in order;
/// returns the bytes they take.
fn pack(buffer: &mut [u8], data: &[bool]) -> usize {
    let page = PAGE_SIZE as usize;
    let mut to = 0;
    for (i, _) in data.iter().enumerate().filter(|(_, &d)| d) {
        if i * page != to {
            buffer.copy_within(i * page..(i + 1) * page, to);
        }
        to += page;
    }
    to
}

/// Writes `data.len()` pages of `buffer` at their places (holes where
/// `data` is false).
fn write_spread(sink: &mut CoreSink, buffer: &[u8], data: &[bool]) -> io::Result<()> {
    let page = PAGE_SIZE as usize;
    let mut i = 0;
    while i < data.len() {
        let kind = data[i];
        let end = (i..data.len())
            .find(|&j| data[j] != kind)
            .unwrap_or(data.len());
        if kind {
            sink.write(&buffer[i * page..end * page])?;
        } else {
            sink.skip(((end - i) * page) as u64)?;
        }
        i = end;
    }
    Ok(())
}

/// The pieces of one mapping copied by several threads.
struct Jobs {
    start: u64,
    end: u64,
    chunk: u64,
    count: usize,
    /// The next piece no thread has taken.
    next: AtomicUsize,
    /// Set when a thread found no room or failed: the others stop taking.
    stop: AtomicBool,
    content: Content,
}

/// Part of a region that one copying thread fills.
struct Extent<'a> {
    region: usize,
    /// Where `bytes` begins in the region.
    base: usize,
    bytes: &'a mut [u8],
    used: usize,
}

/// What one copying thread did: its pieces (piece number, piece, bytes
/// kept), where the last extent it took ends being used (region, the
/// extent's start, its used end), its error.
#[derive(Default)]
struct Done {
    pieces: Vec<(usize, Piece, u64)>,
    last: Option<(usize, usize, usize)>,
    error: Option<LiveError>,
}

/// One copying thread: takes pieces of `jobs` in order until none is left,
/// reading each into the extent it holds, taking the next one from
/// `extents` when it is full.
fn read_pieces<'a>(
    copier: &mut Copier,
    jobs: &Jobs,
    extents: &Mutex<std::vec::IntoIter<Extent<'a>>>,
) -> Done {
    let page = PAGE_SIZE as usize;
    let mut done = Done::default();
    let mut own: Option<Extent<'a>> = None;
    while !jobs.stop.load(Ordering::Relaxed) {
        let job = jobs.next.fetch_add(1, Ordering::Relaxed);
        if job >= jobs.count {
            break;
        }
        let addr = jobs.start + job as u64 * jobs.chunk;
        let len = (jobs.end - addr).min(jobs.chunk) as usize;
        if own.as_ref().is_none_or(|e| e.used + len > e.bytes.len()) {
            if let Some(e) = own.take() {
                done.last = done.last.max(Some((e.region, e.base, e.base + e.used)));
            }
            own = extents.lock().unwrap_or_else(|e| e.into_inner()).next();
            if own.is_none() {
                jobs.stop.store(true, Ordering::Relaxed);
                break;
            }
        }
        let Some(extent) = own.as_mut() else {
            break;
        };
        let buffer = &mut extent.bytes[extent.used..extent.used + len];
        let mut data = Vec::with_capacity(len / page);
        if let Err(e) = copier.read_chunk(addr, len, jobs.content, buffer, &mut data) {
            done.error = Some(e);
            jobs.stop.store(true, Ordering::Relaxed);
            break;
        }
        mark_zero_pages(buffer, &mut data);
        let kept = pack(buffer, &data);
        let piece = if kept == 0 {
            Piece::Hole(len as u64)
        } else {
            Piece::Pages {
                region: extent.region,
                offset: extent.base + extent.used,
                data,
            }
        };
        extent.used += kept;
        done.pieces.push((job, piece, kept as u64));
    }
    if let Some(e) = own {
        done.last = done.last.max(Some((e.region, e.base, e.base + e.used)));
    }
    done
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packing_keeps_the_pages_with_content_in_order() {
        let page = PAGE_SIZE as usize;
        let mut buffer = vec![0u8; 4 * page];
        for (i, b) in buffer.chunks_mut(page).enumerate() {
            b.fill(i as u8 + 1);
        }
        let kept = pack(&mut buffer, &[false, true, false, true]);
        assert_eq!(kept, 2 * page);
        assert!(buffer[..page].iter().all(|&b| b == 2));
        assert!(buffer[page..2 * page].iter().all(|&b| b == 4));
    }

    /// 8 MiB of this process's own memory, each page saying its number,
    /// every seventh page zeroes (a hole in the core).
    fn pattern() -> Vec<u8> {
        let page = PAGE_SIZE as usize;
        let mut memory = vec![0u8; 8 << 20];
        for (i, p) in memory.chunks_mut(page).enumerate() {
            if i % 7 != 3 {
                p.fill((i % 251) as u8 + 1);
                p[..8].copy_from_slice(&(i as u64).to_le_bytes());
            }
        }
        memory
    }

    /// What a stash of `readers` threads over `reserved` writes for
    /// `memory` (read from this process), after a 4-byte head; and why it
    /// spilled, if it did.
    fn stashed(memory: &[u8], reserved: Reserved, readers: usize) -> (Vec<u8>, Option<String>) {
        use std::io::{Read, Seek};
        let chunk = 64 << 10;
        let mut file = tempfile();
        let sink = CoreSink::new(file.try_clone().unwrap().into(), None).unwrap();
        let mut stash = Stash::new(sink, reserved, chunk).with_readers(readers);
        let mut copier = Copier::new(std::process::id() as i32, chunk);
        stash.write(b"HEAD").unwrap();
        // The head is not page-aligned in a real core either: the pages
        // follow it at their offsets.
        stash
            .copy(&mut copier, memory.as_ptr() as u64, memory.len() as u64, Content::Anonymous, &mut || {})
            .unwrap();
        let spilled = stash.spill_reason.clone();
        let (size, _) = stash.finish().unwrap();
        assert_eq!(size, 4 + memory.len() as u64);
        let mut out = Vec::new();
        file.rewind().unwrap();
        file.read_to_end(&mut out).unwrap();
        (out, spilled)
    }

    fn tempfile() -> std::fs::File {
        let path = std::env::temp_dir().join(format!(
            "livecore-stash-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .unwrap();
        std::fs::remove_file(&path).unwrap();
        file
    }

    #[test]
    fn several_threads_hold_the_same_core_as_one_and_spill_in_order_when_full() {
        let mut memory = pattern();
        // Page-aligned within the vector (the copier reads whole pages).
        let page = PAGE_SIZE as usize;
        let skip = (memory.as_ptr() as usize).next_multiple_of(page) - memory.as_ptr() as usize;
        let aligned = &mut memory[skip..];
        let len = (aligned.len() / page - 1) * page;
        let memory = &aligned[..len];
        let mut expected = b"HEAD".to_vec();
        expected.extend_from_slice(memory);
        let mib = 1 << 20;
        // Room for everything (regions taken as needed, within the limit).
        for readers in [1, 2, 3] {
            let (out, spilled) = stashed(memory, Reserved::with_regions(2, mib, 64 << 20), readers);
            assert!(spilled.is_none(), "{readers} readers: {spilled:?}");
            assert!(out == expected, "{readers} readers: the core differs");
        }
        // Room for 5 MiB of the 7: the threads fill it, the rest is written
        // during the stop, in order.
        for readers in [1, 2, 3] {
            let (out, spilled) = stashed(memory, Reserved::with_regions(2, mib, 5 << 20), readers);
            assert!(
                spilled.as_deref().is_some_and(|s| s.contains("reached its limit")),
                "{readers} readers: {spilled:?}"
            );
            assert!(out == expected, "{readers} readers, buffer full: the core differs");
        }
    }
}
