//! The notes of the core, laid out as the x86_64 kernel writes them
//! (fs/binfmt_elf.c, `fill_note_info`/`write_note_info`): for the first
//! thread `NT_PRSTATUS`, then the process's `NT_PRPSINFO`, `NT_SIGINFO`,
//! `NT_AUXV` and `NT_FILE`, then its `NT_FPREGSET` and `NT_X86_XSTATE`; for
//! every other thread `NT_PRSTATUS`, `NT_FPREGSET`, `NT_X86_XSTATE`; last,
//! once, `NT_X86_XSAVE_LAYOUT` (where each XSAVE component lies in the
//! `NT_X86_XSTATE` buffers, from CPUID, as kernels since 6.12 add it).

use crate::procfs::Mapping;

pub const NT_PRSTATUS: u32 = 1;
pub const NT_FPREGSET: u32 = 2;
pub const NT_PRPSINFO: u32 = 3;
pub const NT_AUXV: u32 = 6;
pub const NT_SIGINFO: u32 = 0x5349_4749;
pub const NT_FILE: u32 = 0x4649_4c45;
pub const NT_X86_XSTATE: u32 = 0x202;
pub const NT_X86_XSAVE_LAYOUT: u32 = 0x205;

/// `sizeof(struct elf_prstatus)` on x86_64.
pub const PRSTATUS_SIZE: usize = 336;
/// `sizeof(struct elf_prpsinfo)` on x86_64.
pub const PRPSINFO_SIZE: usize = 136;

/// Clock ticks per second of `/proc`'s times (`USER_HZ`).
const USER_HZ: u64 = 100;

/// What the notes say of the process.
#[derive(Debug, Clone, Default)]
pub struct ProcessInfo {
    pub pid: i32,
    pub ppid: i32,
    pub pgrp: i32,
    pub sid: i32,
    pub uid: u32,
    pub gid: u32,
    /// `comm` (at most 15 bytes are kept).
    pub name: Vec<u8>,
    /// The command line, NUL-separated.
    pub cmdline: Vec<u8>,
    pub state: char,
    pub nice: i64,
    /// `task->flags`.
    pub flags: u64,
    /// Children's times, in clock ticks.
    pub cutime: u64,
    pub cstime: u64,
}

/// What the notes say of one thread.
#[derive(Debug, Clone, Default)]
pub struct ThreadInfo {
    pub tid: i32,
    /// `struct user_regs_struct` as 27 words; zeroes when the thread never
    /// stopped.
    pub regs: [u64; 27],
    /// FXSAVE area (512 bytes), if read.
    pub fpregs: Option<Vec<u8>>,
    /// XSAVE buffer, if read.
    pub xstate: Option<Vec<u8>>,
    pub sig_pending: u64,
    pub sig_blocked: u64,
    /// The signal it was about to take, and its siginfo.
    pub signal: i32,
    pub siginfo: Option<[u8; 128]>,
    /// In clock ticks.
    pub utime: u64,
    pub stime: u64,
}

/// Appends one note: name, type, description, each padded to 4 bytes.
pub fn push_note(out: &mut Vec<u8>, name: &str, kind: u32, desc: &[u8]) {
    let name_bytes = name.as_bytes();
    out.extend_from_slice(&(name_bytes.len() as u32 + 1).to_le_bytes());
    out.extend_from_slice(&(desc.len() as u32).to_le_bytes());
    out.extend_from_slice(&kind.to_le_bytes());
    out.extend_from_slice(name_bytes);
    out.push(0);
    pad4(out);
    out.extend_from_slice(desc);
    pad4(out);
}

fn pad4(out: &mut Vec<u8>) {
    while out.len() & 3 != 0 {
        out.push(0);
    }
}

fn put(buf: &mut [u8], offset: usize, bytes: &[u8]) {
    buf[offset..offset + bytes.len()].copy_from_slice(bytes);
}

/// Clock ticks as a `struct timeval` (16 bytes).
fn timeval(ticks: u64) -> [u8; 16] {
    let mut out = [0u8; 16];
    let secs = ticks / USER_HZ;
    let usecs = (ticks % USER_HZ) * (1_000_000 / USER_HZ);
    out[..8].copy_from_slice(&secs.to_le_bytes());
    out[8..].copy_from_slice(&usecs.to_le_bytes());
    out
}

/// `struct elf_prstatus` of a thread.
pub fn prstatus(process: &ProcessInfo, thread: &ThreadInfo) -> Vec<u8> {
    let mut d = vec![0u8; PRSTATUS_SIZE];
    // pr_info {si_signo, si_code, si_errno}, pr_cursig.
    put(&mut d, 0, &thread.signal.to_le_bytes());
    put(&mut d, 12, &(thread.signal as i16).to_le_bytes());
    put(&mut d, 16, &thread.sig_pending.to_le_bytes());
    put(&mut d, 24, &thread.sig_blocked.to_le_bytes());
    put(&mut d, 32, &thread.tid.to_le_bytes());
    put(&mut d, 36, &process.ppid.to_le_bytes());
    put(&mut d, 40, &process.pgrp.to_le_bytes());
    put(&mut d, 44, &process.sid.to_le_bytes());
    put(&mut d, 48, &timeval(thread.utime));
    put(&mut d, 64, &timeval(thread.stime));
    put(&mut d, 80, &timeval(process.cutime));
    put(&mut d, 96, &timeval(process.cstime));
    for (i, word) in thread.regs.iter().enumerate() {
        put(&mut d, 112 + i * 8, &word.to_le_bytes());
    }
    put(
        &mut d,
        328,
        &i32::from(thread.fpregs.is_some()).to_le_bytes(),
    );
    d
}

/// `struct elf_prpsinfo` of the process.
pub fn prpsinfo(process: &ProcessInfo) -> Vec<u8> {
    let mut d = vec![0u8; PRPSINFO_SIZE];
    // As the kernel: pr_state is the state's index in "RSDTZW".
    let index = "RSDTZW"
        .find(process.state.to_ascii_uppercase())
        .unwrap_or(0);
    d[0] = index as u8;
    d[1] = process.state as u8;
    d[2] = u8::from(process.state == 'Z');
    d[3] = process.nice as i8 as u8;
    put(&mut d, 8, &process.flags.to_le_bytes());
    put(&mut d, 16, &process.uid.to_le_bytes());
    put(&mut d, 20, &process.gid.to_le_bytes());
    put(&mut d, 24, &process.pid.to_le_bytes());
    put(&mut d, 28, &process.ppid.to_le_bytes());
    put(&mut d, 32, &process.pgrp.to_le_bytes());
    put(&mut d, 36, &process.sid.to_le_bytes());
    let name = &process.name[..process.name.len().min(15)];
    put(&mut d, 40, name);
    // pr_psargs: the command line, NULs as spaces, at most 79 bytes.
    let mut args: Vec<u8> = process
        .cmdline
        .iter()
        .take(79)
        .map(|&b| if b == 0 { b' ' } else { b })
        .collect();
    while args.last() == Some(&b' ') {
        args.pop();
    }
    put(&mut d, 56, &args);
    d
}

/// `NT_FILE`: every file mapping, its range and file offset (in pages),
/// then the paths.
pub fn file_note(mappings: &[Mapping]) -> Vec<u8> {
    let files: Vec<&Mapping> = mappings.iter().filter(|m| m.is_file()).collect();
    let mut d = Vec::new();
    d.extend_from_slice(&(files.len() as u64).to_le_bytes());
    d.extend_from_slice(&crate::regions::PAGE_SIZE.to_le_bytes());
    for m in &files {
        d.extend_from_slice(&m.start.to_le_bytes());
        d.extend_from_slice(&m.end.to_le_bytes());
        d.extend_from_slice(&(m.offset / crate::regions::PAGE_SIZE).to_le_bytes());
    }
    for m in &files {
        d.extend_from_slice(m.path.as_bytes());
        d.push(0);
    }
    d
}

/// `NT_X86_XSAVE_LAYOUT`: for each extended component the XSAVE buffer
/// holds (`xfeatures` of its software-reserved bytes), its number, size and
/// offset, as the kernel writes them.
pub fn xsave_layout(xstate: &[u8]) -> Option<Vec<u8>> {
    // fxsave's sw_reserved: magic1, extended_size, xfeatures, xstate_size.
    let magic = u32::from_le_bytes(xstate.get(464..468)?.try_into().ok()?);
    if magic != 0x4650_5853 {
        return None;
    }
    let xfeatures = u64::from_le_bytes(xstate.get(472..480)?.try_into().ok()?);
    let mut d = Vec::new();
    for component in 2..64u32 {
        if xfeatures & (1 << component) == 0 {
            continue;
        }
        let (size, offset) = crate::sys::xsave_component(component);
        d.extend_from_slice(&component.to_le_bytes());
        d.extend_from_slice(&size.to_le_bytes());
        d.extend_from_slice(&offset.to_le_bytes());
        d.extend_from_slice(&0u32.to_le_bytes());
    }
    (!d.is_empty()).then_some(d)
}

/// Every note of the core, in the kernel's order. `threads[0]` is the one
/// gdb shows first.
pub fn build(
    process: &ProcessInfo,
    threads: &[ThreadInfo],
    auxv: &[u8],
    mappings: &[Mapping],
) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, thread) in threads.iter().enumerate() {
        push_note(&mut out, "CORE", NT_PRSTATUS, &prstatus(process, thread));
        if i == 0 {
            push_note(&mut out, "CORE", NT_PRPSINFO, &prpsinfo(process));
            if let Some(siginfo) = &thread.siginfo {
                push_note(&mut out, "CORE", NT_SIGINFO, siginfo);
            }
            push_note(&mut out, "CORE", NT_AUXV, auxv);
            push_note(&mut out, "CORE", NT_FILE, &file_note(mappings));
        }
        if let Some(fpregs) = &thread.fpregs {
            push_note(&mut out, "CORE", NT_FPREGSET, fpregs);
        }
        if let Some(xstate) = &thread.xstate {
            push_note(&mut out, "LINUX", NT_X86_XSTATE, xstate);
        }
    }
    if let Some(layout) = threads
        .iter()
        .find_map(|t| t.xstate.as_deref())
        .and_then(xsave_layout)
    {
        push_note(&mut out, "LINUX", NT_X86_XSAVE_LAYOUT, &layout);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_note_is_padded_as_elf_wants() {
        let mut out = Vec::new();
        push_note(&mut out, "CORE", 1, &[1, 2, 3]);
        assert_eq!(out.len(), 12 + 8 + 4);
        assert_eq!(&out[..4], &5u32.to_le_bytes());
        assert_eq!(&out[4..8], &3u32.to_le_bytes());
        assert_eq!(&out[12..17], b"CORE\0");
        assert_eq!(&out[20..23], &[1, 2, 3]);
    }

    #[test]
    fn prpsinfo_holds_the_name_and_arguments() {
        let info = ProcessInfo {
            pid: 42,
            name: b"a-very-long-process-name".to_vec(),
            cmdline: b"prog\0--flag\0x\0".to_vec(),
            state: 'S',
            ..ProcessInfo::default()
        };
        let d = prpsinfo(&info);
        assert_eq!(d.len(), PRPSINFO_SIZE);
        assert_eq!((d[0], d[1]), (1, b'S'));
        assert_eq!(&d[40..56], b"a-very-long-pro\0");
        assert_eq!(&d[56..70], b"prog --flag x\0");
    }
}
