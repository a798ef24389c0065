//! Which memory a core holds, decided as the kernel's `vma_dump_size()`
//! decides it (fs/coredump.c), from what `/proc/PID/smaps` says of each
//! mapping and `/proc/PID/coredump_filter`:
//!
//! - the vDSO and the other special mappings, always, whole;
//! - nothing of a mapping marked `MADV_DONTDUMP` (`VmFlags: dd`) or of I/O
//!   memory (`io`);
//! - hugetlb memory by the filter's hugetlb bits (5 private, 6 shared);
//! - shared memory by bit 1 when its file has no name left (shared
//!   anonymous memory, memfd, SysV shm: `(deleted)`), else bit 3;
//! - private memory that was written to (anonymous memory, or file pages
//!   made anonymous: `Anonymous:` above zero) by bit 0;
//! - other private file memory by bit 2, else, by bit 4, the first page of
//!   a mapping at offset 0 that starts with an ELF header, so that the
//!   build-ids of the executable and its libraries are in the core.

use crate::procfs::Mapping;

pub const PAGE_SIZE: u64 = 4096;

const FILTER_ANON_PRIVATE: u32 = 1 << 0;
const FILTER_ANON_SHARED: u32 = 1 << 1;
const FILTER_MAPPED_PRIVATE: u32 = 1 << 2;
const FILTER_MAPPED_SHARED: u32 = 1 << 3;
const FILTER_ELF_HEADERS: u32 = 1 << 4;
const FILTER_HUGETLB_PRIVATE: u32 = 1 << 5;
const FILTER_HUGETLB_SHARED: u32 = 1 << 6;

/// How much of a mapping the core holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dump {
    Nothing,
    /// Its first page, if it starts with an ELF header (checked when read).
    ElfHeader,
    Whole,
}

/// How the pages of a mapping are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Content {
    /// Private anonymous memory: a page that is neither in memory nor in
    /// swap reads as zeroes and becomes a hole without being read.
    Anonymous,
    /// Anything else: every page is read (a file page not yet in memory,
    /// a shared page another process wrote).
    Backed,
}

/// The special mappings the kernel always dumps (named by the kernel, not
/// by a file).
fn is_special(mapping: &Mapping) -> bool {
    !mapping.is_file()
        && matches!(
            mapping.path.as_str(),
            "[vdso]" | "[vvar]" | "[vvar_vclock]" | "[vsyscall]" | "[uprobes]"
        )
}

/// What the kernel would dump of `mapping` under `filter`.
pub fn dump_of(mapping: &Mapping, filter: u32) -> Dump {
    let has = |bit: u32| filter & bit != 0;
    let whole_if = |yes: bool| if yes { Dump::Whole } else { Dump::Nothing };
    if is_special(mapping) {
        return Dump::Whole;
    }
    if mapping.has_flag(b"dd") {
        return Dump::Nothing;
    }
    if mapping.has_flag(b"ht") {
        return whole_if(if mapping.shared {
            has(FILTER_HUGETLB_SHARED)
        } else {
            has(FILTER_HUGETLB_PRIVATE)
        });
    }
    if mapping.has_flag(b"io") {
        return Dump::Nothing;
    }
    if mapping.shared {
        return whole_if(if mapping.deleted() {
            has(FILTER_ANON_SHARED)
        } else {
            has(FILTER_MAPPED_SHARED)
        });
    }
    // Written to: anonymous memory once touched, file pages made private
    // copies. An anonymous mapping never touched is dumped too (as holes):
    // smaps cannot tell whether the kernel gave it an anon_vma, and its
    // pages read as zeroes either way; one that cannot be read is not.
    let written = mapping.anonymous_kb > 0 || (!mapping.is_file() && mapping.read);
    if written && has(FILTER_ANON_PRIVATE) {
        return Dump::Whole;
    }
    if !mapping.is_file() {
        return Dump::Nothing;
    }
    if has(FILTER_MAPPED_PRIVATE) {
        return Dump::Whole;
    }
    if has(FILTER_ELF_HEADERS) && mapping.offset == 0 && mapping.read {
        return Dump::ElfHeader;
    }
    Dump::Nothing
}

/// How the pages of a dumped mapping are read.
pub fn content_of(mapping: &Mapping) -> Content {
    if !mapping.shared && !mapping.is_file() && !is_special(mapping) {
        Content::Anonymous
    } else {
        Content::Backed
    }
}

/// The ELF segment flags of a mapping (`PF_R`, `PF_W`, `PF_X`).
pub fn segment_flags(mapping: &Mapping) -> u32 {
    (if mapping.read { 4 } else { 0 })
        | (if mapping.write { 2 } else { 0 })
        | u32::from(mapping.exec)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mapping(path: &str, inode: u64, shared: bool, flags: &[&[u8; 2]], anon_kb: u64) -> Mapping {
        Mapping {
            start: 0x1000,
            end: 0x5000,
            read: true,
            write: true,
            shared,
            inode,
            path: path.into(),
            vm_flags: flags.iter().map(|f| **f).collect(),
            anonymous_kb: anon_kb,
            detailed: true,
            ..Mapping::default()
        }
    }

    #[test]
    fn the_default_filter_dumps_what_the_kernel_dumps() {
        let filter = 0x33;
        assert_eq!(dump_of(&mapping("", 0, false, &[], 4), filter), Dump::Whole);
        assert_eq!(
            dump_of(&mapping("[heap]", 0, false, &[b"dd"], 4), filter),
            Dump::Nothing
        );
        assert_eq!(
            dump_of(&mapping("[vdso]", 0, false, &[b"dd"], 0), filter),
            Dump::Whole
        );
        assert_eq!(
            dump_of(&mapping("/dev/zero (deleted)", 7, true, &[], 0), filter),
            Dump::Whole
        );
        assert_eq!(
            dump_of(&mapping("/data/file", 7, true, &[], 0), filter),
            Dump::Nothing
        );
        assert_eq!(
            dump_of(&mapping("/lib/libc.so.6", 7, false, &[], 8), filter),
            Dump::Whole
        );
        assert_eq!(
            dump_of(&mapping("/lib/libc.so.6", 7, false, &[], 0), filter),
            Dump::ElfHeader
        );
        assert_eq!(
            dump_of(&mapping("", 0, false, &[b"io"], 4), filter),
            Dump::Nothing
        );
        assert_eq!(
            dump_of(&mapping("", 0, false, &[b"ht"], 4), filter),
            Dump::Whole
        );
        assert_eq!(
            dump_of(&mapping("", 0, true, &[b"ht"], 0), filter),
            Dump::Nothing
        );
        // Bit 0 off: private memory is not dumped, ELF headers still are.
        assert_eq!(dump_of(&mapping("", 0, false, &[], 4), 0x10), Dump::Nothing);
        assert_eq!(
            dump_of(&mapping("/lib/libc.so.6", 7, false, &[], 8), 0x10),
            Dump::ElfHeader
        );
        // Bit 3 on: shared file mappings are.
        assert_eq!(
            dump_of(&mapping("/data/file", 7, true, &[], 0), 0x08),
            Dump::Whole
        );
    }
}
