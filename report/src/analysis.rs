//! The analysis itself, in the current process: the core's notes read and
//! checked (see [`crate::notes`]), then libdwfl's modules, threads and
//! frames, each frame symbolized (function, module + offset, file:line),
//! the faulting instruction read and disassembled.
//!
//! It trusts nothing in the core, but libdwfl is C code that was not made
//! for hostile input: [`crate::analyze`] runs this in a bounded child
//! acting as the crashing user. Call [`analyze_here`] directly only on
//! cores of one's own.

use crate::model::{Analysis, Frame, Instruction, Module, Process, Report, Signal, Thread, FORMAT};
use crate::notes::{self, CoreNotes, NoteLimits};
use crate::{demangle, disasm, signals, Limits};
use elfutils::{Core, FramesEnd};
use lttng_coredump_recover::reader::CoreRead;
use std::cell::Cell;
use std::collections::{HashMap, HashSet};
use std::ops::ControlFlow;
use std::os::fd::BorrowedFd;
use std::path::Path;
use std::rc::Rc;
use std::time::Instant;

/// How many bytes of the faulting instruction are read (the longest x86
/// instruction is 15).
const INSTRUCTION_BYTES: usize = 16;
/// What one frame weighs in the report's JSON besides its strings, for the
/// size bound.
const FRAME_WEIGHT: usize = 160;

/// A core read in place through its descriptor (`pread`).
pub(crate) struct FdCore<'fd>(pub BorrowedFd<'fd>);

impl CoreRead for FdCore<'_> {
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> std::io::Result<usize> {
        let mut done = 0;
        while done < buf.len() {
            let Some(at) = offset.checked_add(done as u64) else {
                break;
            };
            match rustix::io::pread(self.0, &mut buf[done..], at) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(rustix::io::Errno::INTR) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(done)
    }

    fn describe(&self) -> String {
        "the core's descriptor".into()
    }
}

/// Analyzes the uncompressed core on `core`, in this process. `executable`
/// is the file libdwfl may open for the main module (only used when its
/// build-id matches), `executable_name` the program's path as the report
/// gives it. `Err` says why there is no report.
pub fn analyze_here(
    core: BorrowedFd<'_>,
    executable: Option<&Path>,
    executable_name: Option<&str>,
    limits: &Limits,
) -> Result<Report, String> {
    let started = Instant::now();
    let file_len = rustix::fs::fstat(core)
        .map_err(|e| format!("reading the core's size: {e}"))?
        .st_size as u64;
    let notes = notes::read(
        &mut FdCore(core),
        file_len,
        &NoteLimits {
            max_threads: limits.max_threads_in_core,
            max_notes: limits
                .max_threads_in_core
                .saturating_mul(16)
                .saturating_add(1024),
        },
    )?;
    let mut dwfl = Core::open(core, executable).map_err(|e| format!("libdwfl: {e}"))?;
    let debuginfod_gave_up = Rc::new(Cell::new(false));
    let mut analysis_notes = Vec::new();
    if let Some(settings) = &limits.debuginfod {
        if let Some(client) = dwfl.debuginfod() {
            let budget = settings.timeout;
            let gave_up = debuginfod_gave_up.clone();
            let start = Instant::now();
            let bounded = client.on_progress(move |_, _| {
                let over = start.elapsed() > budget;
                if over {
                    gave_up.set(true);
                }
                over
            });
            if !bounded {
                analysis_notes.push(
                    "libdebuginfod's progress callback was not found: only DEBUGINFOD_TIMEOUT bounds the downloads"
                        .to_string(),
                );
            }
        }
    }
    dwfl.attach().map_err(|e| format!("libdwfl: {e}"))?;
    let mut analysis = Analysis {
        unwinder: format!("libdwfl (elfutils 0.{})", elfutils::VERSION),
        milliseconds: 0,
        uid: rustix::process::getuid().as_raw(),
        gid: rustix::process::getgid().as_raw(),
        peak_rss_kib: None,
        core_truncated: notes.truncated(),
        notes: analysis_notes,
    };
    if notes.truncated() {
        analysis.notes.push(format!(
            "the core is truncated ({} of {} bytes): memory past the cut is missing",
            notes.file_len, notes.extent
        ));
    }

    let mut walk = Walk::new(&dwfl, &notes, limits);
    dwfl.for_each_thread(|thread| walk.thread(thread))
        .map_err(|e| format!("libdwfl: {e}"))?;
    if let Some(failure) = walk.failure.take() {
        return Err(failure);
    }
    let Walk {
        mut threads,
        left_out,
        modules_used,
        ..
    } = walk;

    // The crashing thread is the one that dumped the core: the first
    // NT_PRSTATUS.
    let crashing_tid = notes.threads[0].tid;
    for thread in &mut threads {
        thread.crashing = thread.tid == crashing_tid;
    }
    threads.sort_by_key(|t| !t.crashing);

    let faulting_instruction = threads
        .first()
        .filter(|t| t.crashing)
        .and_then(|t| t.frames.first())
        .and_then(|f| instruction_at(&dwfl, &notes, core, f.pc));

    let mut modules = Vec::new();
    for module in dwfl.modules().map_err(|e| format!("libdwfl: {e}"))? {
        if modules.len() >= limits.max_modules {
            analysis.notes.push(format!(
                "only the first {} modules are listed",
                limits.max_modules
            ));
            break;
        }
        let mut build_id = module.build_id();
        let name = module.name();
        if build_id.is_none() || modules_used.contains(&name) {
            module.find_files(false);
            build_id = build_id.or_else(|| module.build_id());
        }
        let (start, end) = module.range();
        let (file, debug_file) = module.files();
        modules.push(Module {
            name,
            start,
            end,
            build_id: build_id.map(|id| hex(&id)),
            file,
            debug_file,
        });
    }

    if debuginfod_gave_up.get() {
        if let Some(settings) = &limits.debuginfod {
            analysis.notes.push(format!(
                "debuginfod ({}) was given up after {} ms: symbols it did not send are missing",
                settings.urls,
                settings.timeout.as_millis()
            ));
        }
    }

    // The main module as libdwfl names it after the file it was given (a
    // descriptor's `/proc/self/fd/N`: `N`, its file that path), under the
    // program's own name (its last component, as libdwfl names a module
    // it opened by path) and path.
    if let (Some(opened), Some(path)) = (executable.and_then(Path::to_str), executable_name) {
        let short = opened.rsplit('/').next().unwrap_or(opened);
        let name = path.rsplit('/').next().unwrap_or(path);
        for module in &mut modules {
            if module.name == short || module.name == opened {
                module.name = name.to_string();
            }
            if module.file.as_deref() == Some(opened) {
                module.file = Some(path.to_string());
            }
        }
        for frame in threads.iter_mut().flat_map(|t| t.frames.iter_mut()) {
            if frame
                .module
                .as_deref()
                .is_some_and(|m| m == short || m == opened)
            {
                frame.module = Some(name.to_string());
            }
        }
    }
    let executable = executable_name
        .map(str::to_string)
        .or_else(|| notes.executable().map(str::to_string));
    analysis.milliseconds = started.elapsed().as_millis() as u64;
    analysis.peak_rss_kib = peak_rss_kib();
    Ok(Report {
        format: FORMAT,
        executable,
        process: notes.psinfo.as_ref().map(|p| Process {
            pid: p.pid,
            ppid: p.ppid,
            uid: p.uid,
            gid: p.gid,
            command: p.fname.clone(),
            arguments: p.psargs.clone(),
        }),
        architecture: notes.architecture(),
        signal: signal_of(&notes),
        faulting_instruction,
        threads_in_core: notes.threads.len(),
        threads,
        threads_left_out: left_out,
        modules,
        last_events: None,
        analysis,
    })
}

/// The state of the walk over threads and frames.
struct Walk<'a, 'fd> {
    dwfl: &'a Core<'fd>,
    notes: &'a CoreNotes,
    limits: &'a Limits,
    sp_regno: Option<u32>,
    threads: Vec<Thread>,
    left_out: Option<String>,
    /// The report's size so far (estimated), for its bound.
    weight: usize,
    /// Symbolized addresses (threads waiting in the same place, recursion).
    symbolized: HashMap<(u64, bool), Frame>,
    modules_used: HashSet<String>,
    /// Why there is no report at all (the crashing thread's frames loop).
    failure: Option<String>,
}

impl<'a, 'fd> Walk<'a, 'fd> {
    fn new(dwfl: &'a Core<'fd>, notes: &'a CoreNotes, limits: &'a Limits) -> Self {
        Walk {
            dwfl,
            notes,
            limits,
            sp_regno: notes::stack_pointer_regno(notes.machine),
            threads: Vec::new(),
            left_out: None,
            weight: 0,
            symbolized: HashMap::new(),
            modules_used: HashSet::new(),
            failure: None,
        }
    }

    fn thread(&mut self, thread: &elfutils::Thread<'_>) -> ControlFlow<()> {
        let tid = thread.tid();
        let crashing = tid == self.notes.threads[0].tid;
        if self.threads.len() >= self.limits.max_threads {
            self.left_out = Some(format!(
                "only the first {} threads are unwound",
                self.limits.max_threads
            ));
            return ControlFlow::Break(());
        }
        if self.weight > self.limits.max_report_bytes / 4 * 3 && !crashing {
            self.left_out = Some(format!(
                "the report's size limit ({} bytes) left out the other threads",
                self.limits.max_report_bytes
            ));
            return ControlFlow::Break(());
        }
        let mut frames: Vec<Frame> = Vec::new();
        let mut incomplete = None;
        let mut seen: HashSet<(u64, u64)> = HashSet::new();
        let mut previous_sp: Option<u64> = None;
        let end = thread.for_each_frame(|frame| {
            let index = frames.len();
            if index >= self.limits.max_frames {
                incomplete = Some(format!(
                    "stopped at the frame limit ({} frames)",
                    self.limits.max_frames
                ));
                return ControlFlow::Break(());
            }
            let Some((pc, activation)) = frame.pc() else {
                incomplete = Some(format!("frame {index} has no program counter"));
                return ControlFlow::Break(());
            };
            let sp = self.sp_regno.and_then(|regno| frame.register(regno));
            if let Some(sp) = sp {
                if !seen.insert((pc, sp)) {
                    let what = format!(
                        "frame {index} repeats an earlier frame (pc {pc:#x}, stack pointer {sp:#x}): the frame chain loops"
                    );
                    if crashing {
                        self.failure = Some(format!(
                            "the crashing thread's stack is corrupt or crafted: {what}"
                        ));
                    }
                    incomplete = Some(what);
                    return ControlFlow::Break(());
                }
                // A caller's frame is above its callee's on the stack; only
                // a frame a signal interrupted (an activation) may be on
                // another stack (a handler on sigaltstack).
                if let (Some(previous), false) = (previous_sp, activation) {
                    if sp <= previous {
                        incomplete = Some(format!(
                            "frame {index} does not go up the stack (stack pointer {sp:#x} after {previous:#x}): the stack is corrupt"
                        ));
                        return ControlFlow::Break(());
                    }
                }
                previous_sp = Some(sp);
            }
            let symbolized = self.symbolize(pc, activation);
            self.weight += FRAME_WEIGHT
                + symbolized.function.as_ref().map_or(0, String::len)
                + symbolized.symbol.as_ref().map_or(0, String::len)
                + symbolized.module.as_ref().map_or(0, String::len)
                + symbolized.file.as_ref().map_or(0, String::len);
            frames.push(symbolized);
            ControlFlow::Continue(())
        });
        if self.failure.is_some() {
            return ControlFlow::Break(());
        }
        if incomplete.is_none() {
            if let FramesEnd::Error(message) = end {
                // libdwfl ends some complete backtraces with an error (no
                // unwind information past the outermost frame): only an
                // error before the program's entry is worth saying.
                if !frames.last().is_some_and(is_outermost) {
                    incomplete = Some(format!("the unwinder stopped: {message}"));
                }
            }
        }
        self.threads.push(Thread {
            tid,
            crashing,
            frames,
            incomplete,
        });
        ControlFlow::Continue(())
    }

    fn symbolize(&mut self, pc: u64, activation: bool) -> Frame {
        if let Some(known) = self.symbolized.get(&(pc, activation)) {
            return known.clone();
        }
        // A return address is the instruction after the call: look up the
        // call itself.
        let lookup = if activation { pc } else { pc.saturating_sub(1) };
        let mut frame = Frame {
            pc,
            function: None,
            symbol: None,
            function_offset: None,
            module: None,
            module_offset: None,
            file: None,
            line: None,
        };
        if let Some(module) = self.dwfl.module_at(lookup) {
            let name = module.name();
            let (start, _) = module.range();
            frame.module_offset = Some(pc.wrapping_sub(start));
            if let Some(symbol) = module.symbol(lookup) {
                frame.function_offset = Some(symbol.offset + (pc - lookup));
                match demangle::demangle(&symbol.name) {
                    Some(readable) => {
                        frame.function = Some(readable);
                        frame.symbol = Some(symbol.name);
                    }
                    None => frame.function = Some(symbol.name),
                }
            }
            let source = if self.limits.source_lines {
                module.source(lookup)
            } else {
                None
            };
            if let Some(source) = source {
                frame.file = Some(source.file);
                frame.line = Some(source.line).filter(|&l| l > 0);
            }
            self.modules_used.insert(name.clone());
            frame.module = Some(name);
        }
        self.symbolized.insert((pc, activation), frame.clone());
        frame
    }
}

/// Whether a frame is where a thread starts (nothing is expected past it).
fn is_outermost(frame: &Frame) -> bool {
    matches!(
        frame.function.as_deref(),
        Some(
            "_start"
                | "__clone"
                | "__clone3"
                | "clone"
                | "clone3"
                | "__libc_start_main"
                | "thread_start"
        )
    )
}

/// The signal the core says killed the process.
fn signal_of(notes: &CoreNotes) -> Option<Signal> {
    let (number, code, siginfo) = match notes.siginfo {
        Some(si) => (si.signo, si.code, Some(si)),
        None => {
            let signal = i32::from(notes.threads[0].signal);
            if signal == 0 {
                return None;
            }
            (signal, 0, None)
        }
    };
    let named = siginfo.and_then(|_| signals::code(number, code));
    let from_kernel = code > 0;
    let sent = matches!(code, 0 | -1 | -6) && siginfo.is_some();
    Some(Signal {
        number,
        name: signals::display_name(number),
        code,
        code_name: named.map(|(n, _)| n.to_string()),
        description: named.map(|(_, d)| d.to_string()),
        fault_address: siginfo
            .filter(|_| from_kernel && signals::has_fault_address(number))
            .map(|si| si.addr),
        sender_pid: siginfo.filter(|_| sent).map(|si| si.pid),
        sender_uid: siginfo.filter(|_| sent).map(|si| si.uid),
    })
}

/// The instruction at `pc`: from the module's file (where code lives; the
/// kernel does not dump file-backed text), else from the core's memory.
fn instruction_at(
    dwfl: &Core<'_>,
    notes: &CoreNotes,
    core: BorrowedFd<'_>,
    pc: u64,
) -> Option<Instruction> {
    let (bytes, source) = match dwfl
        .module_at(pc)
        .and_then(|m| m.bytes(pc, INSTRUCTION_BYTES))
    {
        Some(bytes) if !bytes.is_empty() => (bytes, "module file"),
        _ => (core_memory(notes, core, pc, INSTRUCTION_BYTES)?, "core"),
    };
    let bitness = match notes.machine {
        62 => Some(64),
        3 => Some(32),
        _ => None,
    };
    let (disassembly, length) = match bitness {
        Some(bits) => (
            disasm::x86(&bytes, pc, bits),
            disasm::x86_length(&bytes, bits),
        ),
        None => (None, bytes.len()),
    };
    Some(Instruction {
        address: pc,
        bytes: hex_spaced(&bytes[..length.min(bytes.len())]),
        disassembly,
        source: source.into(),
    })
}

/// Up to `len` bytes of the process's memory at `address`, from the core's
/// PT_LOAD segments (only what the file holds).
fn core_memory(
    notes: &CoreNotes,
    core: BorrowedFd<'_>,
    address: u64,
    len: usize,
) -> Option<Vec<u8>> {
    let segment = notes
        .segments
        .iter()
        .find(|s| s.kind == 1 && s.vaddr <= address && address - s.vaddr < s.filesz)?;
    let within = address - segment.vaddr;
    let n = (len as u64).min(segment.filesz - within) as usize;
    let mut buf = vec![0u8; n];
    let got = FdCore(core)
        .read_at(segment.offset + within, &mut buf)
        .ok()?;
    buf.truncate(got);
    (!buf.is_empty()).then_some(buf)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn hex_spaced(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// This process's peak resident memory (VmHWM), KiB.
pub(crate) fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synthetic;
    use std::os::fd::AsFd;

    fn in_memfd(bytes: &[u8]) -> std::os::fd::OwnedFd {
        let fd = rustix::fs::memfd_create("core", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
        let mut done = 0;
        while done < bytes.len() {
            done += rustix::io::pwrite(&fd, &bytes[done..], done as u64).unwrap();
        }
        fd
    }

    #[test]
    fn a_core_without_modules_whose_frame_pointer_loops_is_unwound_a_bounded_way() {
        // libdwfl's frame-pointer fallback refuses a frame pointer that
        // does not move: the thread ends there, the report stands.
        let core = in_memfd(&synthetic::looping_stack());
        let report = analyze_here(core.as_fd(), None, None, &Limits::default()).unwrap();
        let thread = report.crashing_thread().unwrap();
        assert!(thread.frames.len() < 4, "{report:?}");
        assert!(thread.incomplete.is_some(), "{report:?}");
        assert_eq!(report.process.unwrap().command, "looper");
    }
}
