//! What the analysis reads from the core itself, in Rust, before libdwfl
//! sees it: the program headers (is the core complete, where is each
//! segment), and the notes that say who crashed and how (NT_PRSTATUS of
//! each thread, the crashing one first; NT_SIGINFO; NT_PRPSINFO; NT_AUXV;
//! NT_FILE).
//!
//! This is where a hostile core is refused before it costs anything: the
//! notes are walked one header at a time (never read whole), only the
//! notes used are read, and a core that claims more threads or notes than
//! the limits allow, or whose notes or crashing thread's stack are cut
//! off, is refused with the reason.

use lttng_coredump_recover::elf::{self, Format, MappedFile, Segment};
use lttng_coredump_recover::reader::CoreRead;

const NT_PRSTATUS: u32 = 1;
const NT_PRPSINFO: u32 = 3;
const NT_AUXV: u32 = 6;
const NT_SIGINFO: u32 = 0x5349_4749;
const NT_FILE: u32 = 0x4649_4c45;
const PT_NOTE: u32 = 4;

const EM_386: u16 = 3;
const EM_X86_64: u16 = 62;
const EM_AARCH64: u16 = 183;

/// The most program headers a core may have here (the kernel caps
/// mappings at `vm.max_map_count`, 65530 by default).
const MAX_PHDRS: u64 = 1 << 20;
/// The largest NT_FILE note read (one entry per mapping, with its path).
const MAX_NT_FILE: u64 = 32 << 20;
/// The largest note header field read (a name or a small descriptor).
const MAX_SMALL_NOTE: u64 = 4096;

/// What the notes walk may cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoteLimits {
    /// More NT_PRSTATUS notes (threads) than this: the core is refused.
    pub max_threads: usize,
    /// More notes of any kind than this: the core is refused.
    pub max_notes: usize,
}

/// One thread's NT_PRSTATUS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThreadNote {
    pub tid: i32,
    /// `pr_cursig`: the signal being delivered.
    pub signal: u16,
    /// The stack pointer, for the architectures whose register layout is
    /// known here (x86-64, i386, AArch64).
    pub stack_pointer: Option<u64>,
}

/// NT_SIGINFO.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SigInfo {
    pub signo: i32,
    pub errno: i32,
    pub code: i32,
    /// The union's first words: `si_addr`, or `si_pid` and `si_uid`.
    pub addr: u64,
    pub pid: i32,
    pub uid: u32,
}

/// NT_PRPSINFO.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PsInfo {
    pub pid: i32,
    pub ppid: i32,
    pub uid: u32,
    pub gid: u32,
    pub fname: String,
    pub psargs: String,
}

/// What the analysis knows from the core's headers and notes.
#[derive(Debug, Clone)]
pub struct CoreNotes {
    pub format: Format,
    pub machine: u16,
    pub segments: Vec<Segment>,
    /// The file's length, and where its segments say it ends.
    pub file_len: u64,
    pub extent: u64,
    /// Every thread, in the core's order: the kernel writes the thread that
    /// dumped the core (the crashing one) first.
    pub threads: Vec<ThreadNote>,
    pub siginfo: Option<SigInfo>,
    pub psinfo: Option<PsInfo>,
    /// AT_ENTRY, from NT_AUXV.
    pub entry: Option<u64>,
    pub files: Vec<MappedFile>,
}

impl CoreNotes {
    /// Whether the file is shorter than its segments say.
    pub fn truncated(&self) -> bool {
        self.file_len < self.extent
    }

    /// The file mapped at the program's entry point: the executable.
    pub fn executable(&self) -> Option<&str> {
        let entry = self.entry?;
        self.files
            .iter()
            .find(|f| f.start <= entry && entry < f.end)
            .map(|f| f.name.as_str())
    }

    /// The architecture's name, as the report spells it.
    pub fn architecture(&self) -> String {
        architecture(self.machine)
    }
}

/// `x86_64` for EM_X86_64, and so on (`machine N` when unknown here).
pub fn architecture(machine: u16) -> String {
    match machine {
        EM_386 => "i386".into(),
        EM_X86_64 => "x86_64".into(),
        EM_AARCH64 => "aarch64".into(),
        40 => "arm".into(),
        8 => "mips".into(),
        20 => "ppc".into(),
        21 => "ppc64".into(),
        22 => "s390".into(),
        243 => "riscv".into(),
        258 => "loongarch".into(),
        other => format!("machine {other}"),
    }
}

/// The DWARF register number of the stack pointer on `machine`.
pub fn stack_pointer_regno(machine: u16) -> Option<u32> {
    match machine {
        EM_X86_64 => Some(7),
        EM_386 => Some(4),
        EM_AARCH64 => Some(31),
        40 => Some(13),
        21 | 20 => Some(1),
        22 => Some(15),
        243 => Some(2),
        _ => None,
    }
}

/// Reads the core's headers and notes; `Err` says why the core cannot be
/// analyzed.
pub fn read(
    core: &mut dyn CoreRead,
    file_len: u64,
    limits: &NoteLimits,
) -> Result<CoreNotes, String> {
    let header = elf::parse_header_within(core, MAX_PHDRS)
        .map_err(|e| format!("reading the core's headers: {}", e.0))?;
    let format = header.format;
    let mut ident = [0u8; 20];
    if core.read_at(0, &mut ident).map_err(|e| e.to_string())? < 20 {
        return Err("the file ends inside its ELF header".into());
    }
    let machine = format.u16(&ident, 18).unwrap_or(0);
    let extent = header
        .segments
        .iter()
        .map(|s| s.offset.saturating_add(s.filesz))
        .max()
        .unwrap_or(0);
    let mut notes = CoreNotes {
        format,
        machine,
        segments: header.segments.clone(),
        file_len,
        extent,
        threads: Vec::new(),
        siginfo: None,
        psinfo: None,
        entry: None,
        files: Vec::new(),
    };
    let note_segments: Vec<Segment> = header
        .segments
        .iter()
        .filter(|s| s.kind == PT_NOTE)
        .copied()
        .collect();
    if note_segments.is_empty() {
        return Err("the core has no notes (no PT_NOTE segment)".into());
    }
    let mut seen = 0usize;
    for segment in note_segments {
        let end = segment.offset.saturating_add(segment.filesz);
        if end > file_len {
            return Err(format!(
                "the core is truncated: its notes end at byte {end}, the file at byte {file_len}"
            ));
        }
        walk_notes(core, segment, limits, &mut seen, &mut notes)?;
    }
    if notes.threads.is_empty() {
        return Err("the core has no thread (no NT_PRSTATUS note)".into());
    }
    check_crashing_stack(&notes)?;
    Ok(notes)
}

/// Reads `len` bytes at `offset`, all of them or an error.
fn read_exact(
    core: &mut dyn CoreRead,
    offset: u64,
    len: u64,
    what: &str,
) -> Result<Vec<u8>, String> {
    let len = usize::try_from(len).map_err(|_| format!("{what} is too large"))?;
    let mut buf = vec![0u8; len];
    let n = core
        .read_at(offset, &mut buf)
        .map_err(|e| format!("reading {what} at byte {offset}: {e}"))?;
    if n < len {
        return Err(format!(
            "the core is truncated: it ends inside {what} (byte {offset})"
        ));
    }
    Ok(buf)
}

fn walk_notes(
    core: &mut dyn CoreRead,
    segment: Segment,
    limits: &NoteLimits,
    seen: &mut usize,
    out: &mut CoreNotes,
) -> Result<(), String> {
    let format = out.format;
    let end = segment.offset + segment.filesz;
    let mut at = segment.offset;
    while at.saturating_add(12) <= end {
        *seen += 1;
        if *seen > limits.max_notes {
            return Err(format!(
                "the core has more than {} notes (a crafted core?)",
                limits.max_notes
            ));
        }
        let head = read_exact(core, at, 12, "a note header")?;
        let namesz = u64::from(format.u32(&head, 0).unwrap_or(0));
        let descsz = u64::from(format.u32(&head, 4).unwrap_or(0));
        let kind = format.u32(&head, 8).unwrap_or(0);
        let desc_at = at + 12 + namesz.div_ceil(4) * 4;
        let next = desc_at.saturating_add(descsz.div_ceil(4) * 4);
        if desc_at.saturating_add(descsz) > end {
            return Err(format!(
                "a note at byte {at} runs past its segment (name {namesz}, descriptor {descsz} bytes)"
            ));
        }
        // Only the kernel's own notes ("CORE", and "LINUX" for register
        // sets, which are not used here).
        let name = read_exact(core, at + 12, namesz.min(8), "a note name")?;
        let is_core = name.starts_with(b"CORE");
        if is_core {
            match kind {
                NT_PRSTATUS => {
                    if out.threads.len() >= limits.max_threads {
                        return Err(format!(
                            "the core claims more than {} threads (a crafted core?)",
                            limits.max_threads
                        ));
                    }
                    let desc =
                        read_exact(core, desc_at, descsz.min(MAX_SMALL_NOTE), "NT_PRSTATUS")?;
                    out.threads.push(prstatus(&desc, format, out.machine)?);
                }
                NT_SIGINFO if out.siginfo.is_none() => {
                    let desc = read_exact(core, desc_at, descsz.min(MAX_SMALL_NOTE), "NT_SIGINFO")?;
                    out.siginfo = siginfo(&desc, format);
                }
                NT_PRPSINFO if out.psinfo.is_none() => {
                    let desc =
                        read_exact(core, desc_at, descsz.min(MAX_SMALL_NOTE), "NT_PRPSINFO")?;
                    out.psinfo = psinfo(&desc, format, out.machine);
                }
                NT_AUXV if out.entry.is_none() => {
                    let desc = read_exact(core, desc_at, descsz.min(1 << 16), "NT_AUXV")?;
                    out.entry = auxv_entry(&desc, format);
                }
                NT_FILE if out.files.is_empty() && descsz <= MAX_NT_FILE => {
                    // The recover crate's parser walks a note segment: give
                    // it this one note.
                    let whole = read_exact(core, at, next.min(end) - at, "NT_FILE")?;
                    out.files = elf::parse_nt_file(&whole, format);
                }
                _ => {}
            }
        }
        if next <= at {
            break;
        }
        at = next;
    }
    Ok(())
}

fn prstatus(desc: &[u8], format: Format, machine: u16) -> Result<ThreadNote, String> {
    // struct elf_prstatus: elf_siginfo (12 bytes), pr_cursig (short, then
    // padding), pr_sigpend and pr_sighold (longs), then pr_pid.
    let (pid_at, regs_at) = if format.is64 { (32, 112) } else { (24, 72) };
    let tid = format
        .u32(desc, pid_at)
        .ok_or_else(|| format!("an NT_PRSTATUS note of {} bytes", desc.len()))?
        as i32;
    let signal = format.u16(desc, 12).unwrap_or(0);
    // The stack pointer's index in pr_reg (elf_gregset_t).
    let sp_index = match machine {
        EM_X86_64 => Some(19),
        EM_386 => Some(15),
        EM_AARCH64 => Some(31),
        _ => None,
    };
    let stack_pointer = sp_index.and_then(|i| {
        let word = if format.is64 { 8 } else { 4 };
        format.word(desc, regs_at + i * word)
    });
    Ok(ThreadNote {
        tid,
        signal,
        stack_pointer,
    })
}

fn siginfo(desc: &[u8], format: Format) -> Option<SigInfo> {
    // si_signo, si_errno, si_code, then (64-bit) padding to the union.
    let union_at = if format.is64 { 16 } else { 12 };
    Some(SigInfo {
        signo: format.u32(desc, 0)? as i32,
        errno: format.u32(desc, 4)? as i32,
        code: format.u32(desc, 8)? as i32,
        addr: format.word(desc, union_at).unwrap_or(0),
        pid: format.u32(desc, union_at).unwrap_or(0) as i32,
        uid: format.u32(desc, union_at + 4).unwrap_or(0),
    })
}

fn c_string(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

fn psinfo(desc: &[u8], format: Format, machine: u16) -> Option<PsInfo> {
    // struct elf_prpsinfo: four chars, (padding), pr_flag (long), uid and
    // gid (16 bits on i386), pid, ppid, pgrp, sid, fname[16], psargs[80].
    let (uid, gid, ids_at, fname_at) = if format.is64 {
        (format.u32(desc, 16)?, format.u32(desc, 20)?, 24, 40)
    } else if machine == EM_386 {
        (
            u32::from(format.u16(desc, 8)?),
            u32::from(format.u16(desc, 10)?),
            12,
            28,
        )
    } else {
        (format.u32(desc, 8)?, format.u32(desc, 12)?, 16, 32)
    };
    let fname = desc.get(fname_at..fname_at + 16)?;
    let psargs = desc.get(fname_at + 16..(fname_at + 96).min(desc.len()))?;
    Some(PsInfo {
        pid: format.u32(desc, ids_at)? as i32,
        ppid: format.u32(desc, ids_at + 4)? as i32,
        uid,
        gid,
        fname: c_string(fname),
        psargs: c_string(psargs).trim_end().to_string(),
    })
}

fn auxv_entry(desc: &[u8], format: Format) -> Option<u64> {
    const AT_ENTRY: u64 = 9;
    let word = if format.is64 { 8 } else { 4 };
    desc.chunks_exact(2 * word)
        .find_map(|pair| (format.word(pair, 0)? == AT_ENTRY).then(|| format.word(pair, word))?)
}

/// A core cut off before the crashing thread's stack cannot tell where it
/// was called from: refused, with the reason (a core merely missing other
/// memory is analyzed, and marked truncated).
fn check_crashing_stack(notes: &CoreNotes) -> Result<(), String> {
    if !notes.truncated() {
        return Ok(());
    }
    let Some(sp) = notes.threads.first().and_then(|t| t.stack_pointer) else {
        return Ok(());
    };
    let holding = notes
        .segments
        .iter()
        .find(|s| s.kind == 1 && s.vaddr <= sp && sp - s.vaddr < s.filesz);
    if let Some(segment) = holding {
        let at = segment.offset + (sp - segment.vaddr);
        if at >= notes.file_len {
            return Err(format!(
                "the core is truncated ({} of {} bytes): the crashing thread's stack (at {sp:#x}) is not in it",
                notes.file_len, notes.extent
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::synthetic::{self, CoreBuilder, Registers};

    fn build_core(notes: &[(&str, u32, Vec<u8>)], loads: &[(u64, Vec<u8>)]) -> Vec<u8> {
        let mut core = CoreBuilder::new();
        for (name, kind, desc) in notes {
            core = core.note(name, *kind, desc);
        }
        for (vaddr, bytes) in loads {
            core = core.load(*vaddr, bytes.clone());
        }
        core.build()
    }

    fn prstatus_desc(tid: i32, signal: u16, sp: u64) -> Vec<u8> {
        synthetic::prstatus(
            tid,
            signal,
            Registers {
                rsp: sp,
                ..Registers::default()
            },
        )
    }

    fn limits() -> NoteLimits {
        NoteLimits {
            max_threads: 8,
            max_notes: 64,
        }
    }

    fn read_bytes(core: &[u8]) -> Result<CoreNotes, String> {
        let mut reader: &[u8] = core;
        read(&mut reader, core.len() as u64, &limits())
    }

    #[test]
    fn threads_signal_and_process_are_read_crashing_thread_first() {
        let mut siginfo = vec![0u8; 128];
        siginfo[0..4].copy_from_slice(&11i32.to_le_bytes());
        siginfo[8..12].copy_from_slice(&1i32.to_le_bytes());
        siginfo[16..24].copy_from_slice(&0xdeadu64.to_le_bytes());
        let mut ps = vec![0u8; 136];
        ps[16..20].copy_from_slice(&1000u32.to_le_bytes());
        ps[20..24].copy_from_slice(&100u32.to_le_bytes());
        ps[24..28].copy_from_slice(&42i32.to_le_bytes());
        ps[40..45].copy_from_slice(b"crash");
        ps[56..63].copy_from_slice(b"crash x");
        let core = build_core(
            &[
                ("CORE", NT_PRSTATUS, prstatus_desc(42, 11, 0x7000)),
                ("CORE", NT_PRPSINFO, ps),
                ("CORE", NT_SIGINFO, siginfo),
                ("CORE", NT_PRSTATUS, prstatus_desc(43, 11, 0x8000)),
            ],
            &[(0x7000, vec![1; 64])],
        );
        let notes = read_bytes(&core).unwrap();
        assert_eq!(
            notes.threads.iter().map(|t| t.tid).collect::<Vec<_>>(),
            [42, 43]
        );
        assert_eq!(notes.threads[0].stack_pointer, Some(0x7000));
        let si = notes.siginfo.unwrap();
        assert_eq!((si.signo, si.code, si.addr), (11, 1, 0xdead));
        let ps = notes.psinfo.clone().unwrap();
        assert_eq!((ps.pid, ps.uid, ps.gid), (42, 1000, 100));
        assert_eq!(
            (ps.fname.as_str(), ps.psargs.as_str()),
            ("crash", "crash x")
        );
        assert!(!notes.truncated());
    }

    #[test]
    fn hostile_cores_are_refused_with_the_reason() {
        // More threads than the limit.
        let many: Vec<_> = (0..9)
            .map(|i| ("CORE", NT_PRSTATUS, prstatus_desc(i, 11, 0)))
            .collect();
        let err = read_bytes(&build_core(&many, &[])).unwrap_err();
        assert!(err.contains("more than 8 threads"), "{err}");
        // More notes than the limit.
        let noise: Vec<_> = (0..65).map(|_| ("X", 99, vec![0u8; 4])).collect();
        let err = read_bytes(&build_core(&noise, &[])).unwrap_err();
        assert!(err.contains("more than 64 notes"), "{err}");
        // Cut inside the notes.
        let core = build_core(
            &[("CORE", NT_PRSTATUS, prstatus_desc(1, 11, 0x7000))],
            &[(0x7000, vec![1; 4096])],
        );
        let err = read_bytes(&core[..300]).unwrap_err();
        assert!(err.contains("truncated"), "{err}");
        // Cut before the crashing thread's stack.
        let err = read_bytes(&core[..core.len() - 4096]).unwrap_err();
        assert!(err.contains("stack (at 0x7000) is not in it"), "{err}");
        // Cut after it: analyzed, marked truncated.
        let notes = read_bytes(&core[..core.len() - 100]).unwrap();
        assert!(notes.truncated());
        // No thread at all.
        let err = read_bytes(&build_core(&[("CORE", 99, vec![0; 8])], &[])).unwrap_err();
        assert!(err.contains("no thread"), "{err}");
        // Not a core.
        assert!(read_bytes(b"not an ELF file at all, not at all").is_err());
    }
}
