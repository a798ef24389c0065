//! Copying a process's memory into the core: read through
//! `/proc/PID/mem` in pieces of the copy buffer's size (into the buffers of
//! the writing thread, `pipeline`), pages neither in memory nor in swap
//! skipped without being read (`/proc/PID/pagemap`) where they can only be
//! zeroes, pages that read as zeroes or cannot be read (the kernel would
//! skip them too) written as holes.
//!
//! Not `process_vm_readv`: it pins the pages it reads, and since Linux 5.19
//! pinning an anonymous page shared copy-on-write makes the kernel unshare
//! it first, copying it into the process read. Read that way, the
//! copy-on-write copy would get a private copy of every page (as much
//! memory again as the process, and slower), and a process that shares
//! pages with children it forked would get its own. `/proc/PID/mem` reads
//! without pinning, as gdb does and as the kernel's own core dump does; a
//! piece of anonymous memory whose present pages the page map says are
//! this process's alone is read with `process_vm_readv` (a quarter faster:
//! one copy, where `/proc/PID/mem` copies twice).
//!
//! `/proc/PID/mem` and `/proc/PID/pagemap` are opened once, when the
//! [`Copier`] is made (after the identity checks, the threads stopped), and
//! every other reader of the same copy shares those open files
//! ([`Copier::sibling`]): an open `mem` or `pagemap` file stays bound to the
//! address space it was opened on (once that is gone, it reads nothing), so
//! no read through it can be of another process, whatever its pid names
//! later. `process_vm_readv` names the process by its pid on every call
//! (there is no descriptor form); what it read is the process's because
//! the dump checks the pidfd after the copy (`identity`, `work`).

use crate::pipeline::Writer;
use crate::procfs::PageMap;
use crate::regions::{Content, PAGE_SIZE};
use crate::report::{ErrorKind, LiveError, Result};
use crate::sys::{self, Pid};
use std::fs::File;
use std::os::unix::fs::FileExt;

/// Reads the memory of one process.
pub struct Copier {
    pid: Pid,
    /// `/proc/PID/mem`.
    mem: Option<File>,
    chunk: usize,
    pagemap: Option<PageMap>,
    /// Memory bytes handled (holes included).
    pub copied: u64,
}

/// Whether a page is all zeroes.
pub(crate) fn is_zero(page: &[u8]) -> bool {
    let mut words = page.chunks_exact(8);
    words
        .by_ref()
        .all(|w| u64::from_ne_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]) == 0)
        && words.remainder().iter().all(|&b| b == 0)
}

impl Copier {
    /// Reads `pid` in pieces of `buffer_size` bytes (the writer's buffer
    /// size).
    pub fn new(pid: Pid, buffer_size: usize) -> Copier {
        let pages = (buffer_size as u64 / PAGE_SIZE).max(1) as usize;
        Copier {
            pid,
            mem: File::open(format!("/proc/{pid}/mem")).ok(),
            chunk: pages * PAGE_SIZE as usize,
            // Without a page map (an old kernel, a refusal) every page is
            // read.
            pagemap: PageMap::open(pid).ok(),
            copied: 0,
        }
    }

    /// Another reader of the same process, for a thread of its own: the
    /// same open files (bound to the address space, not to the pid; a
    /// reader that cannot have them reads with `process_vm_readv`).
    pub fn sibling(&self) -> Copier {
        Copier {
            pid: self.pid,
            mem: self.mem.as_ref().and_then(|f| f.try_clone().ok()),
            chunk: self.chunk,
            pagemap: self.pagemap.as_ref().and_then(|p| p.try_clone().ok()),
            copied: 0,
        }
    }

    /// Whether the address space this reads is still there: a read of
    /// `/proc/PID/mem` returns nothing once it is gone (its process has
    /// exited, or is exiting), and, while it is there, a byte or an error
    /// (EIO, where `addr` cannot be read). Without that file: whether the
    /// process is alive.
    pub fn address_space_alive(&self, addr: u64) -> bool {
        let Some(mem) = &self.mem else {
            return crate::procfs::alive(self.pid);
        };
        let mut byte = [0u8; 1];
        loop {
            match mem.read_at(&mut byte, addr) {
                Ok(0) => return false,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                _ => return true,
            }
        }
    }

    /// Reads `[start, start + len)` (page-aligned) into the first `len`
    /// bytes of `buffer`; `populated[i]` says whether page `i` holds data.
    pub(crate) fn read_chunk(
        &mut self,
        start: u64,
        len: usize,
        content: Content,
        buffer: &mut [u8],
        populated: &mut Vec<bool>,
    ) -> Result<()> {
        let pages = len / PAGE_SIZE as usize;
        let mut exclusive = false;
        match (&mut self.pagemap, content) {
            (Some(pagemap), Content::Anonymous) => {
                match pagemap.populated(start, pages, PAGE_SIZE, populated) {
                    Ok(alone) => exclusive = alone,
                    Err(_) => {
                        populated.clear();
                        populated.resize(pages, true);
                    }
                }
            }
            _ => {
                populated.clear();
                populated.resize(pages, true);
            }
        }
        let page = PAGE_SIZE as usize;
        let mut i = 0;
        while i < pages {
            if !populated[i] {
                i += 1;
                continue;
            }
            let mut end = i;
            while end < pages && populated[end] {
                end += 1;
            }
            // Read the run [i, end), page by page past any that fails.
            let mut at = i;
            while at < end {
                let addr = start + (at * page) as u64;
                let part = &mut buffer[at * page..end * page];
                let n = if exclusive {
                    self.read_pinning(addr, part)?
                } else {
                    self.read(addr, part)?
                };
                let full = n / page;
                at += full;
                if at < end {
                    // The page at `at` failed: a hole.
                    populated[at] = false;
                    at += 1;
                }
            }
            i = end;
        }
        Ok(())
    }

    /// Reads as much of `buf` as can be read at `addr`, stopping at the first
    /// page that cannot be (a hole); an error only when the process is gone
    /// or may not be read.
    pub fn read(&self, addr: u64, buf: &mut [u8]) -> Result<usize> {
        let Some(mem) = &self.mem else {
            return self.read_pinning(addr, buf);
        };
        let mut done = 0;
        while done < buf.len() {
            match mem.read_at(&mut buf[done..], addr + done as u64) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) if e.raw_os_error() == Some(libc::EPERM) || e.raw_os_error() == Some(libc::EACCES) => {
                    return Err(LiveError::new(
                        ErrorKind::PermissionDenied,
                        format!("reading the memory of process {}: {e}", self.pid),
                    ));
                }
                // EIO, EFAULT: the next page cannot be read.
                Err(_) => break,
            }
        }
        // Nothing at all: an unreadable page, or an address space that is
        // gone (the read then returns nothing).
        if done == 0 && !crate::procfs::alive(self.pid) {
            return Err(crate::freeze::exited_error(self.pid));
        }
        Ok(done)
    }

    /// [`Copier::read`] through `process_vm_readv`: for pages this process
    /// alone maps (or when `/proc/PID/mem` cannot be opened).
    fn read_pinning(&self, addr: u64, buf: &mut [u8]) -> Result<usize> {
        match sys::read_memory(self.pid, addr, buf) {
            Ok(n) => Ok(n),
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => Err(crate::freeze::exited_error(self.pid)),
            Err(e) if e.raw_os_error() == Some(libc::EPERM) => Err(LiveError::new(
                ErrorKind::PermissionDenied,
                format!("reading the memory of process {}: {e}", self.pid),
            )),
            // EFAULT, EIO, ENOMEM: that page cannot be read.
            Err(_) => Ok(0),
        }
    }

    /// Hands `[start, start + len)` of the process's memory to `writer`
    /// (read into its buffers). `on_chunk` is called after each piece.
    pub fn copy(
        &mut self,
        start: u64,
        len: u64,
        content: Content,
        writer: &mut Writer,
        on_chunk: &mut dyn FnMut(),
    ) -> Result<()> {
        let page = PAGE_SIZE as usize;
        let output =
            |e: std::io::Error| LiveError::new(ErrorKind::Output, format!("writing the core: {e}"));
        let mut done = 0u64;
        while done < len {
            let chunk = (len - done).min(self.chunk as u64) as usize;
            let mut buffer = writer.buffer().map_err(output)?;
            let mut data = Vec::with_capacity(chunk / page);
            self.read_chunk(start + done, chunk, content, &mut buffer, &mut data)?;
            // Pages that read as zeroes are holes too.
            for (i, populated) in data.iter_mut().enumerate() {
                *populated = *populated && !is_zero(&buffer[i * page..(i + 1) * page]);
            }
            writer.write_pages(buffer, data, page).map_err(output)?;
            done += chunk as u64;
            self.copied += chunk as u64;
            on_chunk();
        }
        Ok(())
    }

    /// Reads `len` bytes at `addr` (for small reads: an ELF magic).
    pub fn peek(&self, addr: u64, len: usize) -> Option<Vec<u8>> {
        let mut buf = vec![0u8; len];
        match self.read(addr, &mut buf) {
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
