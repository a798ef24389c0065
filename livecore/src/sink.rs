//! Where the core's bytes go, in file order: a regular file written sparse
//! (zero pages are holes, never written), a pipe or socket written as a
//! stream (zero pages as zeroes), or either through zstd.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::FileExt;

/// A writer that counts what passes through it.
struct Counting<W> {
    inner: W,
    count: u64,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.count += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

enum Kind {
    /// Written at its offsets from `base`; holes are skipped.
    Sparse {
        file: File,
        base: u64,
    },
    Stream(Counting<BufWriter<File>>),
    Zstd(zstd::stream::Encoder<'static, Counting<BufWriter<File>>>),
}

/// The core being written.
pub struct CoreSink {
    kind: Kind,
    /// Logical position (the core's size so far).
    position: u64,
    /// Bytes written to a sparse file (holes excluded).
    data: u64,
}

/// Zeroes written for holes in a stream.
static ZEROES: [u8; 64 * 1024] = [0; 64 * 1024];

impl CoreSink {
    /// A sink on `fd`: sparse when it is a regular file and not compressed
    /// (written from its current position, the file cut there first).
    pub fn new(fd: OwnedFd, zstd_level: Option<i32>) -> io::Result<CoreSink> {
        let st = crate::sys::fstat(fd.as_raw_fd())?;
        let regular = st.st_mode & libc::S_IFMT == libc::S_IFREG;
        let mut file = File::from(fd);
        let kind = match zstd_level {
            Some(level) => {
                let writer = Counting {
                    inner: BufWriter::with_capacity(1 << 20, file),
                    count: 0,
                };
                Kind::Zstd(zstd::stream::Encoder::new(writer, level)?)
            }
            None if regular => {
                use std::io::Seek;
                let base = file.stream_position()?;
                // Only when there is something to cut: ext4 takes a file cut
                // to nothing as one being replaced, and writes it all out when
                // it is closed (auto_da_alloc), which a core need not wait for.
                if st.st_size as u64 > base {
                    file.set_len(base)?;
                }
                Kind::Sparse { file, base }
            }
            None => Kind::Stream(Counting {
                inner: BufWriter::with_capacity(1 << 20, file),
                count: 0,
            }),
        };
        Ok(CoreSink {
            kind,
            position: 0,
            data: 0,
        })
    }

    pub fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        match &mut self.kind {
            Kind::Sparse { file, base } => {
                file.write_all_at(bytes, *base + self.position)?;
                self.data += bytes.len() as u64;
            }
            Kind::Stream(w) => w.write_all(bytes)?,
            Kind::Zstd(w) => w.write_all(bytes)?,
        }
        self.position += bytes.len() as u64;
        Ok(())
    }

    /// `len` bytes of zeroes: a hole.
    pub fn skip(&mut self, len: u64) -> io::Result<()> {
        if let Kind::Sparse { .. } = self.kind {
            self.position += len;
            return Ok(());
        }
        let mut left = len;
        while left > 0 {
            let n = left.min(ZEROES.len() as u64) as usize;
            match &mut self.kind {
                Kind::Stream(w) => w.write_all(&ZEROES[..n])?,
                Kind::Zstd(w) => w.write_all(&ZEROES[..n])?,
                Kind::Sparse { .. } => unreachable!(),
            }
            left -= n as u64;
        }
        self.position += len;
        Ok(())
    }

    /// Completes the core: returns its size and the bytes written (data of
    /// a sparse file, all of a stream, compressed bytes with zstd).
    pub fn finish(self) -> io::Result<(u64, u64)> {
        match self.kind {
            Kind::Sparse { file, base } => {
                // Trailing holes still count in the size.
                file.set_len(base + self.position)?;
                Ok((self.position, self.data))
            }
            Kind::Stream(mut w) => {
                w.flush()?;
                Ok((self.position, w.count))
            }
            Kind::Zstd(w) => {
                let mut inner = w.finish()?;
                inner.flush()?;
                Ok((self.position, inner.count))
            }
        }
    }
}
