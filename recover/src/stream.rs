//! Rebuilding one stream's CTF packets from its ring buffer's bytes, as
//! lttng-crash does for a `--shm-path` file (lttng-tools `lttng-crash.c`,
//! `copy_crash_data()` / `copy_crash_subbuf()`): walk from the consumed to
//! the produced position one sub-buffer at a time; a sub-buffer whose
//! commit count says it is complete is kept whole (its packet header gives
//! its size), the one being written is cut at its contiguously committed
//! size and its header's content_size / packet_size are patched to say so.
//!
//! When the core was cut inside the buffer, the counters and tables (which
//! lttng-ust allocates after the sub-buffers) are lost: the complete
//! packets whose bytes survive are then found by their headers alone.

use crate::abi::{Field, Layout, HEADER_LEN, MODE_OVERWRITE};

/// The CTF packet magic, in the writer's byte order.
pub const CTF_MAGIC: u64 = 0xC1FC_1FC1;
/// lttng-ust's packet header up to and including packet_seq_num: magic,
/// uuid[16], stream_id u32, stream_instance_id u64, then the context's
/// timestamp_begin, timestamp_end, content_size, packet_size, packet_seq_num.
const PACKET_HEADER_MIN: u64 = 72;
const SEQ_NUM_AT: usize = 64;

/// One packet recovered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    pub uuid: [u8; 16],
    pub stream_id: u32,
    /// lttng-ust puts the CPU here.
    pub stream_instance_id: u64,
    pub seq_num: u64,
    /// The packet was being written: cut at its committed size.
    pub partial: bool,
    /// Its length in bytes (that of `data` when its bytes are kept).
    pub size: u64,
    /// Its bytes; empty when they were not kept (a summary's scan).
    pub data: Vec<u8>,
}

/// How the packets were found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// Through the buffer's positions and commit counts (lttng-crash's way).
    Counters,
    /// By their headers only: the counters were not in the core.
    Headers,
}

/// A stream's packets and what was noticed on the way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamPackets {
    pub packets: Vec<Packet>,
    pub method: Method,
    pub notes: Vec<String>,
}

struct View<'a> {
    layout: &'a Layout,
    bytes: &'a [u8],
    /// Whether the packets keep a copy of their bytes.
    keep_data: bool,
}

impl View<'_> {
    /// An integer of the buffer, or None when it is past the bytes the
    /// core holds (or its range overflows).
    fn int_at(&self, offset: u64, len: u8) -> Option<u64> {
        let start = usize::try_from(offset).ok()?;
        let end = start.checked_add(usize::from(len))?;
        Some(self.layout.int(self.bytes.get(start..end)?))
    }

    fn field(&self, f: Field) -> Option<u64> {
        self.int_at(f.offset, f.len)
    }

    fn element(&self, base: u64, stride: u64, index: u64, f: Field) -> Option<u64> {
        let at = base
            .checked_add(stride.checked_mul(index)?)?
            .checked_add(f.offset)?;
        self.int_at(at, f.len)
    }
}

/// Reads a packet header at `at` in `bytes`: uuid, stream id, instance id,
/// sequence number; None without the CTF magic.
fn header_at(layout: &Layout, bytes: &[u8], at: usize) -> Option<([u8; 16], u32, u64, u64)> {
    let h = bytes.get(at..at.checked_add(PACKET_HEADER_MIN as usize)?)?;
    if layout.int(&h[0..4]) != CTF_MAGIC {
        return None;
    }
    let uuid: [u8; 16] = h[4..20].try_into().ok()?;
    Some((
        uuid,
        layout.int(&h[20..24]) as u32,
        layout.int(&h[24..32]),
        layout.int(&h[SEQ_NUM_AT..SEQ_NUM_AT + 8]),
    ))
}

/// A packet size field (bits) as bytes, when it is one lttng-ust would
/// write for this buffer.
fn size_in_bytes(layout: &Layout, bytes: &[u8], at: usize, f: Field) -> Option<u64> {
    if f.len == 0 {
        return Some(layout.subbuf_size);
    }
    let start = at.checked_add(usize::try_from(f.offset).ok()?)?;
    let bits = layout.int(bytes.get(start..start.checked_add(usize::from(f.len))?)?);
    if bits % 8 != 0 {
        return None;
    }
    let size = bits / 8;
    (PACKET_HEADER_MIN..=layout.subbuf_size)
        .contains(&size)
        .then_some(size)
}

/// Recovers the packets of one buffer. `bytes` is what the core holds of
/// the mapping (shorter than `layout.mmap_length` when the core was cut).
pub fn recover_stream(layout: &Layout, bytes: &[u8]) -> StreamPackets {
    recover_stream_with(layout, bytes, true)
}

/// [`recover_stream`]; without `keep_data`, the packets are found and
/// measured but their bytes are not copied (memory stays that of the
/// buffer).
pub fn recover_stream_with(layout: &Layout, bytes: &[u8], keep_data: bool) -> StreamPackets {
    let view = View {
        layout,
        bytes,
        keep_data,
    };
    let mut notes = Vec::new();
    let available = bytes.len() as u64;
    if available < layout.mmap_length {
        notes.push(format!(
            "the core holds {available} of this buffer's {} bytes (cut)",
            layout.mmap_length
        ));
    }
    match by_counters(&view, &mut notes) {
        Some(packets) => StreamPackets {
            packets,
            method: Method::Counters,
            notes,
        },
        None => {
            notes.push(
                "its positions and commit counts are not in the core: only the complete \
                 packets found by their headers are recovered; the packet being written \
                 is lost"
                    .into(),
            );
            StreamPackets {
                packets: by_headers(layout, bytes, keep_data, &mut notes),
                method: Method::Headers,
                notes,
            }
        }
    }
}

/// lttng-crash's walk. None when the counters needed are past the cut.
fn by_counters(view: &View<'_>, notes: &mut Vec<String>) -> Option<Vec<Packet>> {
    let l = view.layout;
    let word_mask: u64 = if l.word_size == 4 {
        u64::from(u32::MAX)
    } else {
        u64::MAX
    };
    let prod = view.field(l.prod)?;
    let consumed = view.field(l.consumed)?;
    let subbuf = l.subbuf_size;
    let mut start = consumed;
    let distance = prod.wrapping_sub(consumed) & word_mask;
    if distance > l.buf_size {
        // Never the case for a sound buffer (the writer pushes the reader
        // in overwrite mode; the reader is behind by at most the buffer in
        // discard mode): keep the newest buffer's worth.
        notes.push(format!(
            "consumed position {consumed:#x} is {distance} bytes behind produced {prod:#x}, \
             more than the {}-byte buffer: only the newest sub-buffers are read",
            l.buf_size
        ));
        start = (prod & !(subbuf - 1)).wrapping_sub(l.buf_size - subbuf) & word_mask;
    }
    // The counters this walk needs must all be there before anything is
    // recovered this way (they are allocated after the sub-buffers).
    for index in 0..l.num_subbuf {
        view.element(
            l.commit_hot_array,
            l.stride_commit_hot,
            index,
            l.commit_hot_seq,
        )?;
        view.element(l.buf_wsb_array, l.stride_wsb, index, l.buf_wsb_id)?;
    }
    let commit_count_mask = word_mask / l.num_subbuf;
    let mut packets = Vec::new();
    let mut offset = start;
    // At most one pass over the buffer, plus the sub-buffer being written.
    for _ in 0..=l.num_subbuf {
        if (prod.wrapping_sub(offset) & word_mask) == 0
            || (prod.wrapping_sub(offset) & word_mask) > l.buf_size
        {
            break;
        }
        if let Some(packet) = one_subbuf(view, offset, commit_count_mask, notes)? {
            packets.push(packet);
        }
        offset = offset.wrapping_add(subbuf) & word_mask;
    }
    Some(packets)
}

/// One sub-buffer at position `offset`: Some(None) when it holds nothing
/// recoverable, None when the tables it needs are past the cut.
fn one_subbuf(
    view: &View<'_>,
    offset: u64,
    commit_count_mask: u64,
    notes: &mut Vec<String>,
) -> Option<Option<Packet>> {
    let l = view.layout;
    let subbuf = l.subbuf_size;
    let buf_trunc = offset & !(l.buf_size - 1);
    let index = (offset & (l.buf_size - 1)) / subbuf;
    let seq_cc = view.element(
        l.commit_hot_array,
        l.stride_commit_hot,
        index,
        l.commit_hot_seq,
    )?;
    let full = (seq_cc.wrapping_sub(subbuf) & commit_count_mask)
        .wrapping_sub(buf_trunc / l.num_subbuf)
        == 0;
    let committed = if full { subbuf } else { seq_cc & (subbuf - 1) };
    if committed == 0 {
        notes.push(format!(
            "sub-buffer {index} (position {offset:#x}) has nothing committed"
        ));
        return Some(None);
    }
    let id = view.element(l.buf_wsb_array, l.stride_wsb, index, l.buf_wsb_id)?;
    let slot = if l.mode == MODE_OVERWRITE {
        // SB_ID_INDEX_MASK: the low half-word minus one bit (the rest are
        // the sub-buffer's offset count and its no-ref flag).
        let half_bits = u32::from(l.word_size) * 8 / 2;
        id & ((1u64 << half_bits) - 1)
    } else {
        id
    };
    if slot >= l.num_subbuf_alloc() {
        notes.push(format!(
            "sub-buffer {index}: table index {slot} is beyond the {} sub-buffers",
            l.num_subbuf_alloc()
        ));
        return Some(None);
    }
    let pages = view.element(l.sb_array, l.stride_sb, slot, l.sb_array_shmp_offset)?;
    let data_offset = match pages.checked_add(l.sb_backend_p_offset.offset) {
        Some(at) if at >= HEADER_LEN as u64 && at < l.mmap_length => {
            view.int_at(at, l.sb_backend_p_offset.len)?
        }
        _ => {
            notes.push(format!(
                "sub-buffer {index}: its pages entry {pages:#x} is outside the buffer"
            ));
            return Some(None);
        }
    };
    match data_offset.checked_add(subbuf) {
        Some(end) if data_offset >= HEADER_LEN as u64 && end <= l.mmap_length => {}
        _ => {
            notes.push(format!(
                "sub-buffer {index}: its data at {data_offset:#x} is outside the buffer"
            ));
            return Some(None);
        }
    }
    let at = data_offset as usize;
    if at as u64 + subbuf > view.bytes.len() as u64 {
        notes.push(format!(
            "sub-buffer {index} (position {offset:#x}) is past the end of the core"
        ));
        return Some(None);
    }
    let Some((uuid, stream_id, instance, seq_num)) = header_at(l, view.bytes, at) else {
        notes.push(format!(
            "sub-buffer {index} (position {offset:#x}) does not start with a CTF packet header"
        ));
        return Some(None);
    };
    let (length, partial) = if full {
        match size_in_bytes(l, view.bytes, at, l.packet_size) {
            Some(size) => (size, false),
            None => {
                notes.push(format!(
                    "sub-buffer {index} (position {offset:#x}): complete, but its packet_size \
                     is not a size in the sub-buffer"
                ));
                return Some(None);
            }
        }
    } else if committed < PACKET_HEADER_MIN {
        notes.push(format!(
            "sub-buffer {index} (position {offset:#x}): only {committed} bytes committed, \
             less than a packet header"
        ));
        return Some(None);
    } else {
        (committed, true)
    };
    let mut data = if view.keep_data {
        view.bytes[at..at + length as usize].to_vec()
    } else {
        Vec::new()
    };
    if partial {
        for f in [l.content_size, l.packet_size] {
            if f.len != 0 {
                let start = f.offset as usize;
                let len = usize::from(f.len);
                // The field is within the header checked above (fields past
                // the committed bytes are left as they are).
                if let Some(dst) = data.get_mut(start..start + len) {
                    let encoded = l.encode(committed * 8, len);
                    dst.copy_from_slice(&encoded);
                }
            }
        }
    }
    Some(Some(Packet {
        uuid,
        stream_id,
        stream_instance_id: instance,
        seq_num,
        partial,
        size: length,
        data,
    }))
}

/// The complete packets of a buffer whose counters are lost, found by the
/// headers at each sub-buffer slot, oldest first (by packet_seq_num).
fn by_headers(
    layout: &Layout,
    bytes: &[u8],
    keep_data: bool,
    notes: &mut Vec<String>,
) -> Vec<Packet> {
    let subbuf = layout.subbuf_size;
    let slots = layout.num_subbuf_alloc();
    let Some(array_end) = layout
        .stride_sb
        .checked_mul(slots)
        .and_then(|n| n.checked_add(layout.sb_array))
    else {
        return Vec::new();
    };
    // The sub-buffers follow the table, page-aligned; the page size is not
    // in the header, so the usual ones are tried.
    let mut best: Option<(usize, Vec<Packet>)> = None;
    for page in [4096u64, 16384, 65536] {
        let base = array_end.div_ceil(page) * page;
        let mut found = Vec::new();
        let mut headers = 0;
        for slot in 0..slots {
            let Some(start) = slot.checked_mul(subbuf).and_then(|o| o.checked_add(base)) else {
                break;
            };
            let Some(end) = start.checked_add(subbuf) else {
                break;
            };
            if end > layout.mmap_length || start >= bytes.len() as u64 {
                break;
            }
            let at = start as usize;
            let Some((uuid, stream_id, instance, seq_num)) = header_at(layout, bytes, at) else {
                continue;
            };
            headers += 1;
            let (Some(content), Some(packet)) = (
                size_in_bytes(layout, bytes, at, layout.content_size),
                size_in_bytes(layout, bytes, at, layout.packet_size),
            ) else {
                continue; // being written, or not a packet
            };
            if content > packet || start + packet > bytes.len() as u64 {
                continue;
            }
            found.push(Packet {
                uuid,
                stream_id,
                stream_instance_id: instance,
                seq_num,
                partial: false,
                size: packet,
                data: if keep_data {
                    bytes[at..at + packet as usize].to_vec()
                } else {
                    Vec::new()
                },
            });
        }
        if best.as_ref().is_none_or(|(h, _)| headers > *h) {
            best = Some((headers, found));
        }
    }
    let (headers, mut packets) = best.unwrap_or_default();
    packets.sort_by_key(|p| p.seq_num);
    packets.dedup_by_key(|p| p.seq_num);
    notes.push(format!(
        "{headers} packet headers found in the sub-buffers the core holds, {} complete",
        packets.len()
    ));
    packets
}
