//! The dump itself, as the dumping child runs it: choose the method, stop
//! every thread, read their state, take the snapshots, then either copy the
//! memory and let go (stop-and-copy), or make the copy, let go, write the
//! copy and reap it (copy-on-write). The steps are the functions below, in
//! that order.

use crate::access::Target;
use crate::identity::{self, Identity};
use crate::boost::Boost;
use crate::elf::{Layout, Segment};
use crate::freeze::{self, Event, Frozen, Thread, Tracer};
use crate::memory::{self, Copier};
use crate::notes::{self, ProcessInfo, ThreadInfo};
use crate::pipeline::Writer;
use crate::procfs::{self, Mapping};
use crate::regions::{self, Content, Dump, PAGE_SIZE};
use crate::report::{
    ErrorKind, LiveError, LiveReport, RegionNote, Result, SnapshotFire, ThreadReport,
};
use crate::sink::CoreSink;
use crate::snapshot::{self, Daemons};
use crate::stash::{self, Reserved, Stash};
use crate::stage::Stage;
use crate::sys::{self, Pid};
use crate::{Method, Options};
use lttng_coredump_engine::CrashInfo;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::inject::{self, Call, Gadgets, Saved};
use crate::precopy;

/// What the dump is given by the caller's process.
pub struct Job<'a> {
    pub target: Target,
    /// The process `target` must be (its pidfd): checked once its threads
    /// are seized.
    pub identity: &'a Identity,
    pub options: &'a Options,
    pub daemons: Option<Daemons>,
    pub output: OwnedFd,
    /// Told the copy's pid as soon as it exists (copy-on-write), so that
    /// the caller can reap it should this child die.
    pub on_copy: &'a (dyn Fn(Pid) + Sync),
}

/// One stopped thread's state.
struct Captured {
    thread: Thread,
    name: String,
    info: ThreadInfo,
    saved: Option<Saved>,
}

/// What is read while the threads are stopped, for the notes.
struct Stopped {
    frozen: Frozen,
    threads: Vec<Captured>,
    process: ProcessInfo,
    auxv: Vec<u8>,
    filter: u32,
    /// The process's mappings at the stop (`maps`).
    maps: Vec<Mapping>,
    /// The pid to read memory and `/proc` files of the address space
    /// through: the main thread's, or a live thread's if it has exited.
    mm_pid: Pid,
    stop_us: u64,
    /// When `stop` had read everything (microseconds into the pause).
    captured_us: u64,
    /// The dumper's raised priority during the stop, lowered when the
    /// threads are let go.
    boost: Option<Boost>,
}

/// Calls the stage hook, at most once per stage.
struct Stages<'a> {
    hook: Option<&'a crate::StageHook>,
    seen: Vec<Stage>,
    on_copy: &'a (dyn Fn(Pid) + Sync),
}

impl Stages<'_> {
    fn reach(&mut self, stage: Stage) {
        if self.seen.contains(&stage) {
            return;
        }
        self.seen.push(stage);
        if let Some(hook) = self.hook {
            hook(stage);
        }
    }
}

fn micros(d: Duration) -> u64 {
    d.as_micros() as u64
}

fn output_error(e: std::io::Error) -> LiveError {
    LiveError::new(ErrorKind::Output, format!("writing the core: {e}"))
}

/// Runs the dump (in the dumping child).
pub fn run(job: Job) -> Result<LiveReport> {
    let Job {
        target,
        identity,
        options,
        daemons,
        output,
        on_copy,
    } = job;
    let pid = target.pid;
    let mut stages = Stages {
        hook: options.stage_hook.as_ref(),
        seen: Vec::new(),
        on_copy,
    };
    let mut warnings = Vec::new();
    if let Some(thread) = target.given_thread {
        warnings.push(format!(
            "{thread} is a thread of process {pid}: the whole process is dumped"
        ));
    }
    let output_fd = output.as_raw_fd();
    let sink = CoreSink::new(output, options.zstd_level).map_err(output_error)?;
    let (mut method, mut fallback, gadgets) = choose_method(&target, options)?;
    let mut tracer = Tracer::new()?;
    // Pre-copy: the first stop, the registration and the passes, while
    // the process runs; the final stop is the one below.
    let mut tracking = None;
    if let (Method::PreCopy, Some(space)) = (method, &options.staging) {
        // The staging file would hold at least the private memory resident
        // now: with less room than that, pre-copy is not started at all
        // (no first stop for nothing).
        let resident = procfs::private_bytes(pid).unwrap_or(0);
        if resident > space.budget {
            let why = format!(
                "pre-copy not used: its staging file would need about {} KiB (the process's private resident memory), more than the {} KiB it may take ({})",
                resident >> 10,
                space.budget >> 10,
                space.limit
            );
            if options.method == Some(Method::PreCopy) {
                return Err(LiveError::new(ErrorKind::Unsupported, why));
            }
            method = Method::CopyOnWrite;
            fallback = Some(why);
        }
    }
    if let (Method::PreCopy, Some(gadgets)) = (method, &gadgets) {
        match begin_tracking(
            &mut tracer,
            &target,
            identity,
            options,
            gadgets,
            &mut stages,
            output_fd,
        ) {
            Ok(t) => tracking = Some(t),
            Err(TrackError::Failed(e)) => return Err(e),
            Err(TrackError::Fallback(why)) => {
                if options.method == Some(Method::PreCopy) {
                    return Err(LiveError::new(ErrorKind::Unsupported, why));
                }
                method = Method::CopyOnWrite;
                fallback = Some(why);
            }
        }
    }
    // Stop-and-copy's buffer, allocated before the stop.
    let mut buffer = match method {
        Method::StopAndCopy => reserve_buffer(pid, options)?,
        Method::CopyOnWrite | Method::PreCopy => Buffer::Lazy,
    };

    let time = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    // Stop-and-copy's pause is the dumper's own copying: its group is
    // raised too. Copy-on-write's is mostly the target's own fork, and the
    // copy is written after it at the lowest priority within the caller's
    // group (below the process, when it shares that group): the thread's
    // priority alone, for the ptrace round trips.
    let boost = if options.raise_priority {
        Boost::raise(method == Method::StopAndCopy)
    } else {
        None
    };
    let stop_nice = boost.as_ref().map(Boost::nice);
    let pause_begin_ns = sys::monotonic_ns();
    let mut stopped = stop(&mut tracer, &target, identity, options, &mut stages)?;
    stopped.boost = boost;
    stages.reach(Stage::Stopped);

    let crash = CrashInfo {
        pid,
        uid: target.status.uids[0],
        gid: target.status.gids[0],
        exec_name: target.status.name.clone(),
        hostname: sys::hostname(),
        time,
    };
    let snapshot_started = Instant::now();
    let snapshots: Vec<SnapshotFire> = match (&options.snapshots, &daemons) {
        (Some(plan), Some(daemons)) => snapshot::take(&crash, plan, daemons),
        _ => Vec::new(),
    };
    let snapshot_us = micros(snapshot_started.elapsed());
    stages.reach(Stage::Snapshotted);

    let mut report = LiveReport {
        live: true,
        pid,
        uid: crash.uid,
        gid: crash.gid,
        exec_name: crash.exec_name.clone(),
        cmdline: command_line(&stopped.process.cmdline),
        hostname: crash.hostname.clone(),
        time,
        method,
        fallback,
        threads: stopped
            .threads
            .iter()
            .map(|c| ThreadReport {
                tid: c.thread.tid,
                name: c.name.clone(),
                state: c.thread.state_before,
                stopped: c.thread.stopped(),
                signal: match c.thread.stop {
                    Some(Event::Signal(signal)) => Some(signal),
                    _ => None,
                },
                stopped_from_ns: c.thread.stop_seen_ns,
                stopped_to_ns: 0,
            })
            .collect(),
        pause_us: 0,
        pause_begin_ns,
        pause_end_ns: 0,
        pause_stages: vec![
            ("stop".into(), stopped.stop_us),
            ("capture".into(), stopped.captured_us),
            ("snapshot".into(), micros(stopped.frozen.since.elapsed())),
        ],
        stop_nice,
        stop_us: stopped.stop_us,
        fork_us: 0,
        snapshot_us,
        copy_us: 0,
        reap_pause_us: 0,
        track_pause_us: 0,
        precopy_passes: Vec::new(),
        final_copy_bytes: 0,
        copy_private_bytes: 0,
        total_us: 0,
        write_begin_ns: 0,
        write_end_ns: 0,
        buffer_bytes: 0,
        buffer_note: None,
        core_size: 0,
        bytes_written: 0,
        compressed: options.zstd_level.is_some(),
        segments: 0,
        memory_bytes: 0,
        unfaithful: Vec::new(),
        snapshots,
        warnings,
        exited_during_dump: false,
    };
    for c in stopped.threads.iter().filter(|c| !c.thread.stopped()) {
        report.warnings.push(format!(
            "thread {} did not stop within {} ms (in an uninterruptible sleep): its registers are not in the core",
            c.thread.tid,
            options.stop_timeout.as_millis()
        ));
    }

    // Pre-copy whose passes did not keep up with the writes, when it was
    // not asked for: copy-on-write instead, now, during this stop (the
    // final stop would copy as much as the last pass did).
    if let Some(last) = tracking.as_ref().and_then(|t| t.passes.last().copied()) {
        if options.method.is_none() && last >= options.precopy_give_up && gadgets.is_some() {
            tracking = None;
            report.method = Method::CopyOnWrite;
            report.fallback = Some(format!(
                "pre-copy did not keep up with the process's writes (its last pass copied {} KiB written meanwhile, the limit to copy while stopped is {} KiB)",
                last >> 10,
                options.precopy_give_up >> 10
            ));
        }
    }
    let mut sink = Some(sink);
    if let (Method::PreCopy, Some(tracking)) = (report.method, tracking) {
        let given = sink.take().expect("the sink, not used yet");
        match finish_tracking(
            &mut tracer,
            &mut stopped,
            identity,
            options,
            tracking,
            given,
            &mut report,
            &mut stages,
        ) {
            Ok(()) => {}
            Err(FinishError::Failed(e)) => return Err(e),
            // The staging file's budget ran out during this stop: a
            // copy-on-write copy instead, now.
            Err(FinishError::OverBudget { why, sink: back }) => {
                if options.method == Some(Method::PreCopy) {
                    return Err(LiveError::new(ErrorKind::Unsupported, why));
                }
                report.method = Method::CopyOnWrite;
                report.fallback = Some(why);
                sink = Some(*back);
            }
        }
    }
    let method = report.method;
    let sink = match (method, gadgets, sink) {
        (_, _, None) => None,
        (Method::CopyOnWrite, Some(gadgets), Some(sink)) => {
            match copy_on_write(&mut tracer, &mut stopped, options, &gadgets, sink, &mut report, &mut stages) {
                Ok(()) => None,
                Err(CowError::Failed(e)) => return Err(e),
                Err(CowError::Fallback { why, sink }) => {
                    if options.method == Some(Method::CopyOnWrite) {
                        return Err(LiveError::new(ErrorKind::Unsupported, why));
                    }
                    report.method = Method::StopAndCopy;
                    report.fallback = Some(why);
                    Some(*sink)
                }
            }
        }
        (_, _, sink) => sink,
    };
    if let Some(sink) = sink {
        if let Buffer::Lazy = buffer {
            // Copy-on-write fell back during the stop: a buffer that grows
            // as the copy needs it (its pages faulted in during the stop).
            buffer = match stash::limit(options.stop_copy_memory) {
                0 => Buffer::None("no buffer allowed (stop_copy_memory = 0)".into()),
                limit => Buffer::Reserved(Reserved::new(0, limit, options.copy_buffer)?),
            };
        }
        stop_and_copy(
            &mut tracer,
            &mut stopped,
            identity,
            options,
            sink,
            buffer,
            &mut report,
            &mut stages,
        )?;
    }
    stages.reach(Stage::Done);
    Ok(report)
}

/// The command line as text, NULs as spaces, at most 4 KiB.
fn command_line(raw: &[u8]) -> String {
    let text: Vec<u8> = raw
        .iter()
        .take(4096)
        .map(|&b| if b == 0 { b' ' } else { b })
        .collect();
    String::from_utf8_lossy(&text).trim_end().to_string()
}

/// Stop-and-copy's buffer (`stash`), or why there is none.
enum Buffer {
    Reserved(Reserved),
    /// The core is written during the stop; why.
    None(String),
    /// Not decided yet (copy-on-write, which may fall back).
    Lazy,
}

/// Allocates stop-and-copy's buffer for the memory `pid` has now (before
/// the stop), within the limit; none when the process is larger.
fn reserve_buffer(pid: Pid, options: &Options) -> Result<Buffer> {
    let limit = stash::limit(options.stop_copy_memory);
    if limit == 0 {
        return Ok(Buffer::None(
            "no buffer allowed (stop_copy_memory = 0, or no memory available): the core was written while the threads were stopped".into(),
        ));
    }
    let Some(estimate) = stash::estimate(pid) else {
        // Unknown (no smaps_rollup): grown during the stop, within the limit.
        return Ok(Buffer::Reserved(Reserved::new(0, limit, options.copy_buffer)?));
    };
    if estimate > limit {
        return Ok(Buffer::None(format!(
            "the process's memory ({} MiB resident and swapped) is more than the stop-and-copy buffer may hold ({} MiB, three quarters of the memory available): the core was written while the threads were stopped",
            estimate >> 20,
            limit >> 20
        )));
    }
    match Reserved::new(estimate, limit, options.copy_buffer) {
        Ok(reserved) => Ok(Buffer::Reserved(reserved)),
        Err(e) => Ok(Buffer::None(format!(
            "{}: the core was written while the threads were stopped",
            e.message
        ))),
    }
}

/// Why copy-on-write (or pre-copy, whose `userfaultfd()` is injected the
/// same way) cannot be used for this process (decided before it is
/// stopped), if it cannot.
fn copy_on_write_blocker(target: &Target) -> Option<String> {
    if target.status.seccomp != 0 {
        return Some(format!(
            "process {} runs under a seccomp filter, which the injected clone() could violate",
            target.pid
        ));
    }
    if target.status.x86_thread_features.contains("shstk") {
        return Some(format!(
            "process {} uses shadow stacks, which the injection's safety net cannot return through",
            target.pid
        ));
    }
    None
}

/// The method, why the one wanted was not chosen when it was not, and (for
/// copy-on-write and pre-copy) the code sequences their injections use.
fn choose_method(
    target: &Target,
    options: &Options,
) -> Result<(Method, Option<String>, Option<Gadgets>)> {
    let default = if options.precopy_by_default {
        Method::DEFAULT
    } else {
        Method::CopyOnWrite
    };
    let wanted = options.method.unwrap_or(default);
    if wanted == Method::StopAndCopy {
        return Ok((Method::StopAndCopy, None, None));
    }
    let explicit = options.method == Some(wanted);
    let refuse = |why: String| {
        if explicit {
            Err(LiveError::new(ErrorKind::Unsupported, why))
        } else {
            Ok((Method::StopAndCopy, Some(why), None))
        }
    };
    if let Some(why) = copy_on_write_blocker(target) {
        return refuse(why);
    }
    let maps = procfs::maps(target.pid).unwrap_or_default();
    match inject::find_gadgets(target.pid, &maps) {
        Some(gadgets) => Ok((wanted, None, Some(gadgets))),
        None => refuse(format!(
            "process {} has no `syscall; ret` and `rt_sigreturn` sequences in its code for the injection's safety net",
            target.pid
        )),
    }
}

/// Stops every thread and reads what the notes need.
fn stop(
    tracer: &mut Tracer,
    target: &Target,
    identity: &Identity,
    options: &Options,
    stages: &mut Stages,
) -> Result<Stopped> {
    let pid = target.pid;
    let mut frozen = freeze::freeze(
        tracer,
        pid,
        options.stop_timeout,
        || stages.reach(Stage::Seized),
        || identity.verify(),
    )?;
    let stop_us = micros(frozen.since.elapsed());
    let mut threads = Vec::new();
    for thread in &mut frozen.threads {
        let captured = capture(pid, thread.clone());
        if let Some(saved) = captured.saved.as_ref().filter(|s| s.run_again) {
            // Rewound now, so that it waits again even if the dumper dies.
            if sys::set_regs(thread.tid, &crate::restart::run_again(&saved.regs)).is_ok() {
                thread.rewound = Some((saved.regs, saved.sigmask));
            }
        }
        threads.push(captured);
    }
    // The main thread first (gdb's current thread), then the others.
    threads.sort_by_key(|c| (c.thread.tid != pid, !c.thread.stopped(), c.thread.tid));
    let mm_pid = if frozen.threads.iter().any(|t| t.tid == pid) {
        pid
    } else {
        frozen.stopped().map(|t| t.tid).next().unwrap_or(pid)
    };
    if let Some(c) = threads.iter().find(|c| c.saved.is_some()) {
        let cs = c.saved.as_ref().map_or(0, |s| s.regs.cs);
        if cs != 0x33 {
            return Err(LiveError::new(
                ErrorKind::Unsupported,
                format!(
                    "process {pid} is not a 64-bit process (code segment {cs:#x}): not supported"
                ),
            ));
        }
    }
    let stat = procfs::stat(mm_pid).unwrap_or_else(|_| target.stat.clone());
    let main_state = threads.first().map_or('R', |c| c.thread.state_before);
    let process = ProcessInfo {
        pid,
        ppid: stat.ppid,
        pgrp: stat.pgrp,
        sid: stat.session,
        uid: target.status.uids[0],
        gid: target.status.gids[0],
        name: target.status.name.as_bytes().to_vec(),
        cmdline: procfs::cmdline(pid),
        state: main_state,
        nice: stat.nice,
        flags: stat.flags,
        cutime: stat.cutime,
        cstime: stat.cstime,
    };
    let auxv = procfs::auxv(mm_pid).unwrap_or_default();
    let filter = procfs::coredump_filter(mm_pid);
    let maps = procfs::maps(mm_pid).map_err(|_| freeze::exited_error(pid))?;
    let captured_us = micros(frozen.since.elapsed());
    Ok(Stopped {
        frozen,
        threads,
        process,
        auxv,
        filter,
        maps,
        mm_pid,
        stop_us,
        captured_us,
        boost: None,
    })
}

/// The state of one thread (registers only if it is stopped).
fn capture(pid: Pid, thread: Thread) -> Captured {
    let tid = thread.tid;
    let status = procfs::task_status(pid, tid).unwrap_or_default();
    let stat = procfs::task_stat(pid, tid).unwrap_or_default();
    let mut info = ThreadInfo {
        tid,
        sig_pending: status.sig_pending,
        sig_blocked: status.sig_blocked,
        utime: stat.utime,
        stime: stat.stime,
        ..ThreadInfo::default()
    };
    if let Some(Event::Signal(signal)) = thread.stop {
        info.signal = signal;
        info.siginfo = thread.siginfo;
    }
    let mut saved = None;
    if thread.stopped() {
        if let Ok(regs) = sys::get_regs(tid) {
            info.regs = regs_words(&regs);
            info.fpregs = sys::get_fpregs(tid).ok();
            info.xstate = sys::get_regset(tid, sys::NT_X86_XSTATE, 64 * 1024).ok();
            let sigmask = sys::get_sigmask(tid).unwrap_or(status.sig_blocked);
            info.sig_blocked = sigmask;
            let run_again = thread.stop == Some(Event::Interrupted)
                && crate::restart::interrupted_endless_wait(&regs)
                && !crate::restart::deliverable_signal_pending(pid, tid, sigmask);
            saved = Some(Saved {
                regs,
                sigmask,
                xstate: info.xstate.clone(),
                fpregs: info.fpregs.clone(),
                run_again,
            });
        }
    }
    Captured {
        name: procfs::task_comm(pid, tid),
        thread,
        info,
        saved,
    }
}

/// `struct user_regs_struct` as the 27 words of `elf_gregset_t`.
fn regs_words(r: &libc::user_regs_struct) -> [u64; 27] {
    [
        r.r15, r.r14, r.r13, r.r12, r.rbp, r.rbx, r.r11, r.r10, r.r9, r.r8, r.rax, r.rcx, r.rdx,
        r.rsi, r.rdi, r.orig_rax, r.rip, r.cs, r.eflags, r.rsp, r.ss, r.fs_base, r.gs_base, r.ds,
        r.es, r.fs, r.gs,
    ]
}

/// Where the bytes of a segment come from.
enum Source {
    /// Read from this process's memory.
    Memory(Content),
    /// Read during the stop (copy-on-write: memory the copy lacks).
    Stashed(Vec<u8>),
    /// Copied into pre-copy's staging file, at this offset.
    Staged(u64),
}

/// A segment of the core and the source of its bytes.
struct Planned {
    segment: Segment,
    source: Source,
}

/// The segments of `mappings` (smaps, by address) under `filter`; the
/// first page of an ELF file mapping is kept only if it holds an ELF
/// header (read through `copier`).
fn plan(mappings: &[Mapping], filter: u32, copier: &Copier) -> Vec<Planned> {
    mappings
        .iter()
        .map(|m| {
            let filesz = match regions::dump_of(m, filter) {
                Dump::Nothing => 0,
                Dump::Whole => m.len(),
                Dump::ElfHeader => match copier.peek(m.start, 4) {
                    Some(magic) if magic == b"\x7fELF" => PAGE_SIZE,
                    _ => 0,
                },
            };
            Planned {
                segment: Segment {
                    vaddr: m.start,
                    memsz: m.len(),
                    filesz,
                    flags: regions::segment_flags(m),
                    offset: 0,
                },
                source: Source::Memory(regions::content_of(m)),
            }
        })
        .collect()
}

/// The notes' thread list.
fn thread_infos(stopped: &Stopped) -> Vec<ThreadInfo> {
    stopped.threads.iter().map(|c| c.info.clone()).collect()
}

/// Hands the head and every segment, in address order, to `writer`,
/// reading memory with `copier`; returns how many segments there are and
/// the bytes of memory in them.
fn write_core(
    writer: &mut dyn Destination,
    planned: Vec<Planned>,
    notes: &[u8],
    copier: &mut Copier,
    on_chunk: &mut dyn FnMut(),
) -> Result<(usize, u64)> {
    write_core_staged(writer, planned, notes, copier, None, on_chunk)
}

/// [`write_core`], segments staged in `staging` read from it.
fn write_core_staged(
    writer: &mut dyn Destination,
    planned: Vec<Planned>,
    notes: &[u8],
    copier: &mut Copier,
    staging: Option<&std::fs::File>,
    on_chunk: &mut dyn FnMut(),
) -> Result<(usize, u64)> {
    let order: Vec<usize> = (0..planned.len()).collect();
    let (segments, sources): (Vec<Segment>, Vec<Source>) =
        planned.into_iter().map(|p| (p.segment, p.source)).unzip();
    let layout = Layout::new(segments, notes.len() as u64, &order);
    writer.write(&layout.head(notes)).map_err(output_error)?;
    let mut memory = 0;
    for (segment, source) in layout.segments.iter().zip(sources) {
        if segment.filesz == 0 {
            continue;
        }
        debug_assert_eq!(writer.position(), segment.offset);
        memory += segment.filesz;
        match source {
            Source::Memory(content) => {
                writer.copy(copier, segment.vaddr, segment.filesz, content, on_chunk)?;
            }
            Source::Stashed(bytes) => write_buffer(writer, &bytes)?,
            Source::Staged(offset) => {
                let staging = staging.ok_or_else(|| {
                    LiveError::new(ErrorKind::Internal, "a staged segment without its file")
                })?;
                copy_staged(writer, staging, offset, segment.filesz, on_chunk)?;
            }
        }
    }
    if let Some(shdr) = layout.extended_count_header() {
        writer.write(&shdr).map_err(output_error)?;
    }
    debug_assert_eq!(writer.position(), layout.size);
    Ok((layout.segments.len(), memory))
}

/// Where the core's pieces go, in file order: the writing thread
/// ([`Writer`]), or stop-and-copy's buffer ([`Stash`]).
trait Destination {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<()>;
    fn skip(&mut self, len: u64) -> std::io::Result<()>;
    fn position(&self) -> u64;
    /// `[start, start + len)` of the process's memory, read with `copier`.
    fn copy(
        &mut self,
        copier: &mut Copier,
        start: u64,
        len: u64,
        content: Content,
        on_chunk: &mut dyn FnMut(),
    ) -> Result<()>;
}

impl Destination for Writer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        Writer::write(self, bytes)
    }
    fn skip(&mut self, len: u64) -> std::io::Result<()> {
        Writer::skip(self, len)
    }
    fn position(&self) -> u64 {
        Writer::position(self)
    }
    fn copy(
        &mut self,
        copier: &mut Copier,
        start: u64,
        len: u64,
        content: Content,
        on_chunk: &mut dyn FnMut(),
    ) -> Result<()> {
        copier.copy(start, len, content, self, on_chunk)
    }
}

impl Destination for Stash {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        Stash::write(self, bytes)
    }
    fn skip(&mut self, len: u64) -> std::io::Result<()> {
        Stash::skip(self, len)
    }
    fn position(&self) -> u64 {
        Stash::position(self)
    }
    fn copy(
        &mut self,
        copier: &mut Copier,
        start: u64,
        len: u64,
        content: Content,
        on_chunk: &mut dyn FnMut(),
    ) -> Result<()> {
        Stash::copy(self, copier, start, len, content, on_chunk)
    }
}

/// Writes `len` bytes of the staging file from `offset`, zero pages as
/// holes.
fn copy_staged(
    writer: &mut dyn Destination,
    staging: &std::fs::File,
    offset: u64,
    len: u64,
    on_chunk: &mut dyn FnMut(),
) -> Result<()> {
    use std::os::unix::fs::FileExt;
    let mut chunk = vec![0u8; 1 << 20];
    let mut done = 0;
    while done < len {
        let n = (len - done).min(chunk.len() as u64) as usize;
        staging
            .read_exact_at(&mut chunk[..n], offset + done)
            .map_err(|e| {
                LiveError::new(
                    ErrorKind::Output,
                    format!("reading the pre-copy's staging file: {e}"),
                )
            })?;
        let page = PAGE_SIZE as usize;
        let mut i = 0;
        while i < n {
            let zero = memory::is_zero(&chunk[i..(i + page).min(n)]);
            let mut j = (i + page).min(n);
            while j < n && memory::is_zero(&chunk[j..(j + page).min(n)]) == zero {
                j = (j + page).min(n);
            }
            if zero {
                writer.skip((j - i) as u64).map_err(output_error)?;
            } else {
                writer.write(&chunk[i..j]).map_err(output_error)?;
            }
            i = j;
        }
        done += n as u64;
        on_chunk();
    }
    Ok(())
}

/// Writes bytes read earlier, zero pages as holes.
fn write_buffer(writer: &mut dyn Destination, bytes: &[u8]) -> Result<()> {
    for page in bytes.chunks(PAGE_SIZE as usize) {
        if page.iter().all(|&b| b == 0) {
            writer.skip(page.len() as u64).map_err(output_error)?;
        } else {
            writer.write(page).map_err(output_error)?;
        }
    }
    Ok(())
}

/// The writing thread over `sink`, with two copy buffers.
fn writer(sink: CoreSink, options: &Options) -> Result<Writer> {
    Writer::new(sink, 2, options.copy_buffer).map_err(|e| {
        LiveError::new(
            ErrorKind::Internal,
            format!("starting the core's writing thread: {e}"),
        )
    })
}

/// After stop-and-copy's last read, before the threads are let go: the
/// memory read is the process's, as it was at the stop. The pidfd's
/// process must still exist with the same start time: the pid then named
/// it throughout (a pid is reused only once its process is gone and
/// reaped), so every read made by pid (`process_vm_readv`, the `/proc`
/// files opened) was of it. And its address space must still be there: a
/// process killed during the copy (SIGKILL ends a ptrace stop) leaves
/// reads that return nothing, which would be taken for holes (`probe`: an
/// address the copy read, so reading it again has no effect of its own).
/// Otherwise the dump fails and the core is discarded (the caller removes a
/// file it created; the buffer is never written).
fn check_after_copy(identity: &Identity, pid: Pid, copier: &Copier, probe: u64) -> Result<()> {
    if identity.verify().is_err() {
        return Err(identity::gone_during_copy(pid));
    }
    if !copier.address_space_alive(probe) {
        return Err(LiveError::new(
            ErrorKind::Exited,
            format!("process {pid} exited during the dump, while its memory was copied: the core was discarded"),
        ));
    }
    Ok(())
}

/// The first address of memory the core holds (read by the copy).
fn probe_address(planned: &[Planned]) -> u64 {
    planned
        .iter()
        .find(|p| p.segment.filesz > 0 && matches!(p.source, Source::Memory(_)))
        .map_or(0, |p| p.segment.vaddr)
}

/// Method (a): copy everything while stopped (into the buffer when there
/// is one), check that it was the process's (`check_after_copy`), let go,
/// then write the core from the buffer.
#[allow(clippy::too_many_arguments)]
fn stop_and_copy(
    tracer: &mut Tracer,
    stopped: &mut Stopped,
    identity: &Identity,
    options: &Options,
    sink: CoreSink,
    buffer: Buffer,
    report: &mut LiveReport,
    stages: &mut Stages,
) -> Result<()> {
    let pid = stopped.frozen.pid;
    let smaps = procfs::smaps(stopped.mm_pid).map_err(|_| freeze::exited_error(pid))?;
    let mut copier = Copier::new(stopped.mm_pid, options.copy_buffer);
    let planned = plan(&smaps, stopped.filter, &copier);
    let notes = notes::build(
        &stopped.process,
        &thread_infos(stopped),
        &stopped.auxv,
        &smaps,
    );
    mark(report, stopped, "plan");
    let probe = probe_address(&planned);
    let copy_started = Instant::now();
    let reserved = match buffer {
        Buffer::Reserved(reserved) => reserved,
        // Decided by the caller before this.
        Buffer::Lazy => Reserved::new(0, stash::limit(options.stop_copy_memory), options.copy_buffer)?,
        Buffer::None(why) => {
            report.buffer_note = Some(why);
            return stream_while_stopped(
                tracer, stopped, identity, options, sink, planned, &notes, copier, report,
                stages,
            );
        }
    };
    let mut stash =
        Stash::new(sink, reserved, options.copy_buffer).with_readers(options.copy_threads);
    let mut on_chunk = || stages.reach(Stage::Copying);
    let handed = write_core(&mut stash, planned, &notes, &mut copier, &mut on_chunk);
    report.copy_us = micros(copy_started.elapsed());
    mark(report, stopped, "copy");
    let handed =
        handed.and_then(|h| check_after_copy(identity, pid, &copier, probe).map(|()| h));
    report.buffer_bytes = stash.allocated();
    report.buffer_note = stash.spill_reason.clone();
    // Let go once everything is copied; the core is written after.
    let_go(tracer, stopped, report, stages);
    let (segments, memory) = handed?;
    report.write_begin_ns = sys::monotonic_ns();
    let (size, bytes) = stash.finish().map_err(output_error)?;
    note_written(report, (segments, memory), (size, bytes));
    Ok(())
}

/// The core is written: when it ended, and what it holds (`segments`,
/// `memory` bytes) and took (`size`, `bytes` written).
fn note_written(report: &mut LiveReport, (segments, memory): (usize, u64), (size, bytes): (u64, u64)) {
    report.write_end_ns = sys::monotonic_ns();
    report.core_size = size;
    report.bytes_written = bytes;
    report.segments = segments;
    report.memory_bytes = memory;
}

/// Stop-and-copy without a buffer: the core is written while the threads
/// are stopped, by a thread of its own, as the memory is read; the threads
/// are let go once the last piece is read and checked (`check_after_copy`).
#[allow(clippy::too_many_arguments)]
fn stream_while_stopped(
    tracer: &mut Tracer,
    stopped: &mut Stopped,
    identity: &Identity,
    options: &Options,
    sink: CoreSink,
    planned: Vec<Planned>,
    notes: &[u8],
    mut copier: Copier,
    report: &mut LiveReport,
    stages: &mut Stages,
) -> Result<()> {
    let pid = stopped.frozen.pid;
    let probe = probe_address(&planned);
    let copy_started = Instant::now();
    report.write_begin_ns = sys::monotonic_ns();
    let mut writer = writer(sink, options)?;
    let mut on_chunk = || stages.reach(Stage::Copying);
    let handed = write_core(&mut writer, planned, notes, &mut copier, &mut on_chunk);
    report.copy_us = micros(copy_started.elapsed());
    mark(report, stopped, "copy");
    let handed =
        handed.and_then(|h| check_after_copy(identity, pid, &copier, probe).map(|()| h));
    // Let go once everything is read: the writing thread finishes after.
    let_go(tracer, stopped, report, stages);
    let (segments, memory) = handed?;
    let (size, bytes) = writer.finish().map_err(output_error)?;
    note_written(report, (segments, memory), (size, bytes));
    Ok(())
}

/// Notes in the report that the pause's stage `name` ended now.
fn mark(report: &mut LiveReport, stopped: &Stopped, name: &str) {
    report
        .pause_stages
        .push((name.into(), micros(stopped.frozen.since.elapsed())));
}

/// Lets every thread go, and says in the report when (the pause's end, and
/// each thread's).
fn let_go(
    tracer: &mut Tracer,
    stopped: &mut Stopped,
    report: &mut LiveReport,
    stages: &mut Stages,
) {
    let pause = stopped.frozen.resume(tracer);
    report.pause_end_ns = sys::monotonic_ns();
    report.pause_us = micros(pause);
    report.pause_stages.push(("resume".into(), report.pause_us));
    if let Some(boost) = stopped.boost.take() {
        boost.lower();
    }
    for t in &mut report.threads {
        if let Some(thread) = stopped.frozen.threads.iter().find(|f| f.tid == t.tid) {
            t.stopped_to_ns = thread.let_go_ns;
        }
    }
    stages.reach(Stage::Resumed);
}

/// How a copy-on-write dump did not succeed.
enum CowError {
    /// The copy could not be made (still stopped): why, and the sink back
    /// for stopping and copying instead.
    Fallback { why: String, sink: Box<CoreSink> },
    /// Failed after the target resumed, or the target is gone.
    Failed(LiveError),
}

/// Method (b): make the copy, let go, write the copy, reap it.
fn copy_on_write(
    tracer: &mut Tracer,
    stopped: &mut Stopped,
    options: &Options,
    gadgets: &Gadgets,
    sink: CoreSink,
    report: &mut LiveReport,
    stages: &mut Stages,
) -> std::result::Result<(), CowError> {
    let sink = Box::new(sink);
    let pid = stopped.frozen.pid;
    let fork_started = Instant::now();
    let Some(chosen) = injectable(stopped, gadgets) else {
        return Err(CowError::Fallback {
            why: format!(
                "no stopped thread of process {pid} has room on its stack for the injection"
            ),
            sink,
        });
    };
    let tid = chosen.thread.tid;
    let saved = chosen.saved.clone().expect("chosen for its saved state");
    let mut progress = |p: inject::Progress| match p {
        inject::Progress::SetUp => stages.reach(Stage::Injecting),
        inject::Progress::Child(copy) => (stages.on_copy)(copy),
        inject::Progress::Returned => stages.reach(Stage::Injected),
    };
    let outcome = match inject::run(
        tracer,
        pid,
        tid,
        &saved,
        gadgets,
        Call::Clone,
        &mut progress,
    ) {
        Ok(outcome) => outcome,
        // Nothing to fall back to: the process is gone.
        Err(e) if e.kind == ErrorKind::Exited => return Err(CowError::Failed(e)),
        Err(e) => {
            return Err(CowError::Fallback {
                why: format!("injecting clone() into thread {tid}: {e}"),
                sink,
            })
        }
    };
    if outcome.result <= 0 {
        let errno = std::io::Error::from_raw_os_error((-outcome.result) as i32);
        return Err(CowError::Fallback {
            why: format!("the injected clone() failed in process {pid}: {errno}"),
            sink,
        });
    }
    let copy = outcome.result as Pid;
    mark(report, stopped, "clone");
    if let Err(why) = adopt_copy(tracer, copy, &outcome) {
        let _ = sys::kill(copy, libc::SIGKILL);
        return Err(CowError::Fallback { why, sink });
    }
    mark(report, stopped, "adopt");
    // What the copy lacks: MADV_DONTFORK mappings (in the target's maps,
    // not in the copy's), read now, while still stopped.
    let copy_maps = procfs::maps(copy).unwrap_or_default();
    let missing: Vec<Mapping> = stopped
        .maps
        .iter()
        .filter(|m| !copy_maps.iter().any(|c| c.same_as(m)))
        .cloned()
        .collect();
    let stashed = if missing.is_empty() {
        Vec::new()
    } else {
        stash_missing(stopped, &missing, options, report)
    };
    report.fork_us = micros(fork_started.elapsed());
    mark(report, stopped, "fork");
    let_go(tracer, stopped, report, stages);

    let result = dump_copy(
        tracer, stopped, options, gadgets, copy, stashed, *sink, report, stages,
    );
    // The copy dies whatever happened, then is reaped in the target.
    let _ = sys::kill(copy, libc::SIGKILL);
    let deadline = Instant::now() + Duration::from_secs(10);
    while let Some(event) = tracer.wait(copy, deadline) {
        if event == Event::Exited {
            break;
        }
    }
    match reap_copy(tracer, pid, copy, gadgets, stages) {
        Ok(pause) => report.reap_pause_us = micros(pause),
        Err(why) => report.warnings.push(why),
    }
    result.map_err(CowError::Failed)
}

/// The thread to run an injected system call: stopped by our interrupt
/// (not at a signal or an event), with room on its stack; the main thread
/// if it can.
fn injectable<'a>(stopped: &'a Stopped, gadgets: &Gadgets) -> Option<&'a Captured> {
    stopped.threads.iter().find(|c| {
        c.thread.stop == Some(Event::Interrupted)
            && c.saved
                .as_ref()
                .is_some_and(|s| inject::fits(s, gadgets, &stopped.maps))
    })
}

/// The copy's first stop: it is made to die with us, and the stack bytes
/// the injection used are put back in its memory.
fn adopt_copy(
    tracer: &mut Tracer,
    copy: Pid,
    outcome: &inject::Outcome,
) -> std::result::Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    match tracer.wait(copy, deadline) {
        Some(Event::Interrupted) | Some(Event::GroupStop(_)) => {}
        other => return Err(format!("the copy {copy} did not stop at birth ({other:?})")),
    }
    sys::set_options(copy, libc::PTRACE_O_EXITKILL | libc::PTRACE_O_TRACESYSGOOD)
        .map_err(|e| format!("making the copy {copy} die with the dumper: {e}"))?;
    match sys::write_memory(copy, outcome.scratch_start, &outcome.scratch_original) {
        Ok(n) if n == outcome.scratch_original.len() => Ok(()),
        _ => Err(format!("restoring the stack bytes of the copy {copy}")),
    }
}

/// Reads, while the threads are stopped, the memory the copy lacks, up to
/// `max_stop_copy` bytes; what is left out is reported.
fn stash_missing(
    stopped: &Stopped,
    missing: &[Mapping],
    options: &Options,
    report: &mut LiveReport,
) -> Vec<(Mapping, Vec<u8>)> {
    let smaps = procfs::smaps(stopped.mm_pid).unwrap_or_default();
    let copier = Copier::new(stopped.mm_pid, PAGE_SIZE as usize);
    let mut budget = options.max_stop_copy;
    let mut stashed = Vec::new();
    for m in missing {
        let detailed = smaps
            .iter()
            .find(|s| s.same_as(m))
            .cloned()
            .unwrap_or_else(|| m.clone());
        let planned = plan(std::slice::from_ref(&detailed), stopped.filter, &copier);
        let filesz = planned[0].segment.filesz;
        if filesz == 0 {
            continue;
        }
        if filesz > budget {
            report.unfaithful.push(RegionNote {
                start: m.start,
                end: m.end,
                path: m.path.clone(),
                why: format!(
                    "MADV_DONTFORK memory not copied by the fork; more than the {} bytes read while stopped: left out",
                    options.max_stop_copy
                ),
            });
            continue;
        }
        budget -= filesz;
        let mut bytes = vec![0u8; filesz as usize];
        for (i, page) in bytes.chunks_mut(PAGE_SIZE as usize).enumerate() {
            // A page that cannot be read stays zeroes (a hole).
            let _ = copier.read(m.start + i as u64 * PAGE_SIZE, page);
        }
        stashed.push((detailed, bytes));
    }
    stashed
}

/// Writes the core from the copy (the target runs meanwhile).
#[allow(clippy::too_many_arguments)]
fn dump_copy(
    tracer: &mut Tracer,
    stopped: &Stopped,
    options: &Options,
    gadgets: &Gadgets,
    copy: Pid,
    stashed: Vec<(Mapping, Vec<u8>)>,
    sink: CoreSink,
    report: &mut LiveReport,
    stages: &mut Stages,
) -> Result<()> {
    if let Err(e) = inject::close_descriptors(tracer, copy, gadgets) {
        report
            .warnings
            .push(format!("the copy kept the target's descriptors: {e}"));
    }
    if let Err(e) = std::fs::write(format!("/proc/{copy}/oom_score_adj"), "1000") {
        report
            .warnings
            .push(format!("setting the copy's oom_score_adj: {e}"));
    }
    let copy_smaps = procfs::smaps(copy).map_err(|e| {
        LiveError::new(
            ErrorKind::Internal,
            format!("reading the copy's mappings: {e}"),
        )
    })?;
    let mut copier = Copier::new(copy, options.copy_buffer);
    let mut planned = plan(&copy_smaps, stopped.filter, &copier);
    for (p, m) in planned.iter_mut().zip(&copy_smaps) {
        // MADV_WIPEONFORK memory reads as zeroes in the copy: left out.
        if m.has_flag(b"wf") && p.segment.filesz > 0 {
            p.segment.filesz = 0;
            report.unfaithful.push(RegionNote {
                start: m.start,
                end: m.end,
                path: m.path.clone(),
                why: "MADV_WIPEONFORK memory (zeroes in the copy): left out".into(),
            });
        }
    }
    for (m, bytes) in stashed {
        planned.push(Planned {
            segment: Segment {
                vaddr: m.start,
                memsz: m.len(),
                filesz: bytes.len() as u64,
                flags: regions::segment_flags(&m),
                offset: 0,
            },
            source: Source::Stashed(bytes),
        });
    }
    // Mappings the copy lacks and the core leaves out still get their
    // program header (as the kernel gives one to every mapping).
    for m in &stopped.maps {
        if !planned.iter().any(|p| p.segment.vaddr == m.start) {
            planned.push(Planned {
                segment: Segment {
                    vaddr: m.start,
                    memsz: m.len(),
                    filesz: 0,
                    flags: regions::segment_flags(m),
                    offset: 0,
                },
                source: Source::Stashed(Vec::new()),
            });
        }
    }
    planned.sort_by_key(|p| p.segment.vaddr);
    let notes = notes::build(
        &stopped.process,
        &thread_infos(stopped),
        &stopped.auxv,
        &stopped.maps,
    );
    let copy_started = Instant::now();
    report.write_begin_ns = sys::monotonic_ns();
    // The copy is written at leisure: by threads of the lowest priority, so
    // that the process, running again, is not slowed down by its own dump
    // on a busy machine. This (tracer) thread keeps its priority, for the
    // reaping stop to come, and lets go of any thread that was late to
    // stop (only the tracer can).
    let written = std::thread::scope(|scope| {
        let reader = std::thread::Builder::new()
            .name("core-reader".into())
            .spawn_scoped(scope, || {
                sys::lowest_priority();
                let mut writer = writer(sink, options)?;
                let mut on_chunk = || stages.reach(Stage::DumpingCopy);
                let (segments, memory) =
                    write_core(&mut writer, planned, &notes, &mut copier, &mut on_chunk)?;
                let (size, bytes) = writer.finish().map_err(output_error)?;
                Ok::<_, LiveError>((size, bytes, segments, memory))
            })
            .map_err(|e| LiveError::new(ErrorKind::Internal, format!("starting the copy's reader: {e}")))?;
        while !reader.is_finished() {
            tracer.release_stragglers();
            std::thread::sleep(Duration::from_millis(5));
        }
        reader
            .join()
            .unwrap_or_else(|_| Err(LiveError::new(ErrorKind::Internal, "the copy's reader panicked")))
    });
    let (size, bytes, segments, memory) = written?;
    note_written(report, (segments, memory), (size, bytes));
    report.copy_us = micros(copy_started.elapsed());
    report.copy_private_bytes = procfs::private_bytes(copy).unwrap_or(0);
    if !procfs::stat(stopped.frozen.pid).is_ok_and(|s| !matches!(s.state, 'Z' | 'X')) {
        report.exited_during_dump = true;
    }
    Ok(())
}

/// Reaps a copy whose dumping child died (in a child of the caller that
/// becomes the tracer for it): waits for the copy to end (it dies with its
/// tracer), then reaps it in the target.
pub fn reap_orphaned_copy(pid: Pid, copy: Pid) -> std::result::Result<(), String> {
    let mut tracer = Tracer::new().map_err(|e| e.message)?;
    let deadline = Instant::now() + Duration::from_secs(5);
    while !procfs::stat(copy).is_ok_and(|s| s.ppid != pid || s.state == 'Z') {
        if Instant::now() >= deadline {
            return Err(format!("the copy {copy} of process {pid} did not end"));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let maps = procfs::maps(pid).map_err(|e| format!("reading the maps of process {pid}: {e}"))?;
    let gadgets = inject::find_gadgets(pid, &maps)
        .ok_or_else(|| format!("process {pid} has no code sequences for the injection"))?;
    let mut stages = Stages {
        hook: None,
        seen: Vec::new(),
        on_copy: &|_| {},
    };
    reap_copy(&mut tracer, pid, copy, &gadgets, &mut stages).map(drop)
}

/// Reaps the dead copy in the target (a `wait4()` injected into one of its
/// threads, stopped for that alone); returns how long that thread was
/// stopped.
fn reap_copy(
    tracer: &mut Tracer,
    pid: Pid,
    copy: Pid,
    gadgets: &Gadgets,
    stages: &mut Stages,
) -> std::result::Result<Duration, String> {
    // Only a zombie child of the target needs it (a target that exited
    // left the copy to init, which reaps it).
    let is_zombie_child = procfs::stat(copy).is_ok_and(|s| s.ppid == pid && s.state == 'Z');
    if !is_zombie_child {
        return Ok(Duration::ZERO);
    }
    let mut gadgets = *gadgets;
    if !inject::still_there(pid, &gadgets) {
        let maps = procfs::maps(pid).unwrap_or_default();
        gadgets = inject::find_gadgets(pid, &maps)
            .ok_or_else(|| format!("the copy {copy} could not be reaped: process {pid} has no code sequences for the injection any more"))?;
    }
    let maps = procfs::maps(pid).unwrap_or_default();
    let tids = procfs::tasks(pid).unwrap_or_default();
    for tid in tids {
        let started = Instant::now();
        if sys::seize(tid, freeze::SEIZE_OPTIONS).is_err() {
            continue;
        }
        let _ = sys::interrupt(tid);
        let stop = tracer.wait(tid, Instant::now() + Duration::from_secs(2));
        if stop != Some(Event::Interrupted) {
            match stop {
                None => tracer.detach_when_stopped(tid),
                Some(Event::Exited) => {}
                Some(event) => {
                    let signal = if let Event::Signal(s) = event { s } else { 0 };
                    let _ = sys::detach(tid, signal);
                }
            }
            continue;
        }
        let saved = sys::get_regs(tid).ok().map(|regs| {
            let sigmask = sys::get_sigmask(tid).unwrap_or(0);
            Saved {
                regs,
                sigmask,
                xstate: sys::get_regset(tid, sys::NT_X86_XSTATE, 64 * 1024).ok(),
                fpregs: sys::get_fpregs(tid).ok(),
                run_again: crate::restart::interrupted_endless_wait(&regs)
                    && !crate::restart::deliverable_signal_pending(pid, tid, sigmask),
            }
        });
        let usable = saved
            .as_ref()
            .filter(|s| s.regs.cs == 0x33 && inject::fits(s, &gadgets, &maps));
        let Some(saved) = usable else {
            let _ = sys::detach(tid, 0);
            continue;
        };
        let mut progress = |p: inject::Progress| {
            if p == inject::Progress::SetUp {
                stages.reach(Stage::Reaping);
            }
        };
        let outcome = inject::run(
            tracer,
            pid,
            tid,
            saved,
            &gadgets,
            Call::Wait4(copy),
            &mut progress,
        );
        let _ = sys::detach(tid, 0);
        let stopped_for = started.elapsed();
        return match outcome {
            Ok(o) if o.result == copy as i64 => Ok(stopped_for),
            // -ECHILD: the target reaped it itself (with __WALL).
            Ok(o) if o.result == -(libc::ECHILD as i64) => Ok(stopped_for),
            Ok(o) => Err(format!(
                "reaping the copy {copy} in process {pid}: wait4 returned {}",
                o.result
            )),
            Err(e) => Err(format!("reaping the copy {copy} in process {pid}: {e}")),
        };
    }
    Err(format!(
        "the copy {copy} could not be reaped: no thread of process {pid} could be stopped for it; it stays a zombie until process {pid} exits"
    ))
}

/// Pre-copy (`precopy`): how many passes run while the process runs, at
/// most, after the first (which copies everything)...
const PRECOPY_MAX_PASSES: usize = 8;
/// ... and the written set small enough to leave to the final stop.
const PRECOPY_SMALL_ENOUGH: u64 = 2 << 20;

/// A region pre-copy registered and copies into its staging file.
struct Tracked {
    /// The mapping when it was registered (smaps).
    mapping: Mapping,
    content: Content,
    /// Where its bytes are in the staging file.
    offset: u64,
    /// A scan of it failed (it changed): copied whole in the final stop.
    broken: bool,
    /// A private file mapping: the pages that were private copies (not
    /// the file's) when a pass copied them.
    copies: Vec<(u64, u64)>,
}

/// Pre-copy under way: the process runs, its writes tracked.
struct Tracking {
    tracker: precopy::Tracker,
    staging: precopy::Staging,
    tracked: Vec<Tracked>,
    filter: u32,
    pause_us: u64,
    passes: Vec<u64>,
    /// The mappings with their details (smaps), read after the last pass:
    /// the final stop reads only `maps` (smaps walks every page table: 10
    /// ms and more for a GiB), and takes a mapping's details from here when
    /// it is the same mapping.
    details: Vec<Mapping>,
}

/// How pre-copy's final stop did not complete.
enum FinishError {
    /// The staging file's budget ran out (still stopped, the tracking
    /// ended, the staging file emptied): why, and the sink back for a
    /// copy-on-write copy instead.
    OverBudget { why: String, sink: Box<CoreSink> },
    /// The dump cannot go on.
    Failed(LiveError),
}

impl From<LiveError> for FinishError {
    fn from(e: LiveError) -> FinishError {
        FinishError::Failed(e)
    }
}

/// How pre-copy did not start.
enum TrackError {
    /// It cannot be used here (the process was let go): why.
    Fallback(String),
    /// The process is gone, or the dump cannot go on at all.
    Failed(LiveError),
}

/// Method (c), its first part: a brief stop to get the target's
/// userfaultfd, then, the process running, every region the core will
/// hold registered, write-protected and copied, and the pages written
/// meanwhile copied again, pass after pass, until few are.
fn begin_tracking(
    tracer: &mut Tracer,
    target: &Target,
    identity: &Identity,
    options: &Options,
    gadgets: &Gadgets,
    stages: &mut Stages,
    output_fd: RawFd,
) -> std::result::Result<Tracking, TrackError> {
    let mut first = stop(tracer, target, identity, options, stages).map_err(TrackError::Failed)?;
    stages.reach(Stage::Stopped);
    let taken = take_userfaultfd(tracer, &first, gadgets, identity);
    if taken.is_ok() {
        stages.reach(Stage::Tracking);
    }
    let pause_us = micros(first.frozen.resume(tracer));
    let uffd = taken?;
    let mm_pid = first.mm_pid;
    let filter = first.filter;
    drop(first);
    let mut tracker = precopy::Tracker::with_probe(uffd, mm_pid).map_err(|e| {
        TrackError::Fallback(format!(
            "the kernel refused asynchronous write protection (UFFD_FEATURE_WP_ASYNC): {e}"
        ))
    })?;
    let mut staging = precopy::Staging::new(output_fd, options.staging.as_ref())
        .map_err(|e| TrackError::Fallback(e.message))?;
    let exited = |_| TrackError::Failed(freeze::exited_error(target.pid));
    let smaps = procfs::smaps(mm_pid).map_err(exited)?;
    let mut copier = Copier::new(mm_pid, options.copy_buffer);
    let planned = plan(&smaps, filter, &copier);
    let mut tracked = Vec::new();
    for (m, p) in smaps.iter().zip(&planned) {
        // Shared memory (others may write it) and what is not dumped whole
        // are copied in the final stop.
        if m.shared || p.segment.filesz != m.len() || m.len() == 0 {
            continue;
        }
        if tracker.register(m.start, m.end).is_ok() {
            tracked.push(Tracked {
                mapping: m.clone(),
                content: regions::content_of(m),
                offset: staging.allocate(m.len()),
                broken: false,
                copies: Vec::new(),
            });
        }
    }
    // The passes run at the lowest priority: on a busy machine, the
    // process, running, comes first (this thread, the tracer, keeps its
    // priority for the final stop to come).
    let passes = in_background(tracer, "pre-copy", || {
        let mut buffer = vec![0u8; options.copy_buffer.max(PAGE_SIZE as usize)];
        // The first pass: each region protected, then copied whole; a page
        // written after its protection is copied again by a later pass.
        let mut first_pass = 0;
        for r in &mut tracked {
            if tracker.written(r.mapping.start, r.mapping.end).is_err() {
                r.broken = true;
                continue;
            }
            stages.reach(Stage::PreCopying);
            staging.copy(
                &mut copier,
                &mut buffer,
                r.mapping.start,
                r.mapping.len(),
                r.offset,
                r.content,
                false,
            )?;
            note_copies(&mut tracker, r, r.mapping.start, r.mapping.end);
            first_pass += r.mapping.len();
        }
        let mut passes = vec![first_pass];
        for _ in 0..PRECOPY_MAX_PASSES {
            let copied =
                copy_again(&mut tracker, &staging, &mut tracked, &mut copier, &mut buffer, Again::Written)?;
            passes.push(copied);
            if copied <= PRECOPY_SMALL_ENOUGH {
                break;
            }
        }
        Ok(passes)
    })
    .map_err(|e| {
        // Its blocks go back at once: the core to come needs the room.
        staging.release();
        match e.kind {
            // The staging file could not take it (a full disk, or its
            // budget): the process runs, nothing is lost but the time.
            ErrorKind::Output => TrackError::Fallback(e.message),
            _ => TrackError::Failed(e),
        }
    })?;
    let details = procfs::smaps(mm_pid).map_err(exited)?;
    stages.reach(Stage::PreCopied);
    Ok(Tracking {
        tracker,
        staging,
        tracked,
        filter,
        pause_us,
        passes,
        details,
    })
}

/// Runs `work` in a thread of the lowest priority, this (tracing) thread
/// letting go of any thread late to stop meanwhile (only the tracer can).
fn in_background<T: Send>(
    tracer: &mut Tracer,
    name: &str,
    work: impl FnOnce() -> Result<T> + Send,
) -> Result<T> {
    std::thread::scope(|scope| {
        let worker = std::thread::Builder::new()
            .name(name.into())
            .spawn_scoped(scope, || {
                sys::lowest_priority();
                work()
            })
            .map_err(|e| {
                LiveError::new(ErrorKind::Internal, format!("starting the {name} thread: {e}"))
            })?;
        while !worker.is_finished() {
            tracer.release_stragglers();
            std::thread::sleep(Duration::from_millis(5));
        }
        worker.join().unwrap_or_else(|_| {
            Err(LiveError::new(
                ErrorKind::Internal,
                format!("the {name} thread panicked"),
            ))
        })
    })
}

/// What only smaps says, `MADV_DONTDUMP` (`dd` in `VmFlags`), the final
/// stop takes from the smaps read after the last pass, a few milliseconds
/// before it (smaps during the stop would cost 10 ms and more per GiB; no
/// cheaper interface tells: `PROCMAP_QUERY` gives only r, w, x and shared).
/// A mapping marked in part since is split, so the stop sees it changed
/// and reads smaps then; one marked whole is not. So smaps is read once
/// more once the threads are let go (not in the pause), and a dumped
/// mapping, the same, marked `dd` now and not then is left out: whether
/// the mark came before the stop (as the kernel's core would) or just
/// after it, memory the process asked to keep out of cores is not in
/// this one. (One un-marked in that window stays out: the safe side.)
fn leave_out_marked_since(planned: &mut [Planned], mappings: &[Mapping], pid: Pid) {
    let Ok(now) = procfs::smaps(pid) else {
        // The process is gone: its last mappings were the stop's.
        return;
    };
    for (p, m) in planned.iter_mut().zip(mappings) {
        if p.segment.filesz > 0
            && !m.has_flag(b"dd")
            && now.iter().any(|n| n.same_as(m) && n.has_flag(b"dd"))
        {
            p.segment.filesz = 0;
        }
    }
}

/// Which pages of the tracked regions [`copy_again`] copies again.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Again {
    /// Those written since the last scan (protected again by the scan).
    Written,
    /// In the final stop, after the written ones: those the process gave
    /// back since a pass copied them, without writing them again (not
    /// "written": see the `precopy` module). In an anonymous region, those
    /// with no entry are zeroes (holes in the staging file); in a private
    /// file mapping, the pages that were private copies when copied and
    /// read as the file's now are read again.
    GivenBack,
}

/// The pages of `r` to copy again.
fn listed(tracker: &mut precopy::Tracker, r: &Tracked, again: Again) -> std::io::Result<Vec<(u64, u64)>> {
    let (start, end) = (r.mapping.start, r.mapping.end);
    match (again, r.content) {
        (Again::Written, _) => tracker.written(start, end),
        (Again::GivenBack, Content::Anonymous) => tracker.unpopulated(start, end),
        (Again::GivenBack, Content::Backed) if r.copies.is_empty() => Ok(Vec::new()),
        (Again::GivenBack, Content::Backed) => Ok(tracker
            .file_pages(start, end)?
            .into_iter()
            .flat_map(|(from, to)| {
                r.copies
                    .iter()
                    .map(move |&(s, e)| (s.max(from), e.min(to)))
                    .filter(|(s, e)| s < e)
            })
            .collect()),
    }
}

/// Copies again the pages of the tracked regions `again` says (a region
/// whose scan fails is copied whole in the final stop); returns the bytes
/// copied.
fn copy_again(
    tracker: &mut precopy::Tracker,
    staging: &precopy::Staging,
    tracked: &mut [Tracked],
    copier: &mut Copier,
    buffer: &mut [u8],
    again: Again,
) -> Result<u64> {
    let mut copied = 0;
    for r in tracked.iter_mut().filter(|r| !r.broken) {
        let Ok(ranges) = listed(tracker, r, again) else {
            r.broken = true;
            continue;
        };
        for (start, end) in ranges {
            let (start, end) = (start.max(r.mapping.start), end.min(r.mapping.end));
            if start >= end {
                continue;
            }
            let offset = r.offset + (start - r.mapping.start);
            if again == Again::GivenBack && r.content == Content::Anonymous {
                staging.zero(offset, end - start)?;
                continue;
            }
            staging.copy(copier, buffer, start, end - start, offset, r.content, true)?;
            note_copies(tracker, r, start, end);
            copied += end - start;
        }
    }
    Ok(copied)
}

/// Notes the pages of `[start, end)` of `r` (just copied) that are private
/// copies, if `r` is a private file mapping.
fn note_copies(tracker: &mut precopy::Tracker, r: &mut Tracked, start: u64, end: u64) {
    if r.content != Content::Backed {
        return;
    }
    match tracker.private_copies(start, end) {
        Ok(copies) => {
            // Merged: a page copied again and again is noted once.
            r.copies.extend(copies);
            r.copies.sort_unstable();
            let mut merged: Vec<(u64, u64)> = Vec::with_capacity(r.copies.len());
            for &(s, e) in &r.copies {
                match merged.last_mut() {
                    Some(last) if s <= last.1 => last.1 = last.1.max(e),
                    _ => merged.push((s, e)),
                }
            }
            r.copies = merged;
        }
        Err(_) => r.broken = true,
    }
}

/// Injects `userfaultfd()` into a stopped thread, takes the descriptor,
/// and closes the target's number of it (another injection).
fn take_userfaultfd(
    tracer: &mut Tracer,
    stopped: &Stopped,
    gadgets: &Gadgets,
    identity: &Identity,
) -> std::result::Result<OwnedFd, TrackError> {
    let pid = stopped.frozen.pid;
    let Some(chosen) = injectable(stopped, gadgets) else {
        return Err(TrackError::Fallback(format!(
            "no stopped thread of process {pid} has room on its stack for the injection"
        )));
    };
    let tid = chosen.thread.tid;
    let saved = chosen.saved.clone().expect("chosen for its saved state");
    let inject = |tracer: &mut Tracer, call: Call| {
        inject::run(tracer, pid, tid, &saved, gadgets, call, &mut |_| {}).map_err(|e| {
            if e.kind == ErrorKind::Exited {
                TrackError::Failed(e)
            } else {
                TrackError::Fallback(format!("injecting {call:?} into thread {tid}: {e}"))
            }
        })
    };
    let made = inject(tracer, Call::Userfaultfd(precopy::USERFAULTFD_FLAGS))?;
    if made.result < 0 {
        let errno = std::io::Error::from_raw_os_error((-made.result) as i32);
        return Err(TrackError::Fallback(format!(
            "the injected userfaultfd() failed in process {pid}: {errno}"
        )));
    }
    let fd = made.result as i32;
    let taken = precopy::take_descriptor(identity.pidfd.as_raw_fd(), fd);
    let closed = inject(tracer, Call::Close(fd))?;
    if closed.result != 0 {
        return Err(TrackError::Failed(LiveError::new(
            ErrorKind::Internal,
            format!(
                "closing descriptor {fd} in process {pid} (its userfaultfd) failed: {}",
                closed.result
            ),
        )));
    }
    taken.map_err(|e| {
        TrackError::Fallback(format!(
            "taking the userfaultfd of process {pid} (pidfd_getfd): {e}"
        ))
    })
}

/// Method (c), its end, the threads stopped again: the pages written since
/// the last pass and the regions not tracked (new, changed, shared, or
/// refused by the kernel) are copied, the threads let go, the tracking
/// ended, then the core written from the staging file.
#[allow(clippy::too_many_arguments)]
fn finish_tracking(
    tracer: &mut Tracer,
    stopped: &mut Stopped,
    identity: &Identity,
    options: &Options,
    tracking: Tracking,
    sink: CoreSink,
    report: &mut LiveReport,
    stages: &mut Stages,
) -> std::result::Result<(), FinishError> {
    let Tracking {
        mut tracker,
        mut staging,
        mut tracked,
        filter,
        pause_us,
        passes,
        details,
    } = tracking;
    report.track_pause_us = pause_us;
    report.precopy_passes = passes;
    let pid = stopped.frozen.pid;
    let copy_started = Instant::now();
    // The mappings now (`maps`, read by the stop), with their details from
    // the smaps read after the last pass; if one is not there (made or
    // changed since), smaps is read now. What only smaps says and can
    // change without the mapping changing (`MADV_DONTDUMP`, a private file
    // mapping's first written page) is then as it was a few milliseconds
    // before the stop (a mapping marked `MADV_DONTDUMP` meanwhile is left
    // out after all: `leave_out_marked_since`).
    let mut smaps: Vec<Mapping> = stopped
        .maps
        .iter()
        .map(|m| {
            details
                .iter()
                .find(|d| d.same_as(m))
                .cloned()
                .unwrap_or_else(|| m.clone())
        })
        .collect();
    if smaps.iter().any(|m| !m.detailed) {
        smaps = procfs::smaps(stopped.mm_pid).map_err(|_| freeze::exited_error(pid))?;
        mark(report, stopped, "smaps");
    }
    if filter != stopped.filter {
        // coredump_filter changed meanwhile: the final one decides, and
        // every region is copied again as it says.
        tracked.iter_mut().for_each(|r| r.broken = true);
    }
    let mut copier = Copier::new(stopped.mm_pid, options.copy_buffer);
    let mut buffer = vec![0u8; options.copy_buffer.max(PAGE_SIZE as usize)];
    // A tracked region is still good if it is the same mapping and still
    // registered: the scan of one that is not (unmapped, mapped again)
    // fails (`PM_SCAN_CHECK_WPASYNC`), and it is copied whole.
    for r in &mut tracked {
        if !smaps.iter().any(|m| m.same_as(&r.mapping)) {
            r.broken = true;
        }
    }
    // A write the staging file's budget refuses: the sink goes back for a
    // copy-on-write copy (the tracker, dropped on the way out, unregisters
    // everything).
    let over_budget = |e: LiveError, staging: &precopy::Staging, sink: CoreSink| {
        if staging.over_budget() {
            staging.release();
            FinishError::OverBudget {
                why: e.message,
                sink: Box::new(sink),
            }
        } else {
            FinishError::Failed(e)
        }
    };
    // The pages written since the last pass, then those given back since
    // a pass copied them.
    let mut final_bytes = 0;
    for again in [Again::Written, Again::GivenBack] {
        match copy_again(&mut tracker, &staging, &mut tracked, &mut copier, &mut buffer, again) {
            Ok(bytes) => final_bytes += bytes,
            Err(e) => return Err(over_budget(e, &staging, sink)),
        }
    }
    let mut planned = plan(&smaps, stopped.filter, &copier);
    // An address the final stop reads (or the passes read), checked again
    // once the copy is done, as stop-and-copy does.
    let probe = probe_address(&planned);
    for (p, m) in planned.iter_mut().zip(&smaps) {
        if p.segment.filesz == 0 {
            continue;
        }
        let reused = tracked
            .iter()
            .find(|r| !r.broken && r.mapping.same_as(m) && p.segment.filesz == m.len());
        let offset = match reused {
            Some(r) => r.offset,
            None => {
                let offset = staging.allocate(p.segment.filesz);
                stages.reach(Stage::Copying);
                if let Err(e) = staging.copy(
                    &mut copier,
                    &mut buffer,
                    m.start,
                    p.segment.filesz,
                    offset,
                    regions::content_of(m),
                    false,
                ) {
                    return Err(over_budget(e, &staging, sink));
                }
                final_bytes += p.segment.filesz;
                offset
            }
        };
        p.source = Source::Staged(offset);
    }
    stages.reach(Stage::Copying);
    report.final_copy_bytes = final_bytes;
    let notes = notes::build(
        &stopped.process,
        &thread_infos(stopped),
        &stopped.auxv,
        &smaps,
    );
    report.copy_us = micros(copy_started.elapsed());
    mark(report, stopped, "copy");
    // Every read by pid was of the process checked (`check_after_copy`);
    // the threads are let go either way, the core kept only if so.
    let checked = check_after_copy(identity, pid, &copier, probe);
    let_go(tracer, stopped, report, stages);
    checked?;
    // The process leaves no trace: every region unregistered (the kernel
    // does it too when the descriptor closes, with it).
    for r in &tracked {
        let _ = tracker.unregister(r.mapping.start, r.mapping.end);
    }
    drop(tracker);
    leave_out_marked_since(&mut planned, &smaps, stopped.mm_pid);

    report.write_begin_ns = sys::monotonic_ns();
    // Written at the lowest priority, as copy-on-write's copy is.
    let (segments, memory, size, bytes) = in_background(tracer, "core-reader", || {
        let mut writer = writer(sink, options)?;
        let mut on_chunk = || stages.reach(Stage::Writing);
        let (segments, memory) = write_core_staged(
            &mut writer,
            planned,
            &notes,
            &mut copier,
            Some(&staging.file),
            &mut on_chunk,
        )?;
        let (size, bytes) = writer.finish().map_err(output_error)?;
        Ok((segments, memory, size, bytes))
    })?;
    note_written(report, (segments, memory), (size, bytes));
    Ok(())
}
