//! The report's types: what one crash's analysis found, as it is stored
//! beside the crash record (JSON, through serde) and rendered for people.
//!
//! Every string in a report comes from the crashed process (its symbol
//! names, its file names, its command line): renderers escape control
//! characters before they reach a terminal or the journal.

use serde::{Deserialize, Serialize};

/// The version of the report's JSON layout (fields are only ever added).
pub const FORMAT: u32 = 1;

/// What the analysis of one core found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// [`FORMAT`].
    pub format: u32,
    /// The crashed program's path: the executable the caller named, else
    /// the file mapped at the program's entry point (NT_FILE, NT_AUXV).
    #[serde(default)]
    pub executable: Option<String>,
    /// The process as the core describes it (NT_PRPSINFO).
    #[serde(default)]
    pub process: Option<Process>,
    /// The ELF machine of the core (`x86_64`, `aarch64`, ...).
    pub architecture: String,
    /// The signal that killed the process (NT_SIGINFO), when the core has it.
    #[serde(default)]
    pub signal: Option<Signal>,
    /// The crashing thread's instruction at its program counter.
    #[serde(default)]
    pub faulting_instruction: Option<Instruction>,
    /// Every thread unwound, the crashing one first (and marked).
    pub threads: Vec<Thread>,
    /// How many threads the core holds (some may not be in `threads`: see
    /// [`Report::threads_left_out`]).
    pub threads_in_core: usize,
    /// Why some threads were not unwound, when some were not.
    #[serde(default)]
    pub threads_left_out: Option<String>,
    /// The modules mapped in the process, by address.
    pub modules: Vec<Module>,
    /// The last events of the crashing process, when the caller adds them
    /// (from the crash's LTTng snapshot or recovered from the core).
    #[serde(default)]
    pub last_events: Option<LastEvents>,
    /// How the analysis went.
    pub analysis: Analysis,
}

/// The crashed process, from the core's NT_PRPSINFO note.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Process {
    pub pid: i32,
    pub ppid: i32,
    pub uid: u32,
    pub gid: u32,
    /// The command name (16 bytes at most, `comm`).
    pub command: String,
    /// The start of its command line (80 bytes at most).
    pub arguments: String,
}

/// A signal, with its code and address (NT_SIGINFO).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signal {
    pub number: i32,
    /// `SIGSEGV`, or `signal N` for one without a name.
    pub name: String,
    /// `si_code`.
    pub code: i32,
    /// The code's name (`SEGV_MAPERR`, `SI_TKILL`, ...), when known.
    #[serde(default)]
    pub code_name: Option<String>,
    /// What the code means ("address not mapped to object").
    #[serde(default)]
    pub description: Option<String>,
    /// The faulting address (`si_addr`) of SIGSEGV, SIGBUS, SIGILL, SIGFPE
    /// and SIGTRAP raised by the kernel.
    #[serde(default)]
    pub fault_address: Option<u64>,
    /// Who sent it, for a signal sent by a process (`kill`, `raise`).
    #[serde(default)]
    pub sender_pid: Option<i32>,
    #[serde(default)]
    pub sender_uid: Option<u32>,
}

/// The instruction a thread was executing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instruction {
    pub address: u64,
    /// The bytes at `address` (up to 16), hexadecimal.
    pub bytes: String,
    /// The instruction in AT&T syntax (x86 and x86-64 only).
    #[serde(default)]
    pub disassembly: Option<String>,
    /// Where the bytes were read: `module file` or `core`.
    pub source: String,
}

/// One thread and its backtrace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Thread {
    pub tid: i32,
    /// The thread that received the fatal signal (it dumped the core).
    pub crashing: bool,
    /// Innermost first.
    pub frames: Vec<Frame>,
    /// Why the backtrace ends before the outermost frame, when it does
    /// (the unwinder's message, the frame limit, a frame chain that does
    /// not go up the stack).
    #[serde(default)]
    pub incomplete: Option<String>,
}

/// One frame of a backtrace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Frame {
    /// The program counter: the instruction itself for the innermost frame
    /// (and frames interrupted by a signal), a return address otherwise.
    pub pc: u64,
    /// The function, demangled, when a symbol covers the address.
    #[serde(default)]
    pub function: Option<String>,
    /// The symbol as the symbol table spells it (mangled), when it differs
    /// from `function`.
    #[serde(default)]
    pub symbol: Option<String>,
    /// `pc` minus the symbol's start.
    #[serde(default)]
    pub function_offset: Option<u64>,
    /// The module's name (as [`Module::name`]).
    #[serde(default)]
    pub module: Option<String>,
    /// `pc` minus the module's load address: the same in every run of the
    /// same build, whatever the address space layout.
    #[serde(default)]
    pub module_offset: Option<u64>,
    /// The source file, where debug information exists.
    #[serde(default)]
    pub file: Option<String>,
    #[serde(default)]
    pub line: Option<u32>,
}

/// One module (the executable, a shared library, the vDSO).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Module {
    /// libdwfl's name for it (the path the process mapped, or `[vdso]`).
    pub name: String,
    pub start: u64,
    pub end: u64,
    /// The GNU build-id, hexadecimal.
    #[serde(default)]
    pub build_id: Option<String>,
    /// The ELF file the symbols came from, when one was found.
    #[serde(default)]
    pub file: Option<String>,
    /// The debug information file, when one was found on this machine
    /// (and looked for: only modules with frames in the report are;
    /// libdwfl does not name the files debuginfod sends).
    #[serde(default)]
    pub debug_file: Option<String>,
}

/// The last events of the crashing process, as the handler supplies them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastEvents {
    /// Where they come from (or why there are none).
    pub source: EventSource,
    /// How many events the source held for the process (the events below
    /// are the last of them), when known.
    #[serde(default)]
    pub total: Option<u64>,
    /// Oldest first.
    pub events: Vec<Event>,
    /// Events of other processes the source held, left out.
    #[serde(default)]
    pub other_processes: u64,
    /// What the reader met: events that could not be told apart by
    /// process, traces without metadata, a source that could not be read.
    #[serde(default)]
    pub notes: Vec<String>,
}

impl LastEvents {
    /// No events, and why ("last events unavailable: REASON").
    pub fn unavailable(reason: impl Into<String>) -> LastEvents {
        LastEvents {
            source: EventSource::Unavailable {
                reason: reason.into(),
            },
            total: None,
            events: Vec::new(),
            other_processes: 0,
            notes: Vec::new(),
        }
    }
}

/// Where the last events come from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum EventSource {
    /// The LTTng snapshots the handler recorded at the crash (`; `-joined
    /// when it recorded several).
    Snapshot { path: String },
    /// The ring buffers recovered from the core (no snapshot was taken).
    RecoveredFromCore { path: String },
    /// None could be read: no snapshot and no trace in the core, or the
    /// source could not be read (a hostile snapshot, a deadline).
    Unavailable { reason: String },
}

/// One event, as babeltrace2 prints it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// The timestamp as babeltrace2 printed it (seconds since the epoch,
    /// `--clock-seconds`).
    pub timestamp: String,
    /// The event's time minus the crash's (as the handler knows it: when
    /// it began handling the crash), nanoseconds; negative before it.
    #[serde(default)]
    pub to_crash_ns: Option<i64>,
    /// `provider:event`.
    pub name: String,
    /// The rest (context and payload fields), as printed.
    #[serde(default)]
    pub fields: String,
}

/// How the analysis went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Analysis {
    /// `libdwfl (elfutils 0.188)`.
    pub unwinder: String,
    /// Wall time of the analysis in the child, milliseconds.
    pub milliseconds: u64,
    /// Who the analysis ran as (the crashing user, for a crash's report).
    #[serde(default)]
    pub uid: u32,
    #[serde(default)]
    pub gid: u32,
    /// The child's peak resident memory when it had analyzed, KiB.
    #[serde(default)]
    pub peak_rss_kib: Option<u64>,
    /// The core file was shorter than its headers say (a size limit cut
    /// it): some memory is missing, and frames with it.
    #[serde(default)]
    pub core_truncated: bool,
    /// What did not work but did not stop the analysis (a debuginfod
    /// server that did not answer, a module without its file).
    #[serde(default)]
    pub notes: Vec<String>,
}

impl Report {
    /// The crashing thread, when the report has it.
    pub fn crashing_thread(&self) -> Option<&Thread> {
        self.threads.iter().find(|t| t.crashing)
    }

    /// The executable's file name, else the command name, else `?`.
    pub fn program_name(&self) -> String {
        if let Some(exe) = &self.executable {
            if let Some(name) = exe.rsplit('/').next().filter(|n| !n.is_empty()) {
                return name.to_string();
            }
        }
        self.process
            .as_ref()
            .map(|p| p.command.clone())
            .filter(|c| !c.is_empty())
            .unwrap_or_else(|| "?".into())
    }
}
