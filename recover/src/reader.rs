//! Reading a core file at offsets: a plain file is read in place (only the
//! bytes asked for), a zstd-compressed one (as the handler saves it) through
//! a forward-only decoder that skips what is not asked for. Reads past the
//! end are short, never errors: a truncated core is a normal input.

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::Path;

/// The zstd frame magic (RFC 8878), little-endian on disk.
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xB5, 0x2F, 0xFD];

/// Bytes of a core at offsets. Offsets must be asked for in increasing
/// order for forward-only sources (see [`CoreRead::forward_only`]).
pub trait CoreRead {
    /// Fills as much of `buf` as the core holds from `offset` on and returns
    /// how many bytes that is (fewer than asked at the end of the core).
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<usize>;
    /// True when an offset before the last one read can no longer be read.
    fn forward_only(&self) -> bool {
        false
    }
    /// What the source is, for messages.
    fn describe(&self) -> String;
    /// Why the core's bytes ended early, when they did for a reason other
    /// than the end of the file (a broken compressed stream).
    fn trouble(&self) -> Option<String> {
        None
    }
}

impl CoreRead for &[u8] {
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let Ok(start) = usize::try_from(offset) else {
            return Ok(0);
        };
        if start >= self.len() {
            return Ok(0);
        }
        let n = buf.len().min(self.len() - start);
        buf[..n].copy_from_slice(&self[start..start + n]);
        Ok(n)
    }

    fn describe(&self) -> String {
        format!("{} bytes in memory", self.len())
    }
}

/// An uncompressed core file, read with `pread`.
pub struct PlainCore {
    file: File,
}

impl CoreRead for PlainCore {
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let mut done = 0;
        while done < buf.len() {
            let Some(at) = offset.checked_add(done as u64) else {
                break;
            };
            match self.file.read_at(&mut buf[done..], at) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(done)
    }

    fn describe(&self) -> String {
        "an uncompressed core".into()
    }
}

/// A zstd-compressed core, decoded as a stream: skipping forward costs the
/// decoding, going back is impossible.
pub struct ZstdCore {
    decoder: zstd::stream::read::Decoder<'static, io::BufReader<File>>,
    position: u64,
    ended: bool,
    trouble: Option<String>,
}

impl ZstdCore {
    fn skip_to(&mut self, offset: u64) -> io::Result<()> {
        let mut scratch = vec![0u8; 1 << 16];
        while self.position < offset && !self.ended {
            let want = (offset - self.position).min(scratch.len() as u64) as usize;
            let n = self.read_some(&mut scratch[..want])?;
            if n == 0 {
                self.ended = true;
            }
        }
        Ok(())
    }

    fn read_some(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.decoder.read(buf) {
                Ok(n) => {
                    self.position += n as u64;
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // A compressed core cut by a full disk ends in a broken
                // frame: what was decoded before is still good, so the
                // core simply ends there (and the reason is kept).
                Err(e) => {
                    self.ended = true;
                    self.trouble = Some(format!(
                        "the compressed core stops decoding after {} bytes: {e}",
                        self.position
                    ));
                    return Ok(0);
                }
            }
        }
    }
}

impl CoreRead for ZstdCore {
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        if offset < self.position {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "a compressed core is read forward only: byte {offset} asked after byte {}",
                    self.position
                ),
            ));
        }
        self.skip_to(offset)?;
        if self.position < offset {
            return Ok(0);
        }
        let mut done = 0;
        while done < buf.len() && !self.ended {
            let n = self.read_some(&mut buf[done..])?;
            if n == 0 {
                self.ended = true;
            }
            done += n;
        }
        Ok(done)
    }

    fn forward_only(&self) -> bool {
        true
    }

    fn describe(&self) -> String {
        "a zstd-compressed core".into()
    }

    fn trouble(&self) -> Option<String> {
        self.trouble.clone()
    }
}

/// Opens a core file, compressed or not (told by its first bytes, not its
/// name).
pub fn open_core(path: &Path) -> io::Result<Box<dyn CoreRead>> {
    // Only a regular file is opened (a link the caller named is followed):
    // a FIFO would block, a device's open could do anything.
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::OpenOptionsExt;
    let handle = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH)
        .open(path)?;
    if !handle.metadata()?.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    let file = File::open(format!("/proc/self/fd/{}", handle.as_raw_fd()))?;
    core_of_file(file)
}

/// A core already open (by its caller's own safe means: the handler's
/// descriptor of the core it just wrote, a tool's descriptor opened without
/// following links), compressed or not.
pub fn core_of_file(file: File) -> io::Result<Box<dyn CoreRead>> {
    let mut magic = [0u8; 4];
    let n = file.read_at(&mut magic, 0)?;
    if n == 4 && magic == ZSTD_MAGIC {
        let decoder = zstd::stream::read::Decoder::new(file)?;
        Ok(Box::new(ZstdCore {
            decoder,
            position: 0,
            ended: false,
            trouble: None,
        }))
    } else {
        Ok(Box::new(PlainCore { file }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_read_short_at_the_end() {
        let data: &[u8] = &[1, 2, 3, 4];
        let mut reader = data;
        let mut buf = [0u8; 8];
        assert_eq!(reader.read_at(2, &mut buf).unwrap(), 2);
        assert_eq!(&buf[..2], &[3, 4]);
        assert_eq!(reader.read_at(u64::MAX, &mut buf).unwrap(), 0);
    }

    #[test]
    fn zstd_cores_are_read_forward_and_cut_frames_end_short() {
        let dir = std::env::temp_dir().join(format!("lcd-recover-reader-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // Incompressible (xorshift), so that the frame has many blocks.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let data: Vec<u8> = (0..200_000u32)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        let compressed = zstd::encode_all(&data[..], 3).unwrap();
        let path = dir.join("core.zst");
        std::fs::write(&path, &compressed).unwrap();
        let mut core = open_core(&path).unwrap();
        assert!(core.forward_only());
        let mut buf = [0u8; 16];
        assert_eq!(core.read_at(100_000, &mut buf).unwrap(), 16);
        assert_eq!(&buf[..], &data[100_000..100_016]);
        assert!(core.read_at(10, &mut buf).is_err());
        assert_eq!(core.read_at(199_990, &mut buf).unwrap(), 10);
        // Cut in the middle: the decoded prefix is still readable.
        std::fs::write(&path, &compressed[..compressed.len() / 2]).unwrap();
        let mut core = open_core(&path).unwrap();
        assert_eq!(core.read_at(0, &mut buf).unwrap(), 16);
        let mut big = vec![0u8; 300_000];
        let n = core.read_at(16, &mut big).unwrap();
        assert!(n < 199_984, "{n}");
        assert_eq!(&big[..n], &data[16..16 + n]);
        assert!(core.trouble().is_some());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
