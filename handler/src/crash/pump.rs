//! Reading the core from the kernel's pipe once, in fixed-size pieces, and
//! handing each piece to the handler's core file and to the chained
//! command: the stream is duplicated, never read twice, and memory stays
//! constant whatever the core's size.

use crate::crash::chain::Chain;
use crate::crash::corefile::CoreWriter;
use std::io::{self, Read};

/// Size of the one buffer (a multiple of the hole-detection block): the
/// kernel's default pipe size. The dumping process waits on a full pipe
/// while a piece is written out, so a piece larger than the pipe keeps the
/// dump and the copy from overlapping; `bench/run` measured 1 MiB pieces at
/// up to 2.9x the crash-to-reap time of `cat`, and 64 KiB pieces at about
/// that of `cat` (BENCHMARKS.md). On the coredump socket the kernel sends
/// one 4 KiB page per message and its socket buffer holds about 200 KiB, so
/// the same reasoning holds there: a plain C reader of the socket
/// (`bench/socket-cat.c`) took as long with 64 KiB reads as with 1 MiB
/// ones, and the service reads the socket as fast as it does.
pub const PIECE: usize = 1 << 16;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PumpOutcome {
    /// Bytes read from the kernel.
    pub bytes_read: u64,
    /// Whether the whole core was read (end of stream reached).
    pub reached_end: bool,
    pub error: Option<String>,
}

/// Reads `input` to its end, or until neither sink wants more data.
pub fn pump(
    input: &mut impl Read,
    mut core: Option<&mut CoreWriter>,
    mut chain: Option<&mut Chain>,
) -> PumpOutcome {
    let mut buffer = vec![0u8; PIECE];
    let mut outcome = PumpOutcome::default();
    loop {
        let core_wants = core.as_ref().is_some_and(|c| c.wants_more());
        let chain_wants = chain.as_ref().is_some_and(|c| c.wants_more());
        if !core_wants && !chain_wants {
            // Stopping early lets the kernel end the dump sooner.
            return outcome;
        }
        let (filled, end, error) = fill(input, &mut buffer);
        outcome.bytes_read += filled as u64;
        let piece = &buffer[..filled];
        if let Some(chain) = chain.as_deref_mut() {
            chain.offer(piece);
        }
        if let Some(core) = core.as_deref_mut() {
            core.write(piece);
        }
        if let Some(err) = error {
            outcome.error = Some(format!(
                "reading the core from the kernel failed after {} bytes: {err}",
                outcome.bytes_read
            ));
            return outcome;
        }
        if end {
            outcome.reached_end = true;
            return outcome;
        }
    }
}

/// Fills `buffer` as far as the stream allows, so pieces start at fixed
/// offsets of the core. Returns the bytes read, whether the stream ended,
/// and the read error that stopped it, if any.
fn fill(input: &mut impl Read, buffer: &mut [u8]) -> (usize, bool, Option<io::Error>) {
    let mut filled = 0;
    while filled < buffer.len() {
        match input.read(&mut buffer[filled..]) {
            Ok(0) => return (filled, true, None),
            Ok(read) => filled += read,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return (filled, false, Some(err)),
        }
    }
    (filled, false, None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::config::ChainConfig;
    use crate::base::safefile::NewFile;
    use crate::crash::context::CrashContext;
    use crate::crash::corefile::CoreSettings;
    use crate::store::space::SpacePolicy;
    use std::fs::File;
    use std::os::fd::AsFd;
    use std::time::Duration;

    /// A reader that returns small, uneven pieces, like a pipe.
    struct Trickle<'a>(&'a [u8], usize);

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.1 = self.1 % 7 + 1;
            let n = buf.len().min(self.0.len()).min(self.1 * 9973);
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn both_copies_are_whole_and_holes_are_found_in_uneven_reads() {
        let dir = std::env::temp_dir().join(format!("handler-pump-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let dirfd = File::open(&dir).unwrap();
        let mut core_data = vec![0u8; 9 << 20];
        core_data[..4096].fill(5);
        core_data[(5 << 20) + 3..(5 << 20) + 10].fill(9);
        let settings = CoreSettings {
            zstd_level: None,
            max_size: None,
            space: SpacePolicy {
                max_dir_size: u64::MAX,
                min_free: 0,
            },
            owner_uid: None,
        };
        let mut core =
            CoreWriter::new(NewFile::create_in(dirfd.as_fd()).unwrap(), &settings).unwrap();
        let chain_out = dir.join("chained");
        let mut chain = Chain::start(
            &ChainConfig {
                command: vec![
                    "/bin/sh".into(),
                    "-c".into(),
                    format!("cat > {}", chain_out.display()),
                ],
                stall_timeout: Duration::from_secs(5),
                exit_timeout: Duration::from_secs(5),
            },
            &CrashContext::default(),
        )
        .unwrap();
        let outcome = pump(
            &mut Trickle(&core_data, 0),
            Some(&mut core),
            Some(&mut chain),
        );
        assert_eq!(
            outcome,
            PumpOutcome {
                bytes_read: core_data.len() as u64,
                reached_end: true,
                error: None
            }
        );
        let chained = chain.finish(Some(outcome.bytes_read));
        assert!(chained.complete, "{chained:?}");
        let (saved, _) = core.finish(None, |n| format!("core.p.{n}"));
        assert_eq!(saved.stored_bytes, 2 * 4096);
        assert_eq!(std::fs::read(dir.join("core.p.0")).unwrap(), core_data);
        assert_eq!(std::fs::read(&chain_out).unwrap(), core_data);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn reading_stops_when_nothing_wants_more() {
        let data = vec![1u8; 5 << 20];
        let outcome = pump(&mut &data[..], None, None);
        assert_eq!(outcome.bytes_read, 0);
        assert!(!outcome.reached_end);
    }
}
