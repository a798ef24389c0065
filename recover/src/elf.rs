//! The parts of an ELF core the recovery needs, parsed from untrusted bytes:
//! the program headers (where each mapping's bytes are in the file) and the
//! NT_FILE note (which file each mapping is of). Every count and offset is
//! checked before use; nothing is allocated from a size the file claims
//! without bounding it first.

use crate::reader::CoreRead;
use std::fmt;

const PT_LOAD: u32 = 1;
const PT_NOTE: u32 = 4;
const ET_CORE: u16 = 4;
const PN_XNUM: u16 = 0xffff;
const NT_FILE: u32 = 0x4649_4c45;
/// More program headers than any real core has (the kernel caps mappings
/// at vm.max_map_count, 65530 by default).
pub const MAX_PHDRS: u64 = 1 << 22;
/// Largest note segment read (NT_FILE of a process with every mapping
/// named by a long path stays far below).
const MAX_NOTES: u64 = 64 << 20;

/// Why a file is not a core this tool can read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElfError(pub String);

impl fmt::Display for ElfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn bad(message: impl Into<String>) -> ElfError {
    ElfError(message.into())
}

/// Byte order and word size of the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Format {
    pub big_endian: bool,
    pub is64: bool,
}

impl Format {
    pub fn u16(&self, b: &[u8], at: usize) -> Option<u16> {
        let bytes: [u8; 2] = b.get(at..at.checked_add(2)?)?.try_into().ok()?;
        Some(if self.big_endian {
            u16::from_be_bytes(bytes)
        } else {
            u16::from_le_bytes(bytes)
        })
    }

    pub fn u32(&self, b: &[u8], at: usize) -> Option<u32> {
        let bytes: [u8; 4] = b.get(at..at.checked_add(4)?)?.try_into().ok()?;
        Some(if self.big_endian {
            u32::from_be_bytes(bytes)
        } else {
            u32::from_le_bytes(bytes)
        })
    }

    pub fn u64(&self, b: &[u8], at: usize) -> Option<u64> {
        let bytes: [u8; 8] = b.get(at..at.checked_add(8)?)?.try_into().ok()?;
        Some(if self.big_endian {
            u64::from_be_bytes(bytes)
        } else {
            u64::from_le_bytes(bytes)
        })
    }

    /// A word of the file's class (4 or 8 bytes).
    pub fn word(&self, b: &[u8], at: usize) -> Option<u64> {
        if self.is64 {
            self.u64(b, at)
        } else {
            self.u32(b, at).map(u64::from)
        }
    }

    fn word_size(&self) -> usize {
        if self.is64 {
            8
        } else {
            4
        }
    }
}

/// One program header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    pub kind: u32,
    pub offset: u64,
    pub vaddr: u64,
    pub filesz: u64,
    pub memsz: u64,
}

/// A file mapping named by NT_FILE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappedFile {
    pub start: u64,
    pub end: u64,
    pub name: String,
}

/// The core's header: format and segments.
#[derive(Debug, Clone)]
pub struct Core {
    pub format: Format,
    pub segments: Vec<Segment>,
}

impl Core {
    /// The PT_LOAD segments, by file offset.
    pub fn loads(&self) -> Vec<Segment> {
        let mut loads: Vec<Segment> = self
            .segments
            .iter()
            .filter(|s| s.kind == PT_LOAD)
            .copied()
            .collect();
        loads.sort_by_key(|s| (s.offset, s.vaddr));
        loads
    }

    /// The PT_NOTE segments, by file offset.
    pub fn notes(&self) -> Vec<Segment> {
        let mut notes: Vec<Segment> = self
            .segments
            .iter()
            .filter(|s| s.kind == PT_NOTE)
            .copied()
            .collect();
        notes.sort_by_key(|s| s.offset);
        notes
    }
}

fn read_exact(
    core: &mut dyn CoreRead,
    offset: u64,
    len: usize,
    what: &str,
) -> Result<Vec<u8>, ElfError> {
    let mut buf = vec![0u8; len];
    let n = core
        .read_at(offset, &mut buf)
        .map_err(|e| bad(format!("reading {what} at byte {offset}: {e}")))?;
    if n < len {
        return Err(bad(format!(
            "the file ends inside {what} (byte {offset}, {len} bytes needed, {n} there)"
        )));
    }
    Ok(buf)
}

/// Reads and checks the ELF header and program headers of a core.
pub fn parse_header(core: &mut dyn CoreRead) -> Result<Core, ElfError> {
    parse_header_within(core, MAX_PHDRS)
}

/// [`parse_header`], refusing cores of more than `max_phdrs` program
/// headers (at most [`MAX_PHDRS`]) before reading their table.
pub fn parse_header_within(core: &mut dyn CoreRead, max_phdrs: u64) -> Result<Core, ElfError> {
    let max_phdrs = max_phdrs.min(MAX_PHDRS);
    let mut ident = [0u8; 64];
    let n = core
        .read_at(0, &mut ident)
        .map_err(|e| bad(format!("reading the ELF header: {e}")))?;
    if n < 16 || &ident[..4] != b"\x7fELF" {
        return Err(bad("not an ELF file (no \\x7fELF at its start)"));
    }
    let is64 = match ident[4] {
        1 => false,
        2 => true,
        other => return Err(bad(format!("unknown ELF class {other}"))),
    };
    let big_endian = match ident[5] {
        1 => false,
        2 => true,
        other => return Err(bad(format!("unknown ELF data encoding {other}"))),
    };
    let format = Format { big_endian, is64 };
    let header_len = if is64 { 64 } else { 52 };
    if n < header_len {
        return Err(bad("the file ends inside its ELF header"));
    }
    let h = &ident[..header_len];
    let e_type = format.u16(h, 16).unwrap_or(0);
    if e_type != ET_CORE {
        return Err(bad(format!(
            "an ELF file of type {e_type}, not a core (ET_CORE, 4)"
        )));
    }
    let (phoff, shoff, phentsize, phnum, shentsize) = if is64 {
        (
            format.u64(h, 32).unwrap_or(0),
            format.u64(h, 40).unwrap_or(0),
            format.u16(h, 54).unwrap_or(0),
            format.u16(h, 56).unwrap_or(0),
            format.u16(h, 58).unwrap_or(0),
        )
    } else {
        (
            u64::from(format.u32(h, 28).unwrap_or(0)),
            u64::from(format.u32(h, 32).unwrap_or(0)),
            format.u16(h, 42).unwrap_or(0),
            format.u16(h, 44).unwrap_or(0),
            format.u16(h, 46).unwrap_or(0),
        )
    };
    let want_phent: u16 = if is64 { 56 } else { 32 };
    if phentsize != want_phent {
        return Err(bad(format!(
            "program header entries of {phentsize} bytes (ELF{} has {want_phent})",
            if is64 { 64 } else { 32 }
        )));
    }
    let mut count = u64::from(phnum);
    if phnum == PN_XNUM {
        // More than 65534 mappings: the real count is in section 0's sh_info.
        let want_shent: u16 = if is64 { 64 } else { 40 };
        if shentsize != want_shent || shoff == 0 {
            return Err(bad(
                "e_phnum is PN_XNUM but there is no section header 0 to give the count",
            ));
        }
        if core.forward_only() {
            // The section header is at the end of the file (where the
            // kernel puts it), out of reach before the segments: the table
            // ends where the first segment it describes (the notes) starts.
            let first = read_exact(core, phoff, usize::from(want_phent), "program header 0")?;
            let first_offset = if is64 {
                format.u64(&first, 8).unwrap_or(0)
            } else {
                u64::from(format.u32(&first, 4).unwrap_or(0))
            };
            count = first_offset.saturating_sub(phoff) / u64::from(want_phent);
            let table = read_exact_more(core, phoff, first, count, max_phdrs, want_phent)?;
            return segments_of(format, is64, &table, want_phent);
        }
        let sh = read_exact(core, shoff, usize::from(want_shent), "section header 0")?;
        let info_at = if is64 { 44 } else { 28 };
        count = u64::from(format.u32(&sh, info_at).unwrap_or(0));
    }
    if count == 0 {
        return Err(bad("the core has no program headers"));
    }
    if count > max_phdrs {
        return Err(bad(format!(
            "{count} program headers (more than {max_phdrs})"
        )));
    }
    let table_len = count * u64::from(want_phent);
    if phoff.checked_add(table_len).is_none() {
        return Err(bad("the program header table's offset overflows"));
    }
    let table = read_exact(core, phoff, table_len as usize, "the program header table")?;
    segments_of(format, is64, &table, want_phent)
}

/// The rest of a program header table whose first entry is already read
/// (a forward-only source cannot read it again).
fn read_exact_more(
    core: &mut dyn CoreRead,
    phoff: u64,
    first: Vec<u8>,
    count: u64,
    max_phdrs: u64,
    phent: u16,
) -> Result<Vec<u8>, ElfError> {
    if count == 0 || count > max_phdrs {
        return Err(bad(format!(
            "{count} program headers (PN_XNUM, counted up to the first segment)"
        )));
    }
    let phent = u64::from(phent);
    let rest = read_exact(
        core,
        phoff
            .checked_add(phent)
            .ok_or_else(|| bad("the program header table's offset overflows"))?,
        ((count - 1) * phent) as usize,
        "the program header table",
    )?;
    let mut table = first;
    table.extend(rest);
    Ok(table)
}

fn segments_of(format: Format, is64: bool, table: &[u8], phent: u16) -> Result<Core, ElfError> {
    let mut segments = Vec::with_capacity(table.len() / usize::from(phent));
    for entry in table.chunks_exact(usize::from(phent)) {
        let segment = if is64 {
            Segment {
                kind: format.u32(entry, 0).unwrap_or(0),
                offset: format.u64(entry, 8).unwrap_or(0),
                vaddr: format.u64(entry, 16).unwrap_or(0),
                filesz: format.u64(entry, 32).unwrap_or(0),
                memsz: format.u64(entry, 40).unwrap_or(0),
            }
        } else {
            Segment {
                kind: format.u32(entry, 0).unwrap_or(0),
                offset: u64::from(format.u32(entry, 4).unwrap_or(0)),
                vaddr: u64::from(format.u32(entry, 8).unwrap_or(0)),
                filesz: u64::from(format.u32(entry, 16).unwrap_or(0)),
                memsz: u64::from(format.u32(entry, 20).unwrap_or(0)),
            }
        };
        if segment.offset.checked_add(segment.filesz).is_none() {
            return Err(bad(format!(
                "a segment's file range overflows (offset {:#x}, size {:#x})",
                segment.offset, segment.filesz
            )));
        }
        segments.push(segment);
    }
    Ok(Core { format, segments })
}

/// Reads a note segment (bounded) and returns the files NT_FILE names.
/// Notes that do not parse give no files, not an error: the mapping names
/// only improve messages and the search for metadata.
pub fn read_mapped_files(
    core: &mut dyn CoreRead,
    format: Format,
    note: Segment,
) -> Result<Vec<MappedFile>, ElfError> {
    let len = note.filesz.min(MAX_NOTES) as usize;
    let mut buf = vec![0u8; len];
    let n = core
        .read_at(note.offset, &mut buf)
        .map_err(|e| bad(format!("reading the notes at byte {}: {e}", note.offset)))?;
    buf.truncate(n);
    Ok(parse_nt_file(&buf, format))
}

/// The NT_FILE entries of a note segment's bytes.
pub fn parse_nt_file(notes: &[u8], format: Format) -> Vec<MappedFile> {
    let mut at = 0usize;
    while let (Some(namesz), Some(descsz), Some(kind)) = (
        format.u32(notes, at),
        format.u32(notes, at.saturating_add(4)),
        format.u32(notes, at.saturating_add(8)),
    ) {
        let Some(desc) = (namesz as usize)
            .checked_next_multiple_of(4)
            .and_then(|n| n.checked_add(at + 12))
        else {
            break;
        };
        let Some(next) = (descsz as usize)
            .checked_next_multiple_of(4)
            .and_then(|n| n.checked_add(desc))
        else {
            break;
        };
        let Some(body) = notes.get(desc..desc.saturating_add(descsz as usize)) else {
            break;
        };
        if kind == NT_FILE {
            return parse_file_entries(body, format);
        }
        at = next;
    }
    Vec::new()
}

fn parse_file_entries(body: &[u8], format: Format) -> Vec<MappedFile> {
    let w = format.word_size();
    let Some(count) = format.word(body, 0) else {
        return Vec::new();
    };
    // Each entry takes three words and at least one name byte: a count the
    // note cannot hold is refused before anything is allocated from it.
    let Some(table_end) = (count as usize)
        .checked_mul(3 * w)
        .and_then(|n| n.checked_add(2 * w))
    else {
        return Vec::new();
    };
    if table_end > body.len() || count as usize > body.len() {
        return Vec::new();
    }
    let mut names = body[table_end..].split(|&b| b == 0);
    let mut files = Vec::with_capacity(count as usize);
    for i in 0..count as usize {
        let base = 2 * w + i * 3 * w;
        let (Some(start), Some(end)) = (format.word(body, base), format.word(body, base + w))
        else {
            break;
        };
        let Some(name) = names.next() else { break };
        files.push(MappedFile {
            start,
            end,
            name: String::from_utf8_lossy(name).into_owned(),
        });
    }
    files
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A minimal little-endian ELF64 core: the given segments as PT_LOADs
    /// (vaddr, bytes), an optional NT_FILE note, laid out in order.
    pub fn build_core(loads: &[(u64, Vec<u8>)], files: &[(u64, u64, &str)]) -> Vec<u8> {
        let mut note = Vec::new();
        if !files.is_empty() {
            let mut desc = Vec::new();
            desc.extend((files.len() as u64).to_le_bytes());
            desc.extend(4096u64.to_le_bytes());
            for (start, end, _) in files {
                desc.extend(start.to_le_bytes());
                desc.extend(end.to_le_bytes());
                desc.extend(0u64.to_le_bytes());
            }
            for (_, _, name) in files {
                desc.extend(name.as_bytes());
                desc.push(0);
            }
            while desc.len() % 4 != 0 {
                desc.push(0);
            }
            note.extend(5u32.to_le_bytes());
            note.extend((desc.len() as u32).to_le_bytes());
            note.extend(NT_FILE.to_le_bytes());
            note.extend(b"CORE\0\0\0\0");
            note.extend(desc);
        }
        let phnum = loads.len() + 1;
        let mut offset = (64 + 56 * phnum) as u64;
        let mut out = vec![0u8; 64];
        out[..4].copy_from_slice(b"\x7fELF");
        out[4] = 2;
        out[5] = 1;
        out[6] = 1;
        out[16..18].copy_from_slice(&ET_CORE.to_le_bytes());
        out[18..20].copy_from_slice(&62u16.to_le_bytes());
        out[32..40].copy_from_slice(&64u64.to_le_bytes());
        out[52..54].copy_from_slice(&64u16.to_le_bytes());
        out[54..56].copy_from_slice(&56u16.to_le_bytes());
        out[56..58].copy_from_slice(&(phnum as u16).to_le_bytes());
        let phdr = |kind: u32, off: u64, vaddr: u64, size: u64| {
            let mut p = vec![0u8; 56];
            p[0..4].copy_from_slice(&kind.to_le_bytes());
            p[8..16].copy_from_slice(&off.to_le_bytes());
            p[16..24].copy_from_slice(&vaddr.to_le_bytes());
            p[32..40].copy_from_slice(&size.to_le_bytes());
            p[40..48].copy_from_slice(&size.to_le_bytes());
            p
        };
        let mut headers = phdr(PT_NOTE, offset, 0, note.len() as u64);
        offset += note.len() as u64;
        let mut body = note.clone();
        for (vaddr, bytes) in loads {
            let pad = (4096 - offset % 4096) % 4096;
            body.extend(std::iter::repeat_n(0u8, pad as usize));
            offset += pad;
            headers.extend(phdr(PT_LOAD, offset, *vaddr, bytes.len() as u64));
            body.extend(bytes);
            offset += bytes.len() as u64;
        }
        out.extend(headers);
        out.extend(body);
        out
    }

    #[test]
    fn a_built_core_parses_with_its_segments_and_files() {
        let core = build_core(
            &[(0x1000, vec![1; 100]), (0x5000, vec![2; 10])],
            &[(0x1000, 0x2000, "/dev/shm/x"), (0x5000, 0x6000, "/lib/y")],
        );
        let mut reader: &[u8] = &core;
        let parsed = parse_header(&mut reader).unwrap();
        assert_eq!(parsed.loads().len(), 2);
        let files = read_mapped_files(&mut reader, parsed.format, parsed.notes()[0]).unwrap();
        assert_eq!(files[1].name, "/lib/y");
        assert_eq!(files[0].start, 0x1000);
    }

    #[test]
    fn broken_headers_are_errors_not_panics() {
        let good = build_core(&[(0x1000, vec![1; 100])], &[(0x1000, 0x2000, "/a")]);
        let mut reader: &[u8] = b"not elf";
        assert!(parse_header(&mut reader).is_err());
        for cut in [0, 10, 20, 63, 64, 100, 150] {
            let mut reader: &[u8] = &good[..cut];
            assert!(parse_header(&mut reader).is_err(), "cut at {cut}");
        }
        let mut huge = good.clone();
        huge[56..58].copy_from_slice(&0xfffeu16.to_le_bytes());
        let mut reader: &[u8] = &huge;
        assert!(parse_header(&mut reader).is_err());
        let mut xnum = good.clone();
        xnum[56..58].copy_from_slice(&PN_XNUM.to_le_bytes());
        let mut reader: &[u8] = &xnum;
        assert!(parse_header(&mut reader).is_err());
        let mut overflow = good.clone();
        // The PT_LOAD's offset near u64::MAX.
        let ph = 64 + 56;
        overflow[ph + 8..ph + 16].copy_from_slice(&(u64::MAX - 4).to_le_bytes());
        let mut reader: &[u8] = &overflow;
        assert!(parse_header(&mut reader).is_err());
        let mut not_core = good.clone();
        not_core[16] = 2;
        let mut reader: &[u8] = &not_core;
        assert!(parse_header(&mut reader)
            .unwrap_err()
            .0
            .contains("not a core"));
    }

    #[test]
    fn nt_file_counts_the_note_cannot_hold_give_nothing() {
        let format = Format {
            big_endian: false,
            is64: true,
        };
        let mut note = Vec::new();
        note.extend(5u32.to_le_bytes());
        note.extend(16u32.to_le_bytes());
        note.extend(NT_FILE.to_le_bytes());
        note.extend(b"CORE\0\0\0\0");
        note.extend(u64::MAX.to_le_bytes());
        note.extend(4096u64.to_le_bytes());
        assert!(parse_nt_file(&note, format).is_empty());
        note[20..28].copy_from_slice(&1_000_000u64.to_le_bytes());
        assert!(parse_nt_file(&note, format).is_empty());
        assert!(parse_nt_file(&note[..7], format).is_empty());
    }
}
