//! What a core file says: the process it is from, its complete length, and
//! gdb's backtrace of it.

use crate::process::run_bounded;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// What an ELF core file says about the process it is from.
#[derive(Debug)]
pub struct CoreIdentity {
    pub pid: i32,
    pub uid: u32,
    pub fname: Vec<u8>,
}

/// Checks that `bytes` start an x86-64 ELF core file (ET_CORE) and reads
/// its NT_PRPSINFO note.
pub fn elf_core_identity(bytes: &[u8]) -> CoreIdentity {
    assert!(bytes.len() > 64, "core of {} bytes", bytes.len());
    assert_eq!(&bytes[..4], b"\x7fELF", "not an ELF file");
    assert_eq!(bytes[4], 2, "not ELF64");
    let u16_at = |o: usize| u16::from_le_bytes(bytes[o..o + 2].try_into().unwrap());
    let u32_at = |o: usize| u32::from_le_bytes(bytes[o..o + 4].try_into().unwrap());
    let u64_at = |o: usize| u64::from_le_bytes(bytes[o..o + 8].try_into().unwrap()) as usize;
    assert_eq!(u16_at(16), 4, "e_type is not ET_CORE");
    let (phoff, phentsize, phnum) = (u64_at(32), u16_at(54) as usize, u16_at(56) as usize);
    for index in 0..phnum {
        let ph = phoff + index * phentsize;
        if u32_at(ph) != 4 {
            continue; // not PT_NOTE
        }
        let (mut at, end) = (u64_at(ph + 8), u64_at(ph + 8) + u64_at(ph + 32));
        while at + 12 <= end {
            let (namesz, descsz, kind) =
                (u32_at(at) as usize, u32_at(at + 4) as usize, u32_at(at + 8));
            let desc = at + 12 + namesz.div_ceil(4) * 4;
            if kind == 3 {
                // NT_PRPSINFO: pr_uid at 16, pr_pid at 24, pr_fname[16] at 40.
                let fname = &bytes[desc + 40..desc + 56];
                let len = fname.iter().position(|&b| b == 0).unwrap_or(16);
                return CoreIdentity {
                    pid: u32_at(desc + 24) as i32,
                    uid: u32_at(desc + 16),
                    fname: fname[..len].to_vec(),
                };
            }
            at = desc + descsz.div_ceil(4) * 4;
        }
    }
    panic!("no NT_PRPSINFO note in the core");
}

/// Where the last segment of an ELF64 core ends (its program headers'
/// largest `p_offset + p_filesz`): the length of a complete core file.
pub fn elf_core_extent(bytes: &[u8]) -> u64 {
    let u16_at = |o: usize| u16::from_le_bytes(bytes[o..o + 2].try_into().unwrap());
    let u64_at = |o: usize| u64::from_le_bytes(bytes[o..o + 8].try_into().unwrap());
    let (phoff, phentsize, phnum) = (
        u64_at(32) as usize,
        u16_at(54) as usize,
        u16_at(56) as usize,
    );
    (0..phnum)
        .map(|index| {
            let ph = phoff + index * phentsize;
            u64_at(ph + 8) + u64_at(ph + 32)
        })
        .max()
        .unwrap_or(0)
}

/// gdb's backtrace of `core` (for `exe`).
pub fn gdb_backtrace(exe: &Path, core: &Path) -> String {
    let output = run_bounded(
        Command::new("gdb")
            .args(["-nx", "-batch", "-ex", "bt"])
            .arg(exe)
            .arg(core),
        Duration::from_secs(120),
    );
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}
