//! The ELF structure of the core: header, program headers (the notes, then
//! one `PT_LOAD` per mapping, by address), the notes, then the memory of
//! each segment from the next page boundary on, as the kernel lays it out.
//! With 65535 program headers or more, `e_phnum` is `PN_XNUM` and the real
//! count is in the one section header, at the end (as the kernel does).
//!
//! Segments are placed in the file in the order the dump writes them (the
//! copy-on-write method writes the memory it read during the stop first),
//! which need not be their address order: a program header's `p_offset`
//! says where its bytes are.

const EHDR_SIZE: u64 = 64;
const PHDR_SIZE: u64 = 56;
const SHDR_SIZE: u64 = 64;
const PT_LOAD: u32 = 1;
const PT_NOTE: u32 = 4;
const PN_XNUM: u64 = 0xffff;
const ET_CORE: u16 = 4;
const EM_X86_64: u16 = 62;
pub const PAGE: u64 = 4096;

/// One memory segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    pub vaddr: u64,
    pub memsz: u64,
    /// Bytes of memory in the file (0: not dumped).
    pub filesz: u64,
    /// `PF_R | PF_W | PF_X`.
    pub flags: u32,
    /// Where its bytes start in the file (set by [`Layout::new`]).
    pub offset: u64,
}

/// Where everything goes in the file.
#[derive(Debug, Clone)]
pub struct Layout {
    /// The segments, by address (program-header order).
    pub segments: Vec<Segment>,
    /// Where the notes start, and their size.
    pub notes_offset: u64,
    pub notes_size: u64,
    /// Where the first segment's bytes start (a page boundary).
    pub data_offset: u64,
    /// The file's size.
    pub size: u64,
    /// With `PN_XNUM`: where the section header is.
    pub shdr_offset: Option<u64>,
}

fn round_up(value: u64, to: u64) -> u64 {
    value.div_ceil(to) * to
}

impl Layout {
    /// Places `segments` (by address) in the file; their bytes are written
    /// in the order of `write_order` (indexes into `segments`, every one
    /// once).
    pub fn new(mut segments: Vec<Segment>, notes_size: u64, write_order: &[usize]) -> Layout {
        let phnum = segments.len() as u64 + 1;
        let notes_offset = EHDR_SIZE + phnum * PHDR_SIZE;
        let data_offset = round_up(notes_offset + notes_size, PAGE);
        let mut offset = data_offset;
        for &index in write_order {
            let segment = &mut segments[index];
            segment.offset = offset;
            offset += segment.filesz;
        }
        let (size, shdr_offset) = if phnum >= PN_XNUM {
            (offset + SHDR_SIZE, Some(offset))
        } else {
            (offset, None)
        };
        Layout {
            segments,
            notes_offset,
            notes_size,
            data_offset,
            size,
            shdr_offset,
        }
    }

    /// The header, program headers and notes, padded to the data.
    pub fn head(&self, notes: &[u8]) -> Vec<u8> {
        let phnum = self.segments.len() as u64 + 1;
        let mut out = Vec::with_capacity(self.data_offset as usize);
        // e_ident
        out.extend_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1, 1, 0]);
        out.extend_from_slice(&[0; 8]);
        out.extend_from_slice(&ET_CORE.to_le_bytes());
        out.extend_from_slice(&EM_X86_64.to_le_bytes());
        out.extend_from_slice(&1u32.to_le_bytes()); // e_version
        out.extend_from_slice(&0u64.to_le_bytes()); // e_entry
        out.extend_from_slice(&EHDR_SIZE.to_le_bytes()); // e_phoff
        out.extend_from_slice(&self.shdr_offset.unwrap_or(0).to_le_bytes()); // e_shoff
        out.extend_from_slice(&0u32.to_le_bytes()); // e_flags
        out.extend_from_slice(&(EHDR_SIZE as u16).to_le_bytes());
        out.extend_from_slice(&(PHDR_SIZE as u16).to_le_bytes());
        out.extend_from_slice(&(phnum.min(PN_XNUM) as u16).to_le_bytes());
        let (shentsize, shnum) = if self.shdr_offset.is_some() {
            (SHDR_SIZE as u16, 1u16)
        } else {
            (0, 0)
        };
        out.extend_from_slice(&shentsize.to_le_bytes());
        out.extend_from_slice(&shnum.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes()); // e_shstrndx
        debug_assert_eq!(out.len() as u64, EHDR_SIZE);
        // The notes.
        push_phdr(
            &mut out,
            PT_NOTE,
            0,
            self.notes_offset,
            0,
            self.notes_size,
            0,
            4,
        );
        for s in &self.segments {
            push_phdr(
                &mut out, PT_LOAD, s.flags, s.offset, s.vaddr, s.filesz, s.memsz, PAGE,
            );
        }
        debug_assert_eq!(out.len() as u64, self.notes_offset);
        out.extend_from_slice(notes);
        out.resize(self.data_offset as usize, 0);
        out
    }

    /// The section header that holds the program-header count (`PN_XNUM`).
    pub fn extended_count_header(&self) -> Option<Vec<u8>> {
        self.shdr_offset?;
        let mut out = vec![0u8; SHDR_SIZE as usize];
        // sh_size = e_shnum (1); sh_info = the real count of program headers.
        out[32..40].copy_from_slice(&1u64.to_le_bytes());
        out[44..48].copy_from_slice(&((self.segments.len() + 1) as u32).to_le_bytes());
        Some(out)
    }
}

#[allow(clippy::too_many_arguments)]
fn push_phdr(
    out: &mut Vec<u8>,
    kind: u32,
    flags: u32,
    offset: u64,
    vaddr: u64,
    filesz: u64,
    memsz: u64,
    align: u64,
) {
    out.extend_from_slice(&kind.to_le_bytes());
    out.extend_from_slice(&flags.to_le_bytes());
    out.extend_from_slice(&offset.to_le_bytes());
    out.extend_from_slice(&vaddr.to_le_bytes());
    out.extend_from_slice(&0u64.to_le_bytes()); // p_paddr
    out.extend_from_slice(&filesz.to_le_bytes());
    out.extend_from_slice(&memsz.to_le_bytes());
    out.extend_from_slice(&align.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(vaddr: u64, filesz: u64) -> Segment {
        Segment {
            vaddr,
            memsz: 0x2000,
            filesz,
            flags: 6,
            offset: 0,
        }
    }

    #[test]
    fn segments_follow_the_notes_in_the_order_written() {
        let layout = Layout::new(vec![seg(0x1000, 0x2000), seg(0x9000, 0x1000)], 100, &[1, 0]);
        assert_eq!(layout.notes_offset, 64 + 3 * 56);
        assert_eq!(layout.data_offset, 4096);
        assert_eq!(layout.segments[1].offset, 4096);
        assert_eq!(layout.segments[0].offset, 4096 + 0x1000);
        assert_eq!(layout.size, 4096 + 0x3000);
        let head = layout.head(&[7; 100]);
        assert_eq!(head.len(), 4096);
        assert_eq!(&head[..4], b"\x7fELF");
        assert_eq!(u16::from_le_bytes([head[16], head[17]]), ET_CORE);
        assert_eq!(u16::from_le_bytes([head[56], head[57]]), 3);
        assert!(layout.extended_count_header().is_none());
    }

    #[test]
    fn too_many_segments_use_pn_xnum() {
        let segments: Vec<Segment> = (0..70000u64).map(|i| seg(i * 0x2000, 0)).collect();
        let order: Vec<usize> = (0..segments.len()).collect();
        let layout = Layout::new(segments, 8, &order);
        let head = layout.head(&[0; 8]);
        assert_eq!(u16::from_le_bytes([head[56], head[57]]), 0xffff);
        assert_eq!(layout.shdr_offset, Some(layout.size - 64));
        let shdr = layout.extended_count_header().unwrap();
        assert_eq!(u32::from_le_bytes(shdr[44..48].try_into().unwrap()), 70001);
    }
}
