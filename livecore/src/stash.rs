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
use std::io;

/// Each region of the buffer is this large (or one copy piece, if larger).
const REGION: usize = 64 << 20;
/// Margin added to the estimate of the memory to buffer (what the process
/// may map between the estimate and the stop, the notes).
const ESTIMATE_MARGIN: u64 = 16 << 20;

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
    regions: Vec<Vec<u8>>,
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

/// One region, its pages faulted in now (and asked to be huge pages), so
/// that copying into it during the stop costs no page fault.
fn region(size: usize) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    bytes
        .try_reserve_exact(size)
        .map_err(|e| io::Error::new(io::ErrorKind::OutOfMemory, e.to_string()))?;
    bytes.resize(size, 0);
    crate::sys::advise_huge_pages(&mut bytes);
    // A store the compiler cannot leave out (the memory is known zero):
    // the page is faulted in here, not during the stop.
    for page in bytes.chunks_mut(PAGE_SIZE as usize) {
        page[0] = 1;
    }
    Ok(bytes)
}

/// The regions of a buffer, allocated and faulted in before the stop.
pub struct Reserved {
    regions: Vec<Vec<u8>>,
    region_size: usize,
    limit: u64,
}

impl Reserved {
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
        }
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
}
