//! Finding a recovered trace's metadata: it is never in the program's
//! memory (the session daemon generates it), so it comes from a file whose
//! UUID is the packets' — given by the user, left by a `--shm-path`
//! session, or in a snapshot already recorded (the handler's crash records
//! name them). Searches are bounded: a hostile tree cannot make them long.

use std::collections::HashMap;
use std::fs;
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Packetized CTF metadata's magic (in the first 4 bytes, either order).
const METADATA_MAGIC: u32 = 0x75D1_1D57;
/// What of a metadata file is read to find its UUID.
const PEEK: u64 = 1 << 16;
const MAX_DEPTH: usize = 8;
const MAX_ENTRIES: usize = 50_000;

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

fn file_uuid(path: &Path) -> Option<([u8; 16], u64)> {
    // Non-blocking, and regular files only: a FIFO or a device swapped in
    // for a file of a user's tree must not hang (or feed) a root reader.
    let file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .ok()?;
    let meta = file.metadata().ok()?;
    if !meta.is_file() {
        return None;
    }
    let len = meta.len();
    let mut head = Vec::new();
    file.take(PEEK).read_to_end(&mut head).ok()?;
    metadata_uuid(&head).map(|uuid| (uuid, len))
}

/// Every `metadata` file under `root` (or `root` itself when it is a
/// file), by UUID, the largest per UUID (metadata only grows: the largest
/// declares the most).
pub fn scan_tree(root: &Path, source: &str, into: &mut HashMap<[u8; 16], Found>) {
    let mut budget = MAX_ENTRIES;
    let consider = |path: &Path, into: &mut HashMap<[u8; 16], Found>| {
        if let Some((uuid, len)) = file_uuid(path) {
            let better = into.get(&uuid).is_none_or(|f| f.len < len);
            if better {
                into.insert(
                    uuid,
                    Found {
                        path: path.to_path_buf(),
                        len,
                        source: source.to_owned(),
                    },
                );
            }
        }
    };
    let Ok(meta) = fs::metadata(root) else { return };
    if meta.is_file() {
        consider(root, into);
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
                consider(&path, into);
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
