//! The crash ABI header lttng-ust puts at the start of every stream's
//! ring buffer mapping (`struct lttng_crash_abi`, lttng-ust's
//! `frontend_types.h`, filled by `init_crash_abi()`): a magic, then the
//! offsets, lengths and strides that locate the buffer's counters and
//! sub-buffer tables. It is read from the core's bytes and every field is
//! checked here, once, so that the walk over the buffer trusts only ranges
//! it can bound.
//!
//! Layout (packed, the writer's byte order, 124 bytes):
//!   0 magic[16]  16 mmap_length u64  24 endian u16  26 major u16  28 minor u16
//!  30 word_size u8  31 layout_type u8
//!  32 offset{prod, consumed, commit_hot_array, commit_hot_seq, buf_wsb_array,
//!     buf_wsb_id, sb_array, sb_array_shmp_offset, sb_backend_p_offset,
//!     content_size, packet_size} u32 each
//!  76 length{prod, consumed, commit_hot_seq, buf_wsb_id, sb_array_shmp_offset,
//!     sb_backend_p_offset, content_size, packet_size} u8 each
//!  84 stride{commit_hot_array, buf_wsb_array, sb_array} u32 each
//!  96 buf_size u64  104 subbuf_size u64  112 num_subbuf u64  120 mode u32

use std::fmt;

/// The magic as it is in memory (lttng-ust stores it xor'ed with 0xFF in its
/// own image, so that only a live buffer holds the plain bytes).
pub const MAGIC: [u8; 16] = [
    0x17, 0x7B, 0xF1, 0x77, 0xBF, 0x17, 0x7B, 0xF1, 0x77, 0xBF, 0x17, 0x7B, 0xF1, 0x77, 0xBF, 0x17,
];
/// Bytes of the header.
pub const HEADER_LEN: usize = 124;
const ENDIAN: u16 = 0x1234;
const ENDIAN_REVERSE: u16 = 0x3412;
const LAYOUT_UST: u8 = 0;
const LAYOUT_KERNEL: u8 = 1;
/// `RING_BUFFER_OVERWRITE` (flight recorder, snapshot sessions).
pub const MODE_OVERWRITE: u32 = 0;
/// `RING_BUFFER_DISCARD`.
pub const MODE_DISCARD: u32 = 1;
/// Bounds far above anything lttng accepts (lttng-tools caps a channel's
/// sub-buffers well below), so a hostile header cannot make the walk long.
const MAX_SUBBUF_SIZE: u64 = 1 << 32;
const MAX_NUM_SUBBUF: u64 = 1 << 20;
/// The smallest sub-buffer that can hold lttng-ust's packet header.
const MIN_SUBBUF_SIZE: u64 = 128;

/// Why a buffer's header cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AbiError(pub String);

impl fmt::Display for AbiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A field's place: offset from the buffer's start, and length in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field {
    pub offset: u64,
    pub len: u8,
}

/// A checked crash ABI header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    pub mmap_length: u64,
    pub big_endian: bool,
    pub major: u16,
    pub minor: u16,
    pub word_size: u8,
    pub prod: Field,
    pub consumed: Field,
    pub commit_hot_array: u64,
    pub commit_hot_seq: Field,
    pub buf_wsb_array: u64,
    pub buf_wsb_id: Field,
    pub sb_array: u64,
    pub sb_array_shmp_offset: Field,
    pub sb_backend_p_offset: Field,
    /// Within a packet: where content_size and packet_size (in bits) are;
    /// length 0 when the client has none.
    pub content_size: Field,
    pub packet_size: Field,
    pub stride_commit_hot: u64,
    pub stride_wsb: u64,
    pub stride_sb: u64,
    pub buf_size: u64,
    pub subbuf_size: u64,
    pub num_subbuf: u64,
    pub mode: u32,
}

impl Layout {
    /// Sub-buffers allocated: one more than the writer's in overwrite mode
    /// (the reader's, swapped in and out), as lttng-ust 2.13 allocates them.
    pub fn num_subbuf_alloc(&self) -> u64 {
        if self.mode == MODE_OVERWRITE {
            self.num_subbuf + 1
        } else {
            self.num_subbuf
        }
    }

    /// Reads an unsigned integer of `len` bytes (1, 2, 4 or 8) in the
    /// writer's byte order.
    pub fn int(&self, bytes: &[u8]) -> u64 {
        let mut v: u64 = 0;
        if self.big_endian {
            for b in bytes {
                v = (v << 8) | u64::from(*b);
            }
        } else {
            for b in bytes.iter().rev() {
                v = (v << 8) | u64::from(*b);
            }
        }
        v
    }

    /// `value` as `len` bytes in the writer's byte order.
    pub fn encode(&self, value: u64, len: usize) -> Vec<u8> {
        let le = value.to_le_bytes();
        let mut out: Vec<u8> = le[..len.min(8)].to_vec();
        if self.big_endian {
            out.reverse();
        }
        out
    }
}

/// True when `bytes` start with the crash ABI magic.
pub fn has_magic(bytes: &[u8]) -> bool {
    bytes.len() >= MAGIC.len() && bytes[..MAGIC.len()] == MAGIC
}

fn is_int_len(len: u8) -> bool {
    matches!(len, 1 | 2 | 4 | 8)
}

/// Parses and checks a header; `mapping_len` is the size of the mapping it
/// starts (the segment's memory size), which bounds every offset.
pub fn parse(bytes: &[u8], mapping_len: u64) -> Result<Layout, AbiError> {
    let err = |m: String| Err(AbiError(m));
    if !has_magic(bytes) {
        return err("no crash ABI magic".into());
    }
    if bytes.len() < HEADER_LEN {
        return err(format!(
            "the crash ABI header is cut ({} of {HEADER_LEN} bytes)",
            bytes.len()
        ));
    }
    let big_endian = match u16::from_le_bytes([bytes[24], bytes[25]]) {
        ENDIAN => false,
        ENDIAN_REVERSE => true,
        other => return err(format!("unknown endianness mark {other:#06x}")),
    };
    let rd = |at: usize, len: usize| -> u64 {
        let s = &bytes[at..at + len];
        let mut v: u64 = 0;
        if big_endian {
            for b in s {
                v = (v << 8) | u64::from(*b);
            }
        } else {
            for b in s.iter().rev() {
                v = (v << 8) | u64::from(*b);
            }
        }
        v
    };
    let major = rd(26, 2) as u16;
    let minor = rd(28, 2) as u16;
    let word_size = bytes[30];
    match bytes[31] {
        LAYOUT_UST => {}
        LAYOUT_KERNEL => return err("a kernel (lttng-modules) buffer, not a user-space one".into()),
        other => return err(format!("unknown layout type {other}")),
    }
    if (major, minor) != (0, 0) {
        return err(format!(
            "crash ABI {major}.{minor}: only 0.0 (lttng-ust 2.x up to 2.14) is known; \
             newer versions lay sub-buffers out differently"
        ));
    }
    if word_size != 4 && word_size != 8 {
        return err(format!("word size {word_size} (4 or 8 expected)"));
    }
    let off = |i: usize| rd(32 + 4 * i, 4);
    let len = |i: usize| bytes[76 + i];
    let field = |o: usize, l: usize| Field {
        offset: off(o),
        len: len(l),
    };
    let layout = Layout {
        mmap_length: rd(16, 8),
        big_endian,
        major,
        minor,
        word_size,
        prod: field(0, 0),
        consumed: field(1, 1),
        commit_hot_array: off(2),
        commit_hot_seq: field(3, 2),
        buf_wsb_array: off(4),
        buf_wsb_id: field(5, 3),
        sb_array: off(6),
        sb_array_shmp_offset: field(7, 4),
        sb_backend_p_offset: field(8, 5),
        content_size: field(9, 6),
        packet_size: field(10, 7),
        stride_commit_hot: rd(84, 4),
        stride_wsb: rd(88, 4),
        stride_sb: rd(92, 4),
        buf_size: rd(96, 8),
        subbuf_size: rd(104, 8),
        num_subbuf: rd(112, 8),
        mode: rd(120, 4) as u32,
    };
    check(&layout, mapping_len)?;
    Ok(layout)
}

fn check(l: &Layout, mapping_len: u64) -> Result<(), AbiError> {
    let err = |m: String| Err(AbiError(m));
    if l.mmap_length < HEADER_LEN as u64 || l.mmap_length > mapping_len {
        return err(format!(
            "mmap_length {} does not fit its {mapping_len}-byte mapping",
            l.mmap_length
        ));
    }
    if l.mode != MODE_OVERWRITE && l.mode != MODE_DISCARD {
        return err(format!("unknown buffer mode {}", l.mode));
    }
    if !l.subbuf_size.is_power_of_two()
        || !(MIN_SUBBUF_SIZE..=MAX_SUBBUF_SIZE).contains(&l.subbuf_size)
    {
        return err(format!(
            "sub-buffer size {} is not a power of two in range",
            l.subbuf_size
        ));
    }
    if !l.num_subbuf.is_power_of_two() || l.num_subbuf > MAX_NUM_SUBBUF {
        return err(format!(
            "sub-buffer count {} is not a power of two in range",
            l.num_subbuf
        ));
    }
    if l.subbuf_size.checked_mul(l.num_subbuf) != Some(l.buf_size) {
        return err(format!(
            "buffer size {} is not {} sub-buffers of {}",
            l.buf_size, l.num_subbuf, l.subbuf_size
        ));
    }
    if l.buf_size > l.mmap_length {
        return err(format!(
            "a {}-byte buffer cannot be in a {}-byte mapping",
            l.buf_size, l.mmap_length
        ));
    }
    let word = l.word_size;
    for (name, f) in [("prod_offset", l.prod), ("consumed_offset", l.consumed)] {
        if f.len != word {
            return err(format!("{name} is {} bytes, not a {word}-byte word", f.len));
        }
        in_mapping(name, f.offset, u64::from(f.len), l.mmap_length)?;
    }
    for (name, f) in [
        ("commit_hot seq", l.commit_hot_seq),
        ("buf_wsb id", l.buf_wsb_id),
        ("sb_array shmp offset", l.sb_array_shmp_offset),
        ("backend pages p offset", l.sb_backend_p_offset),
    ] {
        if !is_int_len(f.len) || f.len > word {
            return err(format!("{name} has length {}", f.len));
        }
    }
    // The arrays: every element's field within the mapping.
    let arrays = [
        (
            "commit_hot",
            l.commit_hot_array,
            l.stride_commit_hot,
            l.commit_hot_seq,
            l.num_subbuf,
        ),
        (
            "buf_wsb",
            l.buf_wsb_array,
            l.stride_wsb,
            l.buf_wsb_id,
            l.num_subbuf,
        ),
        (
            "sb_array",
            l.sb_array,
            l.stride_sb,
            l.sb_array_shmp_offset,
            l.num_subbuf_alloc(),
        ),
    ];
    for (name, base, stride, f, count) in arrays {
        if stride < u64::from(f.len) || f.offset + u64::from(f.len) > stride {
            return err(format!(
                "{name}: a {}-byte field at {} does not fit a {stride}-byte element",
                f.len, f.offset
            ));
        }
        let Some(size) = stride.checked_mul(count) else {
            return err(format!(
                "{name}: {count} elements of {stride} bytes overflow"
            ));
        };
        in_mapping(name, base, size, l.mmap_length)?;
    }
    for (name, f) in [
        ("content_size", l.content_size),
        ("packet_size", l.packet_size),
    ] {
        if f.len != 0 && (!is_int_len(f.len) || f.offset + u64::from(f.len) > l.subbuf_size) {
            return err(format!(
                "the packet's {name} field ({} bytes at {}) is not in a sub-buffer",
                f.len, f.offset
            ));
        }
    }
    Ok(())
}

fn in_mapping(name: &str, offset: u64, len: u64, mmap_length: u64) -> Result<(), AbiError> {
    match offset.checked_add(len) {
        Some(end) if end <= mmap_length && offset >= HEADER_LEN as u64 => Ok(()),
        _ => Err(AbiError(format!(
            "{name} ({len} bytes at {offset}) is not within the {mmap_length}-byte buffer"
        ))),
    }
}
