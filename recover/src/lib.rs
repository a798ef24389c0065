//! Recovering the LTTng-UST ring buffers of a crashed program from its ELF
//! core, as a CTF trace babeltrace2 reads.
//!
//! An lttng-ust program maps each stream's ring buffer shared (lttng-tools
//! creates it with `shm_open` and unlinks it at once): the kernel dumps
//! such mappings by default, so the buffers are in the core. Each one
//! starts with lttng-ust's crash ABI header ([`abi`]), which locates its
//! positions, commit counts and sub-buffer tables; [`stream`] walks them
//! the way lttng-crash does. Only the start of each PT_LOAD segment is
//! looked at (a buffer is a whole mapping), and only buffers are copied.
//!
//! The trace's metadata is not in the core: [`metadata`] finds it by the
//! packets' UUID.
//!
//! Everything read from the core is untrusted: sizes are checked before
//! use, nothing is allocated beyond what the core really holds, no input
//! panics.

pub mod abi;
pub mod elf;
pub mod metadata;
pub mod reader;
pub mod stream;
#[cfg(test)]
mod tests;

use elf::{MappedFile, Segment};
use reader::CoreRead;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use stream::{Method, Packet};

/// Exit status: streams recovered and every trace has its metadata.
pub const EXIT_RECOVERED: u8 = 0;
/// Exit status: the core holds no LTTng-UST buffer with data.
pub const EXIT_NO_BUFFERS: u8 = 1;
/// Exit status: bad usage or input (not a readable ELF core, output exists).
pub const EXIT_BAD_INPUT: u8 = 2;
/// Exit status: streams written, but metadata missing for some trace.
pub const EXIT_NO_METADATA: u8 = 3;

/// Largest stream buffer read into memory (lttng-tools refuses channels
/// anywhere near this).
const MAX_BUFFER: u64 = 16 << 30;
/// Reads of a buffer go this much at a time, so that memory follows the
/// bytes the core really holds, not what its headers claim.
const CHUNK: usize = 4 << 20;

/// How much a scan may read and keep. [`Limits::default`] is what
/// `recover` uses (every buffer, whole); the handler, which scans every
/// crash's core as root, bounds the total it reads and keeps no packet
/// bytes ([`Limits::summary`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Total bytes of buffers read; a buffer that would go past it is only
    /// counted (its header is checked, its bytes are not read).
    pub buffer_bytes: u64,
    /// Most program headers read (each is 56 bytes of memory and a read).
    pub max_segments: u64,
    /// Whether the packets keep their bytes (false: only their count and
    /// sizes, in [`FoundStream::bytes`]; memory is then one buffer at a
    /// time).
    pub keep_data: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            buffer_bytes: u64::MAX,
            max_segments: elf::MAX_PHDRS,
            keep_data: true,
        }
    }
}

impl Limits {
    /// What a scan for a summary needs: at most `buffer_bytes` of buffers
    /// read, at most `max_segments` segments, no packet bytes kept.
    pub fn summary(buffer_bytes: u64, max_segments: u64) -> Limits {
        Limits {
            buffer_bytes,
            max_segments,
            keep_data: false,
        }
    }
}

/// A buffer found in the core.
#[derive(Debug, Clone)]
pub struct FoundStream {
    pub segment: Segment,
    /// The mapped file (NT_FILE), e.g. `/dev/shm/shm-ust-consumer-7 (deleted)`.
    pub file: Option<String>,
    pub mode: u32,
    pub subbuf_size: u64,
    pub num_subbuf: u64,
    pub method: Method,
    pub packets: Vec<Packet>,
    /// The bytes of its packets (of the stream's trace: its first packet's
    /// UUID), counted even when their data is not kept.
    pub bytes: u64,
    pub notes: Vec<String>,
}

impl FoundStream {
    /// The UUID of the stream's trace (its first packet's), when it has
    /// packets.
    pub fn uuid(&self) -> Option<[u8; 16]> {
        self.packets.first().map(|p| p.uuid)
    }
}

/// What a scan of a core found.
#[derive(Debug, Clone, Default)]
pub struct Scan {
    pub streams: Vec<FoundStream>,
    /// Segments that start with the magic but whose header is unusable.
    pub rejected: Vec<String>,
    pub files: Vec<MappedFile>,
    /// Segments the core does not hold in full (cut), as text.
    pub cut: Vec<String>,
    /// Buffers found (sound headers) but not read: past the byte budget of
    /// [`Limits::buffer_bytes`], as text.
    pub unread: Vec<String>,
    pub loads: usize,
}

/// Why nothing could be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error(pub String);

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The file mapped at `vaddr`; `files` sorted by start (a binary search:
/// a hostile core may name millions of mappings).
fn file_of(files: &[MappedFile], vaddr: u64) -> Option<String> {
    let after = files.partition_point(|f| f.start <= vaddr);
    let f = files.get(after.checked_sub(1)?)?;
    (vaddr < f.end).then(|| f.name.clone())
}

/// Reads up to `len` more bytes at `offset` onto the end of `out`, in
/// chunks (the one vector: no second copy of a buffer is ever held); short
/// when the core ends.
fn read_bounded(
    core: &mut dyn CoreRead,
    offset: u64,
    len: u64,
    out: &mut Vec<u8>,
) -> Result<(), Error> {
    let base = out.len();
    while ((out.len() - base) as u64) < len {
        let done = (out.len() - base) as u64;
        let want = (len - done).min(CHUNK as u64) as usize;
        let start = out.len();
        out.resize(start + want, 0);
        let n = core
            .read_at(offset + done, &mut out[start..])
            .map_err(|e| Error(format!("reading the core at byte {}: {e}", offset + done)))?;
        out.truncate(start + n);
        if n < want {
            break;
        }
    }
    Ok(())
}

/// Finds and recovers every LTTng-UST buffer of a core.
pub fn scan(core: &mut dyn CoreRead) -> Result<Scan, Error> {
    scan_within(core, &Limits::default())
}

/// [`scan`] within `limits`: past its byte budget buffers are only
/// counted (in [`Scan::unread`]); a core with more segments than it allows
/// is an error, read no further than its header.
pub fn scan_within(core: &mut dyn CoreRead, limits: &Limits) -> Result<Scan, Error> {
    let header = elf::parse_header_within(core, limits.max_segments)
        .map_err(|e| Error(format!("not a usable ELF core: {e}")))?;
    let mut budget = limits.buffer_bytes;
    let mut scan = Scan::default();
    let mut position: u64 = 0;
    for note in header.notes() {
        if core.forward_only() && note.offset < position {
            continue;
        }
        if let Ok(files) = elf::read_mapped_files(core, header.format, note) {
            if !files.is_empty() && scan.files.is_empty() {
                scan.files = files;
                scan.files.sort_by_key(|f| f.start);
            }
        }
        position = note.offset.saturating_add(note.filesz);
    }
    let loads = header.loads();
    scan.loads = loads.len();
    let mut last_offset = None;
    // Where the last buffer read ends: a segment starting inside it is
    // skipped (a real core's segments never overlap; hostile ones could
    // make the same bytes be copied once per program header).
    let mut buffer_end: u64 = 0;
    for segment in loads {
        if segment.filesz < abi::HEADER_LEN as u64
            || last_offset == Some(segment.offset)
            || segment.offset < buffer_end
        {
            continue;
        }
        if core.forward_only() && segment.offset < position {
            // Overlapping segments: a real core has none.
            continue;
        }
        last_offset = Some(segment.offset);
        let mut head = [0u8; abi::HEADER_LEN];
        let n = core
            .read_at(segment.offset, &mut head)
            .map_err(|e| Error(format!("reading the core at byte {}: {e}", segment.offset)))?;
        position = segment.offset + n as u64;
        if n < abi::MAGIC.len() {
            scan.cut.push(format!(
                "the core ends before the segment at {:#x} (file byte {})",
                segment.vaddr, segment.offset
            ));
            break;
        }
        if n < abi::HEADER_LEN {
            scan.cut.push(format!(
                "the core ends {n} bytes into the segment at {:#x} (file byte {})",
                segment.vaddr, segment.offset
            ));
        }
        if !abi::has_magic(&head[..n]) {
            continue;
        }
        let file = file_of(&scan.files, segment.vaddr);
        let where_ = format!(
            "buffer at {:#x}{}",
            segment.vaddr,
            file.as_deref()
                .map(|f| format!(" ({f})"))
                .unwrap_or_default()
        );
        let layout = match abi::parse(&head[..n], segment.memsz.max(segment.filesz)) {
            Ok(layout) => layout,
            Err(e) => {
                scan.rejected.push(format!("{where_}: {e}"));
                continue;
            }
        };
        let want = layout.mmap_length.min(segment.filesz).min(MAX_BUFFER);
        if want > budget {
            scan.unread.push(format!(
                "{where_}: {want} bytes, past the {} bytes of buffers a scan may read: \
                 counted, not read",
                limits.buffer_bytes
            ));
            // Its bytes are not read, but they are a buffer's: a segment
            // starting inside it is not another one.
            buffer_end = segment.offset.saturating_add(want);
            continue;
        }
        budget -= want;
        // The header is already read (a compressed core cannot go back).
        let mut bytes = head[..n].to_vec();
        read_bounded(
            core,
            segment.offset + n as u64,
            want.saturating_sub(n as u64),
            &mut bytes,
        )?;
        position = segment.offset + bytes.len() as u64;
        buffer_end = position;
        if (bytes.len() as u64) < want {
            scan.cut.push(format!(
                "{where_}: the core ends after {} of its {} bytes",
                bytes.len(),
                layout.mmap_length
            ));
        }
        let recovered = stream::recover_stream_with(&layout, &bytes, limits.keep_data);
        drop(bytes);
        let first_uuid = recovered.packets.first().map(|p| p.uuid);
        let stream_bytes = recovered
            .packets
            .iter()
            .filter(|p| Some(p.uuid) == first_uuid)
            .map(|p| p.size)
            .sum();
        scan.streams.push(FoundStream {
            segment,
            file,
            mode: layout.mode,
            subbuf_size: layout.subbuf_size,
            num_subbuf: layout.num_subbuf,
            method: recovered.method,
            packets: recovered.packets,
            bytes: stream_bytes,
            notes: recovered.notes,
        });
    }
    if let Some(trouble) = core.trouble() {
        scan.cut.push(trouble);
    }
    Ok(scan)
}

/// Fetches the metadata of the given traces under the given roots (see
/// [`recover_with`]).
pub type FetchMetadata<'a> =
    dyn FnMut(&[metadata::Root], &[[u8; 16]]) -> HashMap<[u8; 16], metadata::Fetched> + 'a;

/// What to recover and where.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub core: PathBuf,
    pub output: PathBuf,
    /// `--metadata`: a metadata file or a trace directory.
    pub metadata: Option<PathBuf>,
    /// Snapshot directories the handler's crash records name (read by the
    /// handler through its record types), searched for metadata.
    pub recorded_snapshots: Vec<PathBuf>,
    /// More directories to search for metadata (snapshot outputs).
    pub search: Vec<PathBuf>,
}

/// One trace written.
#[derive(Debug, Clone)]
pub struct TraceOut {
    pub uuid: [u8; 16],
    pub dir: PathBuf,
    pub files: Vec<(String, usize, bool)>,
    pub metadata: Option<metadata::Found>,
}

/// What `recover` did.
#[derive(Debug, Clone)]
pub struct Report {
    pub scan: Scan,
    pub traces: Vec<TraceOut>,
    pub status: u8,
    pub text: String,
}

/// Recovers the buffers of `options.core` into `options.output`.
pub fn recover(options: &Options) -> Result<Report, Error> {
    let core = reader::open_core(&options.core)
        .map_err(|e| Error(format!("opening {}: {e}", options.core.display())))?;
    recover_from(core, options)
}

/// [`recover`] from a core already open (`options.core` names it in
/// messages and tells where its `--shm-path` files may be).
pub fn recover_from(core: Box<dyn CoreRead>, options: &Options) -> Result<Report, Error> {
    recover_with(core, options, &mut |roots, wanted| {
        metadata::fetch(roots, wanted)
    })
}

/// Where a trace's metadata is searched for, in order: each group is
/// searched only for the UUIDs the groups before it did not give (within
/// a group the largest file wins). `--metadata`; the session's
/// `--shm-path` (beside the buffer files the program mapped); the
/// snapshots the crash records name, then `--search`.
pub fn search_plan(options: &Options, scan: &Scan) -> Vec<Vec<metadata::Root>> {
    // What the person named is resolved now (a link of theirs is meant).
    let explicit = |path: &Path, source: String| metadata::Root {
        path: fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf()),
        source,
        explicit: true,
    };
    let mut groups = Vec::new();
    if let Some(path) = &options.metadata {
        groups.push(vec![explicit(
            path,
            format!("--metadata {}", path.display()),
        )]);
    }
    let mut shm: Vec<metadata::Root> = Vec::new();
    for s in &scan.streams {
        if let Some(file) = &s.file {
            if !file.ends_with(" (deleted)") {
                if let Some(dir) = Path::new(file).parent() {
                    let path = dir.join("metadata");
                    if !shm.iter().any(|r| r.path == path) {
                        shm.push(metadata::Root {
                            path,
                            source: "the session's --shm-path".into(),
                            explicit: false,
                        });
                    }
                }
            }
        }
    }
    groups.push(shm);
    let mut snapshots = Vec::new();
    for snap in &options.recorded_snapshots {
        snapshots.push(metadata::Root {
            source: format!("a snapshot recorded by the handler ({})", snap.display()),
            path: snap.clone(),
            explicit: false,
        });
    }
    for dir in &options.search {
        snapshots.push(explicit(dir, format!("{}", dir.display())));
    }
    groups.push(snapshots);
    groups
}

/// [`recover_from`], with the metadata of each group of [`search_plan`]
/// fetched by `fetch` (given the group's roots and the UUIDs still
/// missing): root's tools fetch what a user may have chosen as that user.
pub fn recover_with(
    mut core: Box<dyn CoreRead>,
    options: &Options,
    fetch: &mut FetchMetadata<'_>,
) -> Result<Report, Error> {
    let kind = core.describe();
    let scan =
        scan(core.as_mut()).map_err(|e| Error(format!("{}: {e}", options.core.display())))?;
    let mut text = String::new();
    let _ = writeln!(
        text,
        "{}: {kind}, {} memory segments",
        options.core.display(),
        scan.loads
    );
    for c in &scan.cut {
        let _ = writeln!(text, "cut: {c}");
    }
    for r in &scan.rejected {
        let _ = writeln!(text, "ignored: {r}");
    }
    for u in &scan.unread {
        let _ = writeln!(text, "not read: {u}");
    }
    for s in &scan.streams {
        let _ = writeln!(
            text,
            "buffer at {:#x}{}{}: {} mode, {} x {} KiB sub-buffers, {} packet(s) recovered{}",
            s.segment.vaddr,
            s.file
                .as_deref()
                .map(|f| format!(" ({f})"))
                .unwrap_or_default(),
            s.packets
                .first()
                .map(|p| format!(", stream {} CPU {}", p.stream_id, p.stream_instance_id))
                .unwrap_or_default(),
            if s.mode == abi::MODE_OVERWRITE {
                "overwrite"
            } else {
                "discard"
            },
            s.num_subbuf,
            s.subbuf_size / 1024,
            s.packets.len(),
            if s.method == Method::Headers {
                " by their headers"
            } else {
                ""
            }
        );
    }
    let with_packets: usize = scan
        .streams
        .iter()
        .filter(|s| !s.packets.is_empty())
        .count();
    if with_packets == 0 {
        let _ = write!(text, "{}", explain_no_buffers(&scan));
        return Ok(Report {
            scan,
            traces: Vec::new(),
            status: EXIT_NO_BUFFERS,
            text,
        });
    }
    let traces = write_traces(options, &scan, &mut text, fetch)?;
    let missing = traces.iter().filter(|t| t.metadata.is_none()).count();
    let status = if missing == 0 {
        let _ = writeln!(text, "recovered: babeltrace2 {}", options.output.display());
        EXIT_RECOVERED
    } else {
        EXIT_NO_METADATA
    };
    Ok(Report {
        scan,
        traces,
        status,
        text,
    })
}

/// Says which case a core without usable buffers is.
pub fn explain_no_buffers(scan: &Scan) -> String {
    let mut text = String::new();
    if !scan.streams.is_empty() {
        let _ = writeln!(
            text,
            "no LTTng data: the core holds {} LTTng-UST ring buffer(s), all empty",
            scan.streams.len()
        );
        for s in &scan.streams {
            for n in &s.notes {
                let _ = writeln!(text, "  buffer at {:#x}: {n}", s.segment.vaddr);
            }
        }
        return text;
    }
    let has_ust = scan.files.iter().any(|f| f.name.contains("liblttng-ust"));
    let shm_path_streams: Vec<&MappedFile> = scan
        .files
        .iter()
        .filter(|f| f.name.contains("/ust/") && !f.name.ends_with(" (deleted)"))
        .collect();
    let consumer_shm = scan
        .files
        .iter()
        .filter(|f| f.name.contains("shm-ust-consumer"))
        .count();
    let _ = write!(text, "no LTTng buffers found: ");
    if !scan.rejected.is_empty() {
        let _ = writeln!(
            text,
            "the only buffer headers in the core are unusable (see above)"
        );
    } else if !shm_path_streams.is_empty() {
        let dir = Path::new(&shm_path_streams[0].name)
            .parent()
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        let _ = writeln!(
            text,
            "the program's buffers were files of a --shm-path session ({dir}), which the \
             kernel leaves out of a core unless coredump_filter has bit 3 (0x08, file-backed \
             shared); read them with `lttng-crash {dir}` while they exist"
        );
    } else if consumer_shm > 0 {
        let _ = writeln!(
            text,
            "the program mapped {consumer_shm} LTTng buffer(s) but the core does not hold \
             them: its coredump_filter leaves out anonymous shared memory (bit 0, 0x01)"
        );
    } else if has_ust {
        let _ = writeln!(
            text,
            "the program had lttng-ust loaded but mapped no ring buffer when it crashed: no \
             session was tracing it, or its session daemon died before the crash (lttng-ust \
             unmaps a session's buffers as soon as it loses its session daemon)"
        );
    } else if scan.files.is_empty() {
        let _ = writeln!(
            text,
            "no segment of the core starts with an LTTng ring buffer (the core names no \
             mapped files, so whether the program used lttng-ust is unknown)"
        );
    } else {
        let _ = writeln!(
            text,
            "the program did not load lttng-ust (liblttng-ust is not among its mappings)"
        );
    }
    text
}

/// Creates a directory (and its parents) readable by its owner only: a
/// trace from a core is as private as the core.
fn private_dir(dir: &Path) -> Result<(), Error> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| Error(format!("creating {}: {e}", dir.display())))
}

/// Writes `bytes` to a new file readable by its owner only.
fn write_private(dst: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut to = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(dst)?;
    to.write_all(bytes)
}

fn stream_name(stream_id: u32, cpu: u64) -> String {
    format!("stream{stream_id}_{cpu}")
}

fn write_traces(
    options: &Options,
    scan: &Scan,
    text: &mut String,
    fetch: &mut FetchMetadata<'_>,
) -> Result<Vec<TraceOut>, Error> {
    let out = &options.output;
    match fs::read_dir(out) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(Error(format!(
                    "{} exists and is not empty: give another -o",
                    out.display()
                )));
            }
        }
        Err(_) => private_dir(out)?,
    }
    // By UUID, then by stream file name.
    let mut traces: BTreeMap<[u8; 16], BTreeMap<String, Vec<&Packet>>> = BTreeMap::new();
    for s in &scan.streams {
        let Some(first) = s.packets.first() else {
            continue;
        };
        let mut name = stream_name(first.stream_id, first.stream_instance_id);
        let files = traces.entry(first.uuid).or_default();
        let mut n = 1;
        while files.contains_key(&name) {
            name = format!(
                "{}.{n}",
                stream_name(first.stream_id, first.stream_instance_id)
            );
            n += 1;
        }
        let packets: Vec<&Packet> = s.packets.iter().filter(|p| p.uuid == first.uuid).collect();
        files.insert(name, packets);
    }
    // Metadata, in the documented order: the first group that has a UUID
    // gives it.
    let mut fetched: HashMap<[u8; 16], metadata::Fetched> = HashMap::new();
    for group in search_plan(options, scan) {
        let wanted: Vec<[u8; 16]> = traces
            .keys()
            .filter(|uuid| !fetched.contains_key(*uuid))
            .copied()
            .collect();
        if wanted.is_empty() {
            break;
        }
        if group.is_empty() {
            continue;
        }
        for (uuid, found) in fetch(&group, &wanted) {
            if wanted.contains(&uuid) {
                fetched.entry(uuid).or_insert(found);
            }
        }
    }

    let mut written = Vec::new();
    for (uuid, files) in traces {
        let uuid_text = metadata::format_uuid(&uuid);
        let dir = out.join(&uuid_text);
        private_dir(&dir)?;
        let mut trace = TraceOut {
            uuid,
            dir: dir.clone(),
            files: Vec::new(),
            metadata: None,
        };
        let _ = writeln!(text, "trace {uuid_text} -> {}", dir.display());
        for (name, packets) in files {
            let path = dir.join(&name);
            let mut file = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
                .map_err(|e| Error(format!("creating {}: {e}", path.display())))?;
            let mut bytes = 0;
            let partial = packets.iter().any(|p| p.partial);
            for p in &packets {
                file.write_all(&p.data)
                    .map_err(|e| Error(format!("writing {}: {e}", path.display())))?;
                bytes += p.data.len();
            }
            let _ = writeln!(
                text,
                "  {name}: {} packets, {bytes} bytes{}",
                packets.len(),
                if partial {
                    " (the last one cut where its writing stopped)"
                } else {
                    ""
                }
            );
            trace.files.push((name, packets.len(), partial));
        }
        if let Some(metadata::Fetched { found, bytes }) = fetched.get(&uuid) {
            let dst = dir.join("metadata");
            write_private(&dst, bytes).map_err(|e| {
                Error(format!(
                    "writing the metadata of {} to {}: {e}",
                    found.path.display(),
                    dst.display()
                ))
            })?;
            let _ = writeln!(
                text,
                "  metadata: {} (from {})",
                found.path.display(),
                found.source
            );
            trace.metadata = Some(found.clone());
        } else {
            let _ =
                writeln!(
                text,
                "  metadata: MISSING. No metadata with UUID {uuid_text} was found{}. The trace \
                 cannot be read without it: the session daemon that traced the program \
                 generates it. Give it with --metadata PATH (the `metadata` file of any \
                 snapshot or trace of the same session, recorded before or after, e.g. with \
                 `lttng snapshot record` or `lttng regenerate metadata` then a snapshot), or \
                 copy it to {}",
                if options.metadata.is_some() { " (not in --metadata either)" } else { "" },
                dir.join("metadata").display()
            );
        }
        written.push(trace);
    }
    for s in &scan.streams {
        for n in &s.notes {
            let _ = writeln!(text, "note: buffer at {:#x}: {n}", s.segment.vaddr);
        }
        if s.method == Method::Headers {
            let _ = writeln!(
                text,
                "note: buffer at {:#x}: recovered from packet headers only",
                s.segment.vaddr
            );
        }
    }
    Ok(written)
}
