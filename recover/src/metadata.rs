//! Finding a recovered trace's metadata: it is never in the program's
//! memory (the session daemon generates it), so it comes from a file whose
//! UUID is the packets' — given by the user, left by a `--shm-path`
//! session, or in a snapshot already recorded (the handler's crash records
//! name them). Searches are bounded: a hostile tree cannot make them long.
//!
//! The trees searched are often a user's (their snapshot outputs, their
//! `--shm-path`): every file is opened once, `O_PATH` without following a
//! link, checked to be a regular file on that descriptor, and only then
//! reopened for reading through it (so a device, a FIFO or a socket is
//! never opened, whatever is swapped in), and the metadata copied is the
//! very bytes whose UUID was checked ([`fetch`]): a file swapped between the
//! search and the copy is never what gets copied. Root's tools do the
//! search of a user's tree as that user (the handler's `user_child`).

use std::collections::HashMap;
use std::fs;
use std::io::Read;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Packetized CTF metadata's magic (in the first 4 bytes, either order).
const METADATA_MAGIC: u32 = 0x75D1_1D57;
/// What of a metadata file is read to find its UUID.
const PEEK: u64 = 1 << 16;
const MAX_DEPTH: usize = 8;
const MAX_ENTRIES: usize = 50_000;
/// Largest metadata file copied (a session's metadata is KiB to a few MiB).
pub const MAX_METADATA: u64 = 64 << 20;

/// A metadata file found for a UUID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub path: PathBuf,
    pub len: u64,
    /// Where it was found (for the report).
    pub source: String,
}

/// The UUID a CTF metadata file declares: the packet header's in packetized
/// metadata, the trace block's `uuid = "..."` in plain text.
pub fn metadata_uuid(bytes: &[u8]) -> Option<[u8; 16]> {
    if bytes.len() >= 20 {
        let head = [bytes[0], bytes[1], bytes[2], bytes[3]];
        if u32::from_le_bytes(head) == METADATA_MAGIC || u32::from_be_bytes(head) == METADATA_MAGIC
        {
            return bytes[4..20].try_into().ok();
        }
    }
    let text = String::from_utf8_lossy(bytes);
    if !text.contains("CTF") && !text.contains("trace") {
        return None;
    }
    let at = text.find("uuid = \"")? + 8;
    parse_uuid(text.get(at..at + 36)?)
}

/// Parses `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`.
pub fn parse_uuid(text: &str) -> Option<[u8; 16]> {
    let hex: String = text.chars().filter(|c| *c != '-').collect();
    if hex.len() != 32 || text.len() != 36 {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`.
pub fn format_uuid(uuid: &[u8; 16]) -> String {
    let h: Vec<String> = uuid.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        h[0..4].concat(),
        h[4..6].concat(),
        h[6..8].concat(),
        h[8..10].concat(),
        h[10..16].concat()
    )
}

/// Opens `path` for reading only when it is a regular file: first with
/// `O_PATH` and without following a link (which opens nothing: no device's
/// open routine runs, no FIFO blocks), checked on that descriptor, then
/// reopened through it, non-blocking (it is the same file: a swap of the
/// name after the check changes nothing).
pub fn open_regular(path: &Path) -> Option<fs::File> {
    let handle = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_NOFOLLOW)
        .open(path)
        .ok()?;
    let meta = handle.metadata().ok()?;
    if !meta.is_file() {
        return None;
    }
    let file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(format!("/proc/self/fd/{}", handle.as_raw_fd()))
        .ok()?;
    let reopened = file.metadata().ok()?;
    (reopened.is_file() && reopened.dev() == meta.dev() && reopened.ino() == meta.ino())
        .then_some(file)
}

fn file_uuid(path: &Path) -> Option<([u8; 16], u64)> {
    let file = open_regular(path)?;
    let len = file.metadata().ok()?.len();
    let mut head = Vec::new();
    file.take(PEEK).read_to_end(&mut head).ok()?;
    metadata_uuid(&head).map(|uuid| (uuid, len))
}

/// The bytes of the metadata file `path` when it declares `uuid`: read
/// once, from a regular file ([`open_regular`]), at most [`MAX_METADATA`]
/// bytes, and its UUID checked on those very bytes.
pub fn read_verified(path: &Path, uuid: &[u8; 16]) -> Result<Vec<u8>, String> {
    let file = open_regular(path).ok_or("not a regular file (or gone)")?;
    let mut bytes = Vec::new();
    file.take(MAX_METADATA + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| e.to_string())?;
    if bytes.len() as u64 > MAX_METADATA {
        return Err(format!("larger than {MAX_METADATA} bytes"));
    }
    if metadata_uuid(&bytes).as_ref() != Some(uuid) {
        return Err(format!(
            "it no longer declares the trace {}",
            format_uuid(uuid)
        ));
    }
    Ok(bytes)
}

/// Where metadata may be searched, and what to call it in the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Root {
    pub path: PathBuf,
    pub source: String,
    /// Named by the person running the command (`--metadata`, `--search`),
    /// rather than found in the core or the crash records (where a user
    /// may have chosen it).
    pub explicit: bool,
}

/// Metadata read for a trace: where it was found, and its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    pub found: Found,
    pub bytes: Vec<u8>,
}

/// The metadata of each of `wanted` found under `roots` (the largest file
/// per UUID, read as [`read_verified`] does; one that fails that is passed
/// over for the next largest).
pub fn fetch(roots: &[Root], wanted: &[[u8; 16]]) -> HashMap<[u8; 16], Fetched> {
    let mut candidates: HashMap<[u8; 16], Vec<Found>> = HashMap::new();
    for root in roots {
        let mut found = HashMap::new();
        scan_tree_all(&root.path, &root.source, &mut candidates, &mut found);
    }
    let mut out = HashMap::new();
    for uuid in wanted {
        let Some(list) = candidates.get_mut(uuid) else {
            continue;
        };
        list.sort_by_key(|f| std::cmp::Reverse(f.len));
        for found in list.iter() {
            if let Ok(bytes) = read_verified(&found.path, uuid) {
                let mut found = found.clone();
                found.len = bytes.len() as u64;
                out.insert(*uuid, Fetched { found, bytes });
                break;
            }
        }
    }
    out
}

/// [`scan_tree`], also keeping every candidate per UUID in `all`.
fn scan_tree_all(
    root: &Path,
    source: &str,
    all: &mut HashMap<[u8; 16], Vec<Found>>,
    best: &mut HashMap<[u8; 16], Found>,
) {
    walk(root, &mut |path| {
        if let Some((uuid, len)) = file_uuid(path) {
            let found = Found {
                path: path.to_path_buf(),
                len,
                source: source.to_owned(),
            };
            all.entry(uuid).or_default().push(found.clone());
            if best.get(&uuid).is_none_or(|f| f.len < len) {
                best.insert(uuid, found);
            }
        }
    });
}

/// Every `metadata` file under `root` (or `root` itself when it is a
/// file), by UUID, the largest per UUID (metadata only grows: the largest
/// declares the most).
pub fn scan_tree(root: &Path, source: &str, into: &mut HashMap<[u8; 16], Found>) {
    let mut all = HashMap::new();
    scan_tree_all(root, source, &mut all, into);
}

/// Calls `consider` on `root` when it is a file, else on every file named
/// `metadata` under it, links never followed below `root`, within
/// [`MAX_DEPTH`] and [`MAX_ENTRIES`].
fn walk(root: &Path, consider: &mut dyn FnMut(&Path)) {
    let mut budget = MAX_ENTRIES;
    let Ok(meta) = fs::metadata(root) else { return };
    if meta.is_file() {
        consider(root);
        return;
    }
    if !meta.is_dir() {
        return;
    }
    let mut stack = vec![(root.to_path_buf(), 0usize)];
    while let Some((dir, depth)) = stack.pop() {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            if budget == 0 {
                return;
            }
            budget -= 1;
            // Never follow links: a tree is searched, not the machine.
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            let path = entry.path();
            if kind.is_dir() && depth < MAX_DEPTH {
                stack.push((path, depth + 1));
            } else if kind.is_file() && entry.file_name() == "metadata" {
                consider(&path);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_of_packetized_and_text_metadata() {
        let mut packet = vec![0x57, 0x1d, 0xd1, 0x75];
        packet.extend(1..=16u8);
        packet.extend([0u8; 20]);
        assert_eq!(metadata_uuid(&packet).unwrap()[0], 1);
        let text = b"/* CTF 1.8 */\ntrace {\n\tmajor = 1;\n\tuuid = \"0102030405060708090a0b0c0d0e0f10\";\n";
        assert!(metadata_uuid(text).is_none());
        let text = b"/* CTF 1.8 */\ntrace {\n\tuuid = \"01020304-0506-0708-090a-0b0c0d0e0f10\";\n";
        let uuid = metadata_uuid(text).unwrap();
        assert_eq!(
            uuid,
            *b"\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10"
        );
        assert_eq!(format_uuid(&uuid), "01020304-0506-0708-090a-0b0c0d0e0f10");
        assert!(metadata_uuid(b"").is_none());
        assert!(metadata_uuid(b"trace uuid = \"zz").is_none());
    }
}
