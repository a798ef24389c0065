//! Unit tests of the whole scan on synthetic buffers laid out as lttng-ust
//! 2.13 lays them out (header, tables, page-aligned sub-buffers, then the
//! pages structs, write-side table and commit counters), embedded in
//! synthetic ELF cores: the good case, then every header field corrupted,
//! corrupt counters and tables, cores cut at every length, and copies of
//! the magic that are not at a segment's start.

use crate::elf::tests::build_core;
use crate::stream::Method;
use crate::{abi, scan};

const SUBBUF: u64 = 4096;
const NUM: u64 = 4;
const DATA: u64 = 4096;
const UUID: [u8; 16] = *b"0123456789abcdef";

struct Offsets {
    pages: u64,
    wsb: u64,
    hot: u64,
    end: u64,
}

fn offsets(num_alloc: u64) -> Offsets {
    let pages = DATA + num_alloc * SUBBUF;
    let wsb = pages + 32 * num_alloc;
    let hot = wsb + 8 * NUM;
    let end = hot + 32 * NUM;
    Offsets {
        pages,
        wsb,
        hot,
        end,
    }
}

fn put(buf: &mut [u8], at: u64, v: u64) {
    buf[at as usize..at as usize + 8].copy_from_slice(&v.to_le_bytes());
}

fn packet(buf: &mut [u8], at: u64, seq: u64, events: &[u8], complete: bool) {
    put(buf, at, 0xC1FC_1FC1);
    buf[at as usize + 4..at as usize + 20].copy_from_slice(&UUID);
    buf[at as usize + 20..at as usize + 24].copy_from_slice(&3u32.to_le_bytes());
    put(buf, at + 24, 1); // cpu
    let len = 88 + events.len() as u64;
    let (content, size) = if complete {
        (len * 8, SUBBUF * 8)
    } else {
        (u64::MAX, u64::MAX)
    };
    put(buf, at + 48, content);
    put(buf, at + 56, size);
    put(buf, at + 64, seq);
    buf[(at + 88) as usize..(at + 88) as usize + events.len()].copy_from_slice(events);
}

/// A discard-mode buffer with `complete` whole sub-buffers then one being
/// written with `partial` bytes committed (0: none).
pub fn buffer(complete: u64, partial: u64) -> Vec<u8> {
    let o = offsets(NUM);
    let mut b = vec![0u8; o.end as usize];
    b[..16].copy_from_slice(&abi::MAGIC);
    put(&mut b, 16, o.end); // mmap_length
    b[24..26].copy_from_slice(&0x1234u16.to_le_bytes());
    b[30] = 8;
    b[31] = 0;
    let offs: [u32; 11] = [
        128,
        136,
        o.hot as u32,
        8,
        o.wsb as u32,
        0,
        256,
        0,
        0,
        48,
        56,
    ];
    for (i, v) in offs.iter().enumerate() {
        b[32 + 4 * i..36 + 4 * i].copy_from_slice(&v.to_le_bytes());
    }
    b[76..84].copy_from_slice(&[8, 8, 8, 8, 8, 8, 8, 8]);
    let strides: [u32; 3] = [32, 8, 16];
    for (i, v) in strides.iter().enumerate() {
        b[84 + 4 * i..88 + 4 * i].copy_from_slice(&v.to_le_bytes());
    }
    put(&mut b, 96, SUBBUF * NUM);
    put(&mut b, 104, SUBBUF);
    put(&mut b, 112, NUM);
    b[120..124].copy_from_slice(&1u32.to_le_bytes()); // discard
    for i in 0..NUM {
        put(&mut b, 256 + 16 * i, o.pages + 32 * i); // sb_array[i] -> pages
        put(&mut b, o.pages + 32 * i, DATA + SUBBUF * i); // pages.p
        put(&mut b, o.wsb + 8 * i, i); // wsb id
    }
    for i in 0..complete {
        packet(&mut b, DATA + SUBBUF * i, i, &[i as u8 + 1; 100], true);
        put(&mut b, o.hot + 32 * i + 8, SUBBUF);
    }
    if partial > 0 {
        packet(
            &mut b,
            DATA + SUBBUF * complete,
            complete,
            &[0xEE; 200],
            false,
        );
        put(&mut b, o.hot + 32 * complete + 8, partial);
    }
    put(&mut b, 128, complete * SUBBUF + partial); // produced
    put(&mut b, 136, 0); // consumed
    b
}

fn core_with(buffer: Vec<u8>) -> Vec<u8> {
    build_core(
        &[(0x10000, vec![7u8; 8192]), (0x7f00_0000_0000, buffer)],
        &[(
            0x7f00_0000_0000,
            0x7f00_0001_0000,
            "/dev/shm/shm-ust-consumer-1 (deleted)",
        )],
    )
}

fn scan_bytes(core: &[u8]) -> Result<crate::Scan, crate::Error> {
    let mut reader: &[u8] = core;
    scan(&mut reader)
}

#[test]
fn a_sound_buffer_gives_its_complete_packets_and_the_partial_one_patched() {
    let core = core_with(buffer(2, 88 + 40));
    let scan = scan_bytes(&core).unwrap();
    assert_eq!(scan.streams.len(), 1);
    let s = &scan.streams[0];
    assert_eq!(s.method, Method::Counters);
    assert_eq!(
        s.file.as_deref(),
        Some("/dev/shm/shm-ust-consumer-1 (deleted)")
    );
    assert_eq!(s.packets.len(), 3, "{:?}", s.notes);
    assert_eq!(s.packets[0].data.len() as u64, SUBBUF);
    assert!(!s.packets[1].partial);
    let last = &s.packets[2];
    assert!(last.partial);
    assert_eq!(last.data.len(), 128);
    assert_eq!(
        u64::from_le_bytes(last.data[48..56].try_into().unwrap()),
        128 * 8
    );
    assert_eq!(
        u64::from_le_bytes(last.data[56..64].try_into().unwrap()),
        128 * 8
    );
    assert_eq!(last.uuid, UUID);
    assert_eq!((last.stream_id, last.stream_instance_id), (3, 1));
}

#[test]
fn every_corrupted_header_byte_gives_an_error_or_a_checked_walk_never_a_panic() {
    let good = buffer(2, 200);
    for at in 0..abi::HEADER_LEN {
        for value in [0x00u8, 0xFF, 0x7F, 0x80, 0x01] {
            let mut b = good.clone();
            b[at] = value;
            let core = core_with(b);
            let scan = scan_bytes(&core).unwrap();
            for s in &scan.streams {
                for p in &s.packets {
                    assert!(p.data.len() as u64 <= SUBBUF);
                }
            }
        }
    }
}

#[test]
fn corrupt_fields_are_named_in_the_error() {
    let cases: &[(usize, &[u8], &str)] = &[
        (24, &[0x00, 0x00], "endianness"),
        (26, &[1, 0], "crash ABI 1.0"),
        (30, &[3], "word size 3"),
        (31, &[1], "kernel"),
        (31, &[9], "layout type 9"),
        (16, &u64::MAX.to_le_bytes(), "mmap_length"),
        (104, &3000u64.to_le_bytes(), "sub-buffer size 3000"),
        (112, &0u64.to_le_bytes(), "sub-buffer count 0"),
        (112, &(1u64 << 40).to_le_bytes(), "sub-buffer count"),
        (96, &1u64.to_le_bytes(), "buffer size 1"),
        (120, &7u32.to_le_bytes(), "buffer mode 7"),
        (32, &u32::MAX.to_le_bytes(), "prod_offset"),
        (40, &(u32::MAX - 8).to_le_bytes(), "commit_hot"),
        (84, &0u32.to_le_bytes(), "commit_hot"),
        (92, &u32::MAX.to_le_bytes(), "sb_array"),
        (76, &[3], "prod_offset is 3 bytes"),
        (68, &(SUBBUF as u32).to_le_bytes(), "content_size"),
        (72, &(SUBBUF as u32 - 4).to_le_bytes(), "packet_size"),
    ];
    for (at, bytes, expect) in cases {
        let mut b = buffer(2, 200);
        b[*at..*at + bytes.len()].copy_from_slice(bytes);
        let scan = scan_bytes(&core_with(b)).unwrap();
        assert!(scan.streams.is_empty(), "{expect}");
        assert_eq!(scan.rejected.len(), 1, "{expect}");
        assert!(
            scan.rejected[0].contains(expect),
            "{expect}: {}",
            scan.rejected[0]
        );
    }
}

#[test]
fn corrupt_counters_and_tables_skip_what_they_point_at() {
    let o = offsets(NUM);
    let cases: Vec<(u64, u64)> = vec![
        (128, u64::MAX),          // produced far ahead
        (136, 5 * SUBBUF),        // consumed past produced
        (o.wsb + 8, 1 << 20),     // write-side id beyond the table
        (256 + 16, u64::MAX - 3), // pages entry overflowing
        (o.pages + 32, o.end),    // data past the mapping
        (o.pages + 32, 10),       // data over the header
        (DATA + SUBBUF, 0),       // a packet without its magic
        (DATA + 56, 3),           // a packet_size that is not bytes
        (o.hot + 8, u64::MAX),    // commit count garbage
    ];
    for (at, value) in cases {
        let mut b = buffer(3, 300);
        put(&mut b, at, value);
        let scan = scan_bytes(&core_with(b)).unwrap();
        assert_eq!(scan.streams.len(), 1);
        let s = &scan.streams[0];
        assert!(s.packets.len() <= 4, "{at}: {:?}", s.notes);
        for p in &s.packets {
            assert!(p.data.len() as u64 <= SUBBUF);
        }
    }
}

#[test]
fn cores_cut_anywhere_give_whole_packets_only() {
    let core = core_with(buffer(3, 300));
    let full = scan_bytes(&core).unwrap();
    let start = full.streams[0].segment.offset as usize;
    for cut in (0..core.len()).step_by(97).chain([start + 16, start + 124]) {
        let Ok(scan) = scan_bytes(&core[..cut]) else {
            assert!(cut < start, "{cut}");
            continue;
        };
        for s in &scan.streams {
            for p in &s.packets {
                assert!(!p.partial || s.method == Method::Counters);
                assert_eq!(&p.data[..4], &0xC1FC_1FC1u32.to_le_bytes());
            }
            if cut >= start + (DATA + 2 * SUBBUF) as usize && cut < start + o_end() {
                // Counters lost, two whole sub-buffers there.
                assert_eq!(s.method, Method::Headers);
                assert!(s.packets.len() >= 2, "{cut}: {:?}", s.notes);
            }
        }
        if cut > start && cut < start + o_end() {
            assert!(!scan.cut.is_empty(), "{cut}");
        }
    }
}

fn o_end() -> usize {
    offsets(NUM).end as usize
}

#[test]
fn magic_copies_inside_a_segment_are_not_buffers() {
    let mut inner = vec![0u8; 8192];
    inner[64..64 + buffer(1, 0).len().min(8000)]
        .copy_from_slice(&buffer(1, 0)[..8000.min(o_end())]);
    let core = build_core(&[(0x10000, inner)], &[]);
    let scan = scan_bytes(&core).unwrap();
    assert!(scan.streams.is_empty() && scan.rejected.is_empty());
    assert!(crate::explain_no_buffers(&scan).contains("no LTTng buffers found"));
}

#[test]
fn an_empty_buffer_is_reported_as_such() {
    let scan = scan_bytes(&core_with(buffer(0, 0))).unwrap();
    assert_eq!(scan.streams.len(), 1);
    assert!(scan.streams[0].packets.is_empty());
    assert!(crate::explain_no_buffers(&scan).contains("all empty"));
}

/// Writes the fuzz seed (`LCD_WRITE_FUZZ_SEED=PATH cargo test -p
/// lttng-coredump-recover write_fuzz_seed`).
#[test]
fn write_fuzz_seed() {
    if let Some(path) = std::env::var_os("LCD_WRITE_FUZZ_SEED") {
        std::fs::write(path, core_with(buffer(2, 200))).unwrap();
    }
}

#[test]
fn overlapping_segments_do_not_copy_a_buffer_twice() {
    let mut core = core_with(buffer(2, 200));
    // Point the first PT_LOAD (index 1, after the PT_NOTE) at the buffer's
    // second byte... and a third header at the buffer itself again.
    let ph_buffer = 64 + 56 * 2;
    let offset = u64::from_le_bytes(core[ph_buffer + 8..ph_buffer + 16].try_into().unwrap());
    let ph_first = 64 + 56;
    core[ph_first + 8..ph_first + 16].copy_from_slice(&(offset + 4096).to_le_bytes());
    let scan = scan_bytes(&core).unwrap();
    assert_eq!(scan.streams.len(), 1);
}

/// A slice read forward only, as a compressed core is.
struct Forward<'a> {
    data: &'a [u8],
    position: u64,
}

impl crate::reader::CoreRead for Forward<'_> {
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> std::io::Result<usize> {
        if offset < self.position {
            return Err(std::io::Error::other("backwards"));
        }
        let mut slice = self.data;
        let n = crate::reader::CoreRead::read_at(&mut slice, offset, buf)?;
        self.position = offset + n as u64;
        Ok(n)
    }

    fn forward_only(&self) -> bool {
        true
    }

    fn describe(&self) -> String {
        "forward".into()
    }
}

/// The core with e_phnum = PN_XNUM and the real count in section 0's
/// sh_info, the section header at the end (as the kernel writes it).
fn with_pn_xnum(mut core: Vec<u8>) -> Vec<u8> {
    let count = u16::from_le_bytes([core[56], core[57]]);
    let shoff = core.len() as u64;
    let mut sh = vec![0u8; 64];
    sh[44..48].copy_from_slice(&u32::from(count).to_le_bytes());
    core.extend(sh);
    core[40..48].copy_from_slice(&shoff.to_le_bytes());
    core[56..58].copy_from_slice(&0xffffu16.to_le_bytes());
    core[58..60].copy_from_slice(&64u16.to_le_bytes());
    core
}

#[test]
fn pn_xnum_cores_are_read_seekable_and_forward_only() {
    let core = with_pn_xnum(core_with(buffer(2, 200)));
    let seekable = scan_bytes(&core).unwrap();
    assert_eq!(seekable.streams[0].packets.len(), 3);
    let mut forward = Forward {
        data: &core,
        position: 0,
    };
    let scan = scan(&mut forward).unwrap();
    assert_eq!(scan.streams[0].packets.len(), 3);
    assert_eq!(scan.files.len(), 1);
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("lcd-recover-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn packetized_metadata(uuid: &[u8; 16], text: &str) -> Vec<u8> {
    let mut m = 0x75D1_1D57u32.to_le_bytes().to_vec();
    m.extend(uuid);
    m.extend([0u8; 17]);
    m.extend(text.as_bytes());
    m
}

#[test]
fn without_metadata_the_streams_are_written_and_the_report_says_how_to_supply_it() {
    let dir = temp_dir("nometa");
    let core = dir.join("core.x.1.2");
    std::fs::write(&core, core_with(buffer(2, 200))).unwrap();
    let options = crate::Options {
        core: core.clone(),
        output: dir.join("out"),
        ..Default::default()
    };
    let report = crate::recover(&options).unwrap();
    assert_eq!(report.status, crate::EXIT_NO_METADATA, "{}", report.text);
    let uuid = crate::metadata::format_uuid(&UUID);
    assert!(
        report
            .text
            .contains(&format!("No metadata with UUID {uuid}")),
        "{}",
        report.text
    );
    assert!(report.text.contains("--metadata PATH"), "{}", report.text);
    let stream = dir.join("out").join(&uuid).join("stream3_1");
    assert_eq!(
        std::fs::read(&stream).unwrap().len() as u64,
        2 * SUBBUF + 200
    );
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&stream).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // A second run refuses the non-empty output.
    assert!(crate::recover(&options)
        .unwrap_err()
        .0
        .contains("not empty"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn metadata_is_found_by_uuid_in_the_snapshots_the_handlers_records_name() {
    let dir = temp_dir("records");
    let core = dir.join("core.x.1.2");
    std::fs::write(&core, core_with(buffer(1, 0))).unwrap();
    // An older snapshot of the same session, and one of another session.
    let snapshots = dir.join("traces");
    let ours = snapshots.join("snapshot-1").join("ust/uid/1000/64-bit");
    let other = snapshots.join("snapshot-2").join("ust/uid/1000/64-bit");
    std::fs::create_dir_all(&ours).unwrap();
    std::fs::create_dir_all(&other).unwrap();
    std::fs::write(ours.join("metadata"), packetized_metadata(&UUID, "ours")).unwrap();
    std::fs::write(
        other.join("metadata"),
        packetized_metadata(b"ffffffffffffffff", "x"),
    )
    .unwrap();
    // What a record naming snapshot-2 gives: it, and the directory it is in.
    let report = crate::recover(&crate::Options {
        core,
        output: dir.join("out"),
        recorded_snapshots: vec![snapshots.join("snapshot-2"), snapshots.clone()],
        ..Default::default()
    })
    .unwrap();
    assert_eq!(report.status, crate::EXIT_RECOVERED, "{}", report.text);
    assert!(
        report.text.contains("a snapshot recorded by the handler"),
        "{}",
        report.text
    );
    let copied = dir
        .join("out")
        .join(crate::metadata::format_uuid(&UUID))
        .join("metadata");
    assert!(std::fs::read(copied).unwrap().ends_with(b"ours"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn metadata_given_explicitly_wins_and_a_wrong_uuid_is_not_used() {
    let dir = temp_dir("explicit");
    let core = dir.join("core");
    std::fs::write(&core, core_with(buffer(1, 0))).unwrap();
    let text = format!(
        "/* CTF 1.8 */\ntrace {{\n\tuuid = \"{}\";\n}};\n",
        crate::metadata::format_uuid(&UUID)
    );
    std::fs::write(dir.join("good"), &text).unwrap();
    std::fs::write(
        dir.join("wrong"),
        packetized_metadata(b"ffffffffffffffff", "x"),
    )
    .unwrap();
    let run = |metadata: &str, out: &str| {
        crate::recover(&crate::Options {
            core: core.clone(),
            output: dir.join(out),
            metadata: Some(dir.join(metadata)),
            ..Default::default()
        })
        .unwrap()
    };
    let report = run("good", "o1");
    assert_eq!(report.status, crate::EXIT_RECOVERED, "{}", report.text);
    assert!(report.text.contains("from --metadata"), "{}", report.text);
    let report = run("wrong", "o2");
    assert_eq!(report.status, crate::EXIT_NO_METADATA, "{}", report.text);
    assert!(
        report.text.contains("not in --metadata either"),
        "{}",
        report.text
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A slice that counts the bytes read from it.
struct Counting<'a> {
    data: &'a [u8],
    read: u64,
}

impl crate::reader::CoreRead for Counting<'_> {
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> std::io::Result<usize> {
        let mut slice = self.data;
        let n = crate::reader::CoreRead::read_at(&mut slice, offset, buf)?;
        self.read += n as u64;
        Ok(n)
    }

    fn describe(&self) -> String {
        "counting".into()
    }
}

fn two_buffer_core() -> Vec<u8> {
    build_core(
        &[
            (0x10000, vec![7u8; 8192]),
            (0x7f00_0000_0000, buffer(2, 88 + 40)),
            (0x7f00_0010_0000, buffer(1, 0)),
        ],
        &[],
    )
}

#[test]
fn past_the_byte_budget_buffers_are_counted_not_read() {
    let core = two_buffer_core();
    let len = buffer(2, 0).len() as u64;
    // Room for one buffer and a half: the second is counted only.
    let limits = crate::Limits::summary(len + len / 2, 64);
    let mut reader = Counting {
        data: &core,
        read: 0,
    };
    let scan = crate::scan_within(&mut reader, &limits).unwrap();
    assert_eq!(scan.streams.len(), 1, "{:?}", scan.unread);
    assert_eq!(scan.unread.len(), 1, "{:?}", scan.unread);
    assert!(
        scan.unread[0].contains("counted, not read"),
        "{:?}",
        scan.unread
    );
    // The buffer read, the headers and segment starts, nothing more.
    let headers = 64 + 56 * 4 + 4096 + 3 * abi::HEADER_LEN as u64;
    assert!(reader.read <= len + headers, "{} bytes read", reader.read);
    // No packet bytes kept, but counted: two whole sub-buffers and the
    // partial one's 128 committed bytes.
    let s = &scan.streams[0];
    assert_eq!(s.packets.len(), 3);
    assert!(s.packets.iter().all(|p| p.data.is_empty()));
    assert_eq!(s.bytes, 2 * SUBBUF + 128);
    assert_eq!(s.uuid(), Some(UUID));
    // Without limits both are read, with their bytes.
    let all = scan_bytes(&core).unwrap();
    assert_eq!(all.streams.len(), 2);
    assert!(all.unread.is_empty());
    assert_eq!(all.streams[0].bytes, 2 * SUBBUF + 128);
    assert_eq!(all.streams[0].packets[0].data.len() as u64, SUBBUF);
    for (kept, counted) in all.streams[0].packets.iter().zip(&s.packets) {
        assert_eq!(kept.size, kept.data.len() as u64);
        assert_eq!(counted.size, kept.size);
    }
    // A budget of nothing reads no buffer at all, and still counts both.
    let none = crate::scan_within(&mut &core[..], &crate::Limits::summary(0, 64)).unwrap();
    assert!(none.streams.is_empty());
    assert_eq!(none.unread.len(), 2);
}

#[test]
fn more_segments_than_the_limit_is_an_error_before_the_table_is_read() {
    let core = two_buffer_core();
    // 1 PT_NOTE + 3 PT_LOAD.
    let err = crate::scan_within(&mut &core[..], &crate::Limits::summary(u64::MAX, 3))
        .unwrap_err()
        .to_string();
    assert!(err.contains("4 program headers (more than 3)"), "{err}");
    let mut reader = Counting {
        data: &core,
        read: 0,
    };
    assert!(crate::scan_within(&mut reader, &crate::Limits::summary(u64::MAX, 3)).is_err());
    assert!(reader.read <= 64, "{} bytes read", reader.read);
    assert!(crate::scan_within(&mut &core[..], &crate::Limits::summary(u64::MAX, 4)).is_ok());
}
