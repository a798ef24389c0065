//! Small ELF cores built from parts (x86-64, little-endian), for the
//! tests and the fuzz target: what a crafted core can claim, without a
//! crash to make it. Not used by the analysis itself.

use std::io::{self, Write};

const NT_PRSTATUS: u32 = 1;
const NT_PRPSINFO: u32 = 3;
const NT_SIGINFO: u32 = 0x5349_4749;

/// The x86-64 registers a thread's NT_PRSTATUS gives here.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Registers {
    pub rip: u64,
    pub rsp: u64,
    pub rbp: u64,
}

/// An x86-64 NT_PRSTATUS descriptor (336 bytes).
pub fn prstatus(tid: i32, signal: u16, regs: Registers) -> Vec<u8> {
    let mut desc = vec![0u8; 336];
    desc[12..14].copy_from_slice(&signal.to_le_bytes());
    desc[32..36].copy_from_slice(&tid.to_le_bytes());
    let reg = |desc: &mut Vec<u8>, index: usize, value: u64| {
        let at = 112 + index * 8;
        desc[at..at + 8].copy_from_slice(&value.to_le_bytes());
    };
    reg(&mut desc, 4, regs.rbp);
    reg(&mut desc, 16, regs.rip);
    reg(&mut desc, 19, regs.rsp);
    desc
}

/// One note, as the kernel lays it out (4-byte alignment).
pub fn note(name: &str, kind: u32, desc: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(desc.len() + name.len() + 16);
    let mut name = name.as_bytes().to_vec();
    name.push(0);
    bytes.extend((name.len() as u32).to_le_bytes());
    bytes.extend((desc.len() as u32).to_le_bytes());
    bytes.extend(kind.to_le_bytes());
    bytes.extend(&name);
    bytes.resize(bytes.len().next_multiple_of(4), 0);
    bytes.extend(desc);
    bytes.resize(bytes.len().next_multiple_of(4), 0);
    bytes
}

/// A core of parts: notes, then memory segments.
#[derive(Debug, Clone, Default)]
pub struct CoreBuilder {
    notes: Vec<u8>,
    loads: Vec<(u64, Vec<u8>)>,
}

impl CoreBuilder {
    pub fn new() -> CoreBuilder {
        CoreBuilder::default()
    }

    /// Adds a note (`CORE` notes are the kernel's).
    pub fn note(mut self, name: &str, kind: u32, desc: &[u8]) -> CoreBuilder {
        self.notes.extend(note(name, kind, desc));
        self
    }

    /// Adds a thread (the first one added is the crashing thread).
    pub fn thread(self, tid: i32, signal: u16, regs: Registers) -> CoreBuilder {
        self.note("CORE", NT_PRSTATUS, &prstatus(tid, signal, regs))
    }

    /// Adds NT_SIGINFO: a signal raised by the kernel at `address`.
    pub fn siginfo(self, signo: i32, code: i32, address: u64) -> CoreBuilder {
        let mut desc = vec![0u8; 128];
        desc[0..4].copy_from_slice(&signo.to_le_bytes());
        desc[8..12].copy_from_slice(&code.to_le_bytes());
        desc[16..24].copy_from_slice(&address.to_le_bytes());
        self.note("CORE", NT_SIGINFO, &desc)
    }

    /// Adds NT_PRPSINFO.
    pub fn psinfo(self, pid: i32, uid: u32, command: &str) -> CoreBuilder {
        let mut desc = vec![0u8; 136];
        desc[16..20].copy_from_slice(&uid.to_le_bytes());
        desc[20..24].copy_from_slice(&uid.to_le_bytes());
        desc[24..28].copy_from_slice(&pid.to_le_bytes());
        let name = command.as_bytes();
        let n = name.len().min(15);
        desc[40..40 + n].copy_from_slice(&name[..n]);
        desc[56..56 + n].copy_from_slice(&name[..n]);
        self.note("CORE", NT_PRPSINFO, &desc)
    }

    /// Adds a segment of memory at `vaddr`.
    pub fn load(mut self, vaddr: u64, bytes: Vec<u8>) -> CoreBuilder {
        self.loads.push((vaddr, bytes));
        self
    }

    /// The core file's bytes.
    pub fn build(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write(&mut out).expect("writing to memory");
        out
    }

    /// Writes the core.
    pub fn write(&self, out: &mut impl Write) -> io::Result<()> {
        let loads: Vec<(u64, u64)> = self
            .loads
            .iter()
            .map(|(vaddr, bytes)| (*vaddr, bytes.len() as u64))
            .collect();
        write_headers(out, self.notes.len() as u64, &loads)?;
        out.write_all(&self.notes)?;
        for (_, bytes) in &self.loads {
            out.write_all(bytes)?;
        }
        Ok(())
    }
}

/// The ELF header and program headers of a core whose note segment is
/// `notes_len` bytes, followed by segments of `loads` (vaddr, size).
fn write_headers(out: &mut impl Write, notes_len: u64, loads: &[(u64, u64)]) -> io::Result<()> {
    let phnum = 1 + loads.len();
    let mut header = Vec::with_capacity(64 + 56 * phnum);
    header.extend(b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0");
    header.extend(4u16.to_le_bytes()); // ET_CORE
    header.extend(62u16.to_le_bytes()); // EM_X86_64
    header.extend(1u32.to_le_bytes());
    header.extend(0u64.to_le_bytes());
    header.extend(64u64.to_le_bytes()); // e_phoff
    header.extend(0u64.to_le_bytes());
    header.extend(0u32.to_le_bytes());
    header.extend(64u16.to_le_bytes());
    header.extend(56u16.to_le_bytes());
    header.extend((phnum as u16).to_le_bytes());
    header.extend([0u8; 6]);
    let mut offset = (64 + 56 * phnum) as u64;
    let mut push = |kind: u32, offset: u64, vaddr: u64, size: u64| {
        header.extend(kind.to_le_bytes());
        header.extend(if kind == 1 { 7u32 } else { 0 }.to_le_bytes());
        header.extend(offset.to_le_bytes());
        header.extend(vaddr.to_le_bytes());
        header.extend(0u64.to_le_bytes());
        header.extend(size.to_le_bytes());
        header.extend(size.to_le_bytes());
        header.extend(if kind == 1 { 4096u64 } else { 4 }.to_le_bytes());
    };
    push(4, offset, 0, notes_len);
    offset += notes_len;
    for &(vaddr, size) in loads {
        push(1, offset, vaddr, size);
        offset += size;
    }
    out.write_all(&header)
}

/// A crashing thread whose frame pointer points at itself, with a return
/// address beside it, in a core without modules (libdwfl's frame-pointer
/// fallback is the only unwinder that can walk it).
pub fn looping_stack() -> Vec<u8> {
    let stack = 0x7ffd_0000_0000u64;
    let rbp = stack + 0x100;
    let mut memory = vec![0u8; 0x1000];
    memory[0x100..0x108].copy_from_slice(&rbp.to_le_bytes());
    memory[0x108..0x110].copy_from_slice(&0x40_1234u64.to_le_bytes());
    CoreBuilder::new()
        .thread(
            4242,
            11,
            Registers {
                rip: 0x40_1000,
                rsp: stack + 0x80,
                rbp,
            },
        )
        .psinfo(4242, 1000, "looper")
        .siginfo(11, 1, 0)
        .load(stack, memory)
        .build()
}

/// Writes a core that claims `threads` threads (one NT_PRSTATUS each),
/// streamed: 2^20 of them take 356 MiB.
pub fn write_many_threads(out: &mut impl Write, threads: usize) -> io::Result<()> {
    let one = note("CORE", NT_PRSTATUS, &prstatus(1, 11, Registers::default()));
    write_headers(out, (one.len() * threads) as u64, &[])?;
    let mut batch = Vec::with_capacity(one.len() * 1024);
    for i in 0..threads {
        let mut this = one.clone();
        // Distinct thread ids (the descriptor starts after 20 bytes).
        this[20 + 32..20 + 36].copy_from_slice(&(i as i32 + 1).to_le_bytes());
        batch.extend(this);
        if batch.len() >= one.len() * 1024 {
            out.write_all(&batch)?;
            batch.clear();
        }
    }
    out.write_all(&batch)
}

/// Turns a real core's crashing thread into one whose frame chain loops:
/// the frame its frame pointer (`rbp`) points at is made to point at
/// itself and to return into the crashing instruction's function, so that
/// unwind tables that find the caller through `rbp` (code built with frame
/// pointers) give the same frame again and again. x86-64 cores only.
pub fn make_frame_chain_loop(core: &mut [u8]) -> Result<(), String> {
    let u16_at = |b: &[u8], o: usize| u16::from_le_bytes(b[o..o + 2].try_into().unwrap());
    let u32_at = |b: &[u8], o: usize| u32::from_le_bytes(b[o..o + 4].try_into().unwrap());
    let u64_at = |b: &[u8], o: usize| u64::from_le_bytes(b[o..o + 8].try_into().unwrap());
    if core.len() < 64 || &core[..4] != b"\x7fELF" || u16_at(core, 18) != 62 {
        return Err("not an x86-64 ELF core".into());
    }
    let (phoff, phnum) = (u64_at(core, 32) as usize, u16_at(core, 56) as usize);
    let phdr = |i: usize| phoff + i * 56;
    let mut registers = None;
    for i in 0..phnum {
        let ph = phdr(i);
        if u32_at(core, ph) != 4 {
            continue;
        }
        let (mut at, end) = (
            u64_at(core, ph + 8) as usize,
            (u64_at(core, ph + 8) + u64_at(core, ph + 32)) as usize,
        );
        while at + 12 <= end && registers.is_none() {
            let (namesz, descsz, kind) = (
                u32_at(core, at) as usize,
                u32_at(core, at + 4) as usize,
                u32_at(core, at + 8),
            );
            let desc = at + 12 + namesz.next_multiple_of(4);
            if kind == NT_PRSTATUS {
                registers = Some((
                    u64_at(core, desc + 112 + 4 * 8),
                    u64_at(core, desc + 112 + 16 * 8),
                ));
            }
            at = desc + descsz.next_multiple_of(4);
        }
    }
    let (rbp, rip) = registers.ok_or("no NT_PRSTATUS")?;
    for i in 0..phnum {
        let ph = phdr(i);
        let (offset, vaddr, filesz) = (
            u64_at(core, ph + 8),
            u64_at(core, ph + 16),
            u64_at(core, ph + 32),
        );
        if u32_at(core, ph) == 1 && vaddr <= rbp && rbp + 16 <= vaddr + filesz {
            let at = (offset + (rbp - vaddr)) as usize;
            core[at..at + 8].copy_from_slice(&rbp.to_le_bytes());
            core[at + 8..at + 16].copy_from_slice(&(rip + 1).to_le_bytes());
            return Ok(());
        }
    }
    Err(format!(
        "the frame pointer {rbp:#x} is in no segment of the core"
    ))
}
