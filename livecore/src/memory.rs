//! Copying a process's memory into the core: `process_vm_readv` in pieces
//! of the copy buffer's size, pages neither in memory nor in swap skipped
//! without being read (`/proc/PID/pagemap`) where they can only be zeroes,
//! pages that read as zeroes or cannot be read (the kernel would skip them
//! too) written as holes.

use crate::procfs::PageMap;
use crate::regions::{Content, PAGE_SIZE};
use crate::report::{ErrorKind, LiveError, Result};
use crate::sink::CoreSink;
use crate::sys::{self, Pid};

/// The copy buffer and the page map of the process being read.
pub struct Copier {
    pid: Pid,
    buffer: Vec<u8>,
    populated: Vec<bool>,
    pagemap: Option<PageMap>,
    /// Memory bytes handled (holes included).
    pub copied: u64,
}

/// Whether a page is all zeroes.
fn is_zero(page: &[u8]) -> bool {
    let mut words = page.chunks_exact(8);
    words
        .by_ref()
        .all(|w| u64::from_ne_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]) == 0)
        && words.remainder().iter().all(|&b| b == 0)
}

impl Copier {
    pub fn new(pid: Pid, buffer_size: usize) -> Copier {
        let pages = (buffer_size as u64 / PAGE_SIZE).max(1) as usize;
        Copier {
            pid,
            buffer: vec![0u8; pages * PAGE_SIZE as usize],
            populated: Vec::with_capacity(pages),
            // Without a page map (an old kernel, a refusal) every page is
            // read.
            pagemap: PageMap::open(pid).ok(),
            copied: 0,
        }
    }

    /// Reads `[start, start + len)` (page-aligned) into the buffer's first
    /// `len` bytes; `populated[i]` says whether page `i` holds data.
    fn read_chunk(&mut self, start: u64, len: usize, content: Content) -> Result<()> {
        let pages = len / PAGE_SIZE as usize;
        match (&mut self.pagemap, content) {
            (Some(pagemap), Content::Anonymous) => {
                if pagemap
                    .populated(start, pages, PAGE_SIZE, &mut self.populated)
                    .is_err()
                {
                    self.populated.clear();
                    self.populated.resize(pages, true);
                }
            }
            _ => {
                self.populated.clear();
                self.populated.resize(pages, true);
            }
        }
        let page = PAGE_SIZE as usize;
        let mut i = 0;
        while i < pages {
            if !self.populated[i] {
                i += 1;
                continue;
            }
            let mut end = i;
            while end < pages && self.populated[end] {
                end += 1;
            }
            // Read the run [i, end), page by page past any that fails.
            let mut at = i;
            while at < end {
                let addr = start + (at * page) as u64;
                let n =
                    match sys::read_memory(self.pid, addr, &mut self.buffer[at * page..end * page])
                    {
                        Ok(n) => n,
                        Err(e) if e.raw_os_error() == Some(libc::ESRCH) => {
                            return Err(crate::freeze::exited_error(self.pid));
                        }
                        Err(e) if e.raw_os_error() == Some(libc::EPERM) => {
                            return Err(LiveError::new(
                                ErrorKind::PermissionDenied,
                                format!("reading the memory of process {}: {e}", self.pid),
                            ));
                        }
                        // EFAULT, EIO, ENOMEM: that page cannot be read.
                        Err(_) => 0,
                    };
                let full = n / page;
                at += full;
                if at < end {
                    // The page at `at` failed: a hole.
                    self.populated[at] = false;
                    at += 1;
                }
            }
            i = end;
        }
        Ok(())
    }

    /// Writes `[start, start + len)` of the process's memory to `sink`.
    /// `on_chunk` is called after each piece.
    pub fn copy(
        &mut self,
        start: u64,
        len: u64,
        content: Content,
        sink: &mut CoreSink,
        on_chunk: &mut dyn FnMut(),
    ) -> Result<()> {
        let page = PAGE_SIZE as usize;
        let mut done = 0u64;
        while done < len {
            let chunk = (len - done).min(self.buffer.len() as u64) as usize;
            self.read_chunk(start + done, chunk, content)?;
            // Runs of data pages are written at once, runs of holes skipped.
            let pages = chunk / page;
            for (i, populated) in self.populated.iter_mut().enumerate().take(pages) {
                *populated = *populated && !is_zero(&self.buffer[i * page..(i + 1) * page]);
            }
            let mut i = 0;
            while i < pages {
                let data = self.populated[i];
                let end = (i..pages)
                    .find(|&j| self.populated[j] != data)
                    .unwrap_or(pages);
                let result = if data {
                    sink.write(&self.buffer[i * page..end * page])
                } else {
                    sink.skip(((end - i) * page) as u64)
                };
                result.map_err(|e| {
                    LiveError::new(ErrorKind::Output, format!("writing the core: {e}"))
                })?;
                i = end;
            }
            done += chunk as u64;
            self.copied += chunk as u64;
            on_chunk();
        }
        Ok(())
    }

    /// Reads `len` bytes at `addr` (for small reads: ELF magic, gadgets).
    pub fn peek(&self, addr: u64, len: usize) -> Option<Vec<u8>> {
        let mut buf = vec![0u8; len];
        match sys::read_memory(self.pid, addr, &mut buf) {
            Ok(n) if n == len => Some(buf),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_pages_are_told_apart() {
        let mut page = vec![0u8; 4096];
        assert!(is_zero(&page));
        page[4095] = 1;
        assert!(!is_zero(&page));
        page[4095] = 0;
        page[3] = 9;
        assert!(!is_zero(&page));
    }
}
