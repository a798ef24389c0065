//! A crash's core, read back with the caller's rights: opened without
//! following links, decompressed when the handler stored it with zstd, and
//! written out with its zero blocks left as holes (a core is mostly
//! zeroes). `dump` is this to a file or standard output; `debug` uses it
//! for a private temporary file.

use super::show;
use super::DumpArgs;
use crate::store::crashes::Crash;
use anyhow::{anyhow, bail, Context, Result};
use std::fs::File;
use std::io::{self, IsTerminal, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::process::ExitCode;

const BLOCK: usize = 64 * 1024;
const HOLE: usize = 4096;

/// Opens the crash's core for reading (with the caller's rights).
pub fn open(crash: &Crash) -> Result<File> {
    let path = crash.core_path().ok_or_else(|| {
        anyhow!(
            "the crash of PID {} has no core: {}",
            crash.pid().map(|p| p.to_string()).unwrap_or("?".into()),
            crash
                .core()
                .not_saved_reason
                .map(crate::base::human::text)
                .unwrap_or("no reason recorded".into())
        )
    })?;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(&path)
        .map_err(|err| match err.kind() {
            io::ErrorKind::NotFound => anyhow!(
                "the core {} is gone (deleted to make room, or by hand)",
                path.display()
            ),
            io::ErrorKind::PermissionDenied => anyhow!(
                "permission denied reading the core {} (only root and the crashing user, when \
                 the process was dumpable, may)",
                path.display()
            ),
            _ => anyhow!("cannot open the core {}: {err}", path.display()),
        })?;
    if !file.metadata()?.is_file() {
        bail!("the core {} is not a regular file", path.display());
    }
    Ok(file)
}

/// The core's bytes, decompressed when it is stored compressed.
pub fn reader(crash: &Crash, file: File) -> Result<Box<dyn Read>> {
    Ok(match crash.compression() {
        "none" => Box::new(file),
        "zstd" => Box::new(zstd::stream::read::Decoder::new(file).context("starting zstd")?),
        other => bail!("the core is stored with {other:?}, which this version cannot read"),
    })
}

/// Copies `from` to the regular file `to`, leaving all-zero blocks as
/// holes; returns the bytes copied.
pub fn copy_sparse(from: &mut dyn Read, to: &mut File) -> io::Result<u64> {
    let mut buffer = vec![0u8; BLOCK];
    let mut total = 0u64;
    loop {
        let length = read_full(from, &mut buffer)?;
        if length == 0 {
            break;
        }
        for chunk in buffer[..length].chunks(HOLE) {
            if chunk.iter().all(|&b| b == 0) {
                to.seek(SeekFrom::Current(chunk.len() as i64))?;
            } else {
                to.write_all(chunk)?;
            }
        }
        total += length as u64;
    }
    to.set_len(total)?;
    Ok(total)
}

fn read_full(from: &mut dyn Read, buffer: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        match from.read(&mut buffer[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    Ok(filled)
}

/// Creates `path` for a core: mode 0600 (a core holds the process's
/// secrets), never through a symlink.
pub fn create_private(path: &Path, exclusive: bool) -> Result<File> {
    let mut options = std::fs::OpenOptions::new();
    options
        .write(true)
        .mode(0o600)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32);
    if exclusive {
        options.create_new(true);
    } else {
        options.create(true).truncate(true);
    }
    options
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))
}

pub fn dump(args: &DumpArgs) -> Result<ExitCode> {
    let crash = show::latest(&args.selection, args.count)?;
    let file = open(&crash)?;
    let mut from = reader(&crash, file)?;
    let core = crash.core_path().unwrap_or_default();
    match &args.output {
        Some(path) => {
            let mut to = create_private(path, false)?;
            let bytes = copy_sparse(&mut from, &mut to)
                .with_context(|| format!("copying {} to {}", core.display(), path.display()))?;
            to.sync_all()
                .with_context(|| format!("writing {}", path.display()))?;
            if !args.selection.quiet {
                eprintln!(
                    "core of PID {} ({}) written to {}",
                    crash.pid().unwrap_or(0),
                    crate::base::human::size(bytes),
                    path.display()
                );
            }
        }
        None => {
            let stdout = io::stdout();
            if stdout.is_terminal() {
                bail!("refusing to write a core to a terminal: use -o FILE or a redirection");
            }
            let mut out = stdout.lock();
            io::copy(&mut from, &mut out)
                .with_context(|| format!("copying {} to standard output", core.display()))?;
            out.flush()?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn zero_blocks_become_holes() {
        let dir = std::env::temp_dir().join(format!("tools-core-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut data = vec![0u8; 1024 * 1024];
        data[5000] = 7;
        data[1024 * 1024 - 1] = 9;
        let path = dir.join("out");
        let mut to = create_private(&path, true).unwrap();
        assert_eq!(
            copy_sparse(&mut &data[..], &mut to).unwrap(),
            data.len() as u64
        );
        drop(to);
        assert_eq!(std::fs::read(&path).unwrap(), data);
        let metadata = std::fs::metadata(&path).unwrap();
        assert_eq!(metadata.mode() & 0o777, 0o600);
        assert!(
            metadata.blocks() * 512 < 64 * 1024,
            "{} blocks",
            metadata.blocks()
        );
        assert!(create_private(&path, true).is_err(), "exclusive");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
