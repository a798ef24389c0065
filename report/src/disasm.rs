//! The faulting instruction in words: x86 and x86-64 bytes decoded with
//! iced-x86 and written in AT&T syntax (what gdb and objdump print on
//! Linux by default).

use iced_x86::{Decoder, DecoderOptions, Formatter, GasFormatter};

/// The first instruction of `bytes`, at run-time address `address`, for an
/// x86 core of `bitness` 32 or 64; `None` when it does not decode (bytes
/// that are not code, or cut short).
pub fn x86(bytes: &[u8], address: u64, bitness: u32) -> Option<String> {
    let mut decoder = Decoder::with_ip(bitness, bytes, address, DecoderOptions::NONE);
    if !decoder.can_decode() {
        return None;
    }
    let instruction = decoder.decode();
    if instruction.is_invalid() {
        return None;
    }
    let mut formatter = GasFormatter::new();
    let mut text = String::new();
    formatter.format(&instruction, &mut text);
    Some(text)
}

/// How many bytes the first instruction takes (all of `bytes` when it
/// does not decode).
pub fn x86_length(bytes: &[u8], bitness: u32) -> usize {
    let mut decoder = Decoder::new(bitness, bytes, DecoderOptions::NONE);
    let instruction = decoder.decode();
    if instruction.is_invalid() {
        bytes.len()
    } else {
        instruction.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_load_through_a_null_pointer_reads_as_gdb_prints_it() {
        // mov (%rdi),%eax ; then anything.
        assert_eq!(
            x86(&[0x8b, 0x07, 0x90], 0x1000, 64).as_deref(),
            Some("mov (%rdi),%eax")
        );
        assert_eq!(x86_length(&[0x8b, 0x07, 0x90], 64), 2);
        assert_eq!(x86(&[0x0f], 0, 64), None);
        assert_eq!(x86(&[], 0, 64), None);
    }
}
