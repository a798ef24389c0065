//! Safe Rust API over elfutils' libdwfl, for what a crash report reads from
//! an ELF core file: the modules mapped in the crashed process (with their
//! build-ids and the files found for them), every thread and its frames
//! (libdwfl's unwinder: CFI first, then frame pointers), and for an address
//! its function, source line and instruction bytes. The libdwfl calls are
//! the ones eu-stack and systemd-coredump make: `dwfl_core_file_report`,
//! `dwfl_core_file_attach`, `dwfl_getthreads`/`dwfl_thread_getframes`,
//! `dwfl_module_addrinfo`, `dwfl_module_getsrc`, `dwfl_module_build_id`.
//!
//! Files are found with libdwfl's standard callbacks: the module's file by
//! build-id (`/usr/lib/debug/.build-id`, then the path the core names, kept
//! only when its build-id matches), debug information next to it or by
//! build-id, and, when `DEBUGINFOD_URLS` is set in the environment,
//! through debuginfod (libdwfl asks libdebuginfod itself; [`Core::debuginfod`]
//! bounds it).
//!
//! Everything libdwfl reads from the core is untrusted, and libdwfl is not
//! hardened against crafted input: callers that parse cores they do not
//! trust do it in a disposable, bounded process (the report crate does).
//! This crate only makes the calls sound: every pointer libdwfl returns is
//! checked and copied out before the next call, every callback catches
//! panics, and the handles live exactly as long as the [`Core`].
//!
//! `unsafe` is confined to this crate and `elfutils-sys`; each block says
//! why it is sound.

use elfutils_sys as sys;
use std::any::Any;
use std::ffi::{c_char, c_int, c_long, c_void, CStr, CString};
use std::fmt;
use std::marker::PhantomData;
use std::ops::ControlFlow;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::path::Path;
use std::ptr;

/// The elfutils version the bindings were generated from (`188` for 0.188).
pub const VERSION: u32 = sys::_ELFUTILS_VERSION;

/// What went wrong in libelf or libdwfl, with what was being done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    /// What was attempted ("reading the core's modules").
    pub context: String,
    /// libelf's or libdwfl's own message.
    pub message: String,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.context, self.message)
    }
}

impl std::error::Error for Error {}

/// A string libelf or libdwfl owns, copied out (`None` for a null pointer).
fn owned(text: *const c_char) -> Option<String> {
    if text.is_null() {
        return None;
    }
    // SAFETY: elfutils returns NUL-terminated strings that stay valid at
    // least until the next call on the same handle; this copies at once.
    Some(
        unsafe { CStr::from_ptr(text) }
            .to_string_lossy()
            .into_owned(),
    )
}

/// libdwfl's last error, for `context`.
fn dwfl_error(context: impl Into<String>) -> Error {
    // SAFETY: with -1, dwfl_errmsg always returns a valid static or
    // thread-local string.
    let message = owned(unsafe { sys::dwfl_errmsg(-1) }).unwrap_or_default();
    Error {
        context: context.into(),
        message,
    }
}

/// libelf's last error, for `context`.
fn elf_error(context: impl Into<String>) -> Error {
    // SAFETY: with -1, elf_errmsg always returns a valid string.
    let message = owned(unsafe { sys::elf_errmsg(-1) }).unwrap_or_default();
    Error {
        context: context.into(),
        message,
    }
}

/// A Rust visitor behind one of libdwfl's C callbacks: it is called with
/// each item, and its panic, which must not cross into C, is caught,
/// stops the walk, and is resumed once libdwfl has returned.
struct Visit<'v, T> {
    visit: &'v mut dyn FnMut(&T) -> ControlFlow<()>,
    caught: Option<Box<dyn Any + Send>>,
}

impl<'v, T> Visit<'v, T> {
    fn new(visit: &'v mut dyn FnMut(&T) -> ControlFlow<()>) -> Self {
        Visit {
            visit,
            caught: None,
        }
    }

    /// The callback's argument: this visit.
    fn as_arg(&mut self) -> *mut c_void {
        (self as *mut Self).cast()
    }

    /// Calls the visitor; libdwfl's answer.
    fn call(&mut self, item: &T) -> c_int {
        match catch_unwind(AssertUnwindSafe(|| (self.visit)(item))) {
            Ok(ControlFlow::Continue(())) => sys::DWARF_CB_OK as c_int,
            Ok(ControlFlow::Break(())) => sys::DWARF_CB_ABORT as c_int,
            Err(panic) => {
                self.caught = Some(panic);
                sys::DWARF_CB_ABORT as c_int
            }
        }
    }

    /// Once libdwfl has returned: the visitor's panic goes on.
    fn finish(self) {
        if let Some(panic) = self.caught {
            resume_unwind(panic);
        }
    }
}

/// An ELF core file opened with libdwfl: its modules reported, its threads
/// ready to be unwound once [`Core::attach`] has run.
///
/// The core is read through a descriptor borrowed for `'fd`, mapped with
/// `mmap` (what eu-stack does): only the pages libdwfl looks at are read.
pub struct Core<'fd> {
    dwfl: *mut sys::Dwfl,
    elf: *mut sys::Elf,
    /// libdwfl keeps a pointer to its callbacks for the whole session.
    _callbacks: Box<sys::Dwfl_Callbacks>,
    /// The debuginfod progress callback's state, pointed to by the client's
    /// user data until `dwfl_end` ends the client.
    progress: Option<Box<ProgressFn>>,
    machine: u16,
    _fd: PhantomData<BorrowedFd<'fd>>,
}

type ProgressFn = Box<dyn FnMut(i64, i64) -> bool>;

impl Drop for Core<'_> {
    fn drop(&mut self) {
        // SAFETY: both handles were created by this Core and are ended
        // once, the Dwfl (which uses the Elf) first. A null one was never
        // created.
        unsafe {
            if !self.dwfl.is_null() {
                sys::dwfl_end(self.dwfl);
            }
            if !self.elf.is_null() {
                sys::elf_end(self.elf);
            }
        }
        // `progress` is dropped after this, once nothing can call it.
    }
}

/// Whether debuginfod is to be asked (`DEBUGINFOD_URLS` set and not empty,
/// as libdebuginfod itself decides). Without it, debug information is
/// looked up by build-id only (`dwfl_build_id_find_debuginfo`): libdwfl's
/// standard lookup ends in libdebuginfod whatever the environment says,
/// and loading it (libcurl, GnuTLS, OpenSSL's libcrypto, Kerberos, LDAP:
/// about 7 MiB of resident pages) to find out that no server is set is
/// most of what an analysis process costs beside the DWARF it reads.
fn debuginfod_wanted() -> bool {
    std::env::var_os("DEBUGINFOD_URLS").is_some_and(|urls| !urls.is_empty())
}

impl<'fd> Core<'fd> {
    /// Opens the core on `fd` (read from its start; the descriptor's offset
    /// is not used) and reports its modules to libdwfl. `executable` is the
    /// program that crashed, when known: libdwfl uses it for the main
    /// module (only if its build-id matches the core's).
    pub fn open(fd: BorrowedFd<'fd>, executable: Option<&Path>) -> Result<Core<'fd>, Error> {
        let executable = executable
            .map(|path| CString::new(path.as_os_str().as_bytes()))
            .transpose()
            .map_err(|_| Error {
                context: "naming the executable".into(),
                message: "the path has a NUL byte".into(),
            })?;
        let mut core = Core {
            dwfl: ptr::null_mut(),
            elf: ptr::null_mut(),
            _callbacks: Box::new(sys::Dwfl_Callbacks {
                find_elf: Some(sys::dwfl_build_id_find_elf),
                find_debuginfo: Some(if debuginfod_wanted() {
                    sys::dwfl_standard_find_debuginfo
                } else {
                    sys::dwfl_build_id_find_debuginfo
                }),
                section_address: Some(sys::dwfl_offline_section_address),
                debuginfo_path: ptr::null_mut(),
            }),
            progress: None,
            machine: 0,
            _fd: PhantomData,
        };
        // SAFETY: elf_version only records the version the caller uses.
        unsafe { sys::elf_version(sys::EV_CURRENT) };
        // SAFETY: `fd` is open for the Core's lifetime ('fd); a null parent
        // means a plain file. The result is checked for null.
        core.elf = unsafe {
            sys::elf_begin(
                fd.as_raw_fd(),
                sys::Elf_Cmd_ELF_C_READ_MMAP,
                ptr::null_mut(),
            )
        };
        if core.elf.is_null() {
            return Err(elf_error("reading the core as an ELF file"));
        }
        // SAFETY: `core.elf` is a valid Elf handle.
        if unsafe { sys::elf_kind(core.elf) } != sys::Elf_Kind_ELF_K_ELF {
            return Err(Error {
                context: "reading the core as an ELF file".into(),
                message: "not an ELF file".into(),
            });
        }
        let mut ehdr = sys::GElf_Ehdr::default();
        // SAFETY: valid handle and out-pointer; the result is checked.
        if unsafe { sys::gelf_getehdr(core.elf, &mut ehdr) }.is_null() {
            return Err(elf_error("reading the core's ELF header"));
        }
        if u32::from(ehdr.e_type) != sys::ET_CORE {
            return Err(Error {
                context: "reading the core's ELF header".into(),
                message: format!("an ELF file of type {}, not a core", ehdr.e_type),
            });
        }
        core.machine = ehdr.e_machine;
        // SAFETY: the callbacks are boxed in the Core and outlive the Dwfl.
        core.dwfl = unsafe { sys::dwfl_begin(&*core._callbacks) };
        if core.dwfl.is_null() {
            return Err(dwfl_error("starting a libdwfl session"));
        }
        let exe_ptr = executable.as_ref().map_or(ptr::null(), |e| e.as_ptr());
        // SAFETY: valid handles; libdwfl copies the executable's name.
        if unsafe { sys::dwfl_core_file_report(core.dwfl, core.elf, exe_ptr) } < 0 {
            return Err(dwfl_error("finding the modules of the core"));
        }
        // SAFETY: valid handle; no removal callback.
        if unsafe { sys::dwfl_report_end(core.dwfl, None, ptr::null_mut()) } != 0 {
            return Err(dwfl_error("finishing the report of the core's modules"));
        }
        Ok(core)
    }

    /// The core's ELF machine (`EM_X86_64` is 62).
    pub fn machine(&self) -> u16 {
        self.machine
    }

    /// Reads the core's threads (its NT_PRSTATUS notes) for unwinding;
    /// returns the process id the core names.
    pub fn attach(&mut self) -> Result<i32, Error> {
        // SAFETY: valid handles; the Elf outlives the Dwfl.
        let pid = unsafe { sys::dwfl_core_file_attach(self.dwfl, self.elf) };
        if pid < 0 {
            return Err(dwfl_error("reading the core's threads"));
        }
        Ok(pid)
    }

    /// The modules libdwfl found in the core, in address order.
    pub fn modules(&self) -> Result<Vec<Module<'_>>, Error> {
        unsafe extern "C" fn collect(
            module: *mut sys::Dwfl_Module,
            _userdata: *mut *mut c_void,
            _name: *const c_char,
            _start: sys::Dwarf_Addr,
            arg: *mut c_void,
        ) -> c_int {
            // SAFETY: `arg` is the Vec passed below, alive for the call.
            let found = unsafe { &mut *arg.cast::<Vec<*mut sys::Dwfl_Module>>() };
            found.push(module);
            sys::DWARF_CB_OK as c_int
        }
        let mut found: Vec<*mut sys::Dwfl_Module> = Vec::new();
        // SAFETY: valid handle; `collect` only pushes onto `found`.
        let rc = unsafe {
            sys::dwfl_getmodules(
                self.dwfl,
                Some(collect),
                (&mut found as *mut Vec<*mut sys::Dwfl_Module>).cast(),
                0,
            )
        };
        if rc < 0 {
            return Err(dwfl_error("listing the core's modules"));
        }
        let mut modules: Vec<Module<'_>> = found
            .into_iter()
            .map(|raw| Module {
                raw,
                _core: PhantomData,
            })
            .collect();
        modules.sort_by_key(|m| m.range().0);
        Ok(modules)
    }

    /// The module that maps `address`, if any.
    pub fn module_at(&self, address: u64) -> Option<Module<'_>> {
        // SAFETY: valid handle; the result is a module of this session or
        // null.
        let raw = unsafe { sys::dwfl_addrmodule(self.dwfl, address) };
        (!raw.is_null()).then_some(Module {
            raw,
            _core: PhantomData,
        })
    }

    /// Calls `visit` with each thread of the core, in the core's order (the
    /// thread that dumped the core first), until it breaks. Needs
    /// [`Core::attach`] first.
    pub fn for_each_thread(
        &self,
        mut visit: impl FnMut(&Thread<'_>) -> ControlFlow<()>,
    ) -> Result<(), Error> {
        unsafe extern "C" fn each(thread: *mut sys::Dwfl_Thread, arg: *mut c_void) -> c_int {
            // SAFETY: `arg` is the Visit below, alive for the call.
            let visit = unsafe { &mut *arg.cast::<Visit<'_, Thread<'_>>>() };
            visit.call(&Thread {
                raw: thread,
                _core: PhantomData,
            })
        }
        let mut visit = Visit::new(&mut visit);
        // SAFETY: valid handle; `each` only uses `visit`, alive for the call.
        let rc = unsafe { sys::dwfl_getthreads(self.dwfl, Some(each), visit.as_arg()) };
        visit.finish();
        if rc < 0 {
            return Err(dwfl_error("reading the core's threads"));
        }
        Ok(())
    }

    /// The session's debuginfod client, when `DEBUGINFOD_URLS` was set when
    /// it was first needed (libdwfl creates it then) and libdebuginfod is
    /// there.
    pub fn debuginfod(&mut self) -> Option<Debuginfod<'_, 'fd>> {
        // SAFETY: valid handle; the client belongs to the Dwfl.
        let client = unsafe { sys::dwfl_get_debuginfod_client(self.dwfl) };
        (!client.is_null()).then_some(Debuginfod { client, core: self })
    }
}

/// The debuginfod client of a [`Core`]'s session.
pub struct Debuginfod<'c, 'fd> {
    client: *mut sys::debuginfod_client,
    core: &'c mut Core<'fd>,
}

/// libdebuginfod's functions, from the copy libdw loaded (libdebuginfod is
/// not linked: see `elfutils-sys`).
fn debuginfod_functions() -> Option<sys::Debuginfod> {
    static FOUND: std::sync::OnceLock<Option<sys::Debuginfod>> = std::sync::OnceLock::new();
    *FOUND.get_or_init(|| {
        // SAFETY: RTLD_NOLOAD only returns a library already loaded (by
        // libdw, which made the client); the reference it takes is kept
        // for the process's life, so the functions stay valid.
        let handle = unsafe {
            libc::dlopen(
                sys::DEBUGINFOD_SONAME.as_ptr(),
                libc::RTLD_LAZY | libc::RTLD_NOLOAD,
            )
        };
        if handle.is_null() {
            return None;
        }
        // SAFETY: a valid handle and NUL-terminated names.
        let find = |name: &CStr| unsafe { libc::dlsym(handle, name.as_ptr()) };
        let (set_progressfn, set_user_data, get_user_data) = (
            find(c"debuginfod_set_progressfn"),
            find(c"debuginfod_set_user_data"),
            find(c"debuginfod_get_user_data"),
        );
        if set_progressfn.is_null() || set_user_data.is_null() || get_user_data.is_null() {
            return None;
        }
        // SAFETY: these are libdebuginfod's functions, whose C signatures
        // (<elfutils/debuginfod.h>) the fields' types are.
        unsafe {
            Some(sys::Debuginfod {
                set_progressfn: std::mem::transmute::<*mut c_void, sys::debuginfod_set_progressfn_t>(
                    set_progressfn,
                ),
                set_user_data: std::mem::transmute::<*mut c_void, sys::debuginfod_set_user_data_t>(
                    set_user_data,
                ),
                get_user_data: std::mem::transmute::<*mut c_void, sys::debuginfod_get_user_data_t>(
                    get_user_data,
                ),
            })
        }
    })
}

impl Debuginfod<'_, '_> {
    /// Calls `progress(done, total)` while a download runs (every second or
    /// so, and at its start); the download is abandoned when it returns
    /// true. Replaces any earlier callback. Returns false when libdebuginfod's
    /// functions could not be found (then nothing bounds the downloads but
    /// `DEBUGINFOD_TIMEOUT` and `DEBUGINFOD_MAXTIME`).
    pub fn on_progress(self, progress: impl FnMut(i64, i64) -> bool + 'static) -> bool {
        unsafe extern "C" fn trampoline(
            client: *mut sys::debuginfod_client,
            done: c_long,
            total: c_long,
        ) -> c_int {
            let Some(functions) = debuginfod_functions() else {
                return 0;
            };
            // SAFETY: the user data is the boxed callback the Core holds
            // until after `dwfl_end` has ended this client.
            let progress = unsafe { (functions.get_user_data)(client) }.cast::<ProgressFn>();
            if progress.is_null() {
                return 0;
            }
            // SAFETY: as above; libdebuginfod calls it from this thread only.
            let progress = unsafe { &mut *progress };
            // A panic must not cross into C: it abandons the download.
            catch_unwind(AssertUnwindSafe(|| progress(done, total))).map_or(1, c_int::from)
        }
        let Some(functions) = debuginfod_functions() else {
            return false;
        };
        let mut boxed: Box<ProgressFn> = Box::new(Box::new(progress));
        let user_data: *mut ProgressFn = &mut *boxed;
        // SAFETY: the client is valid while the Core is; the user data
        // points into the box the Core keeps (moving the Box keeps its
        // heap address).
        unsafe {
            (functions.set_user_data)(self.client, user_data.cast());
            (functions.set_progressfn)(self.client, Some(trampoline));
        }
        self.core.progress = Some(boxed);
        true
    }
}

/// One module (the executable, a shared library, the vDSO) of a [`Core`].
#[derive(Clone, Copy)]
pub struct Module<'c> {
    raw: *mut sys::Dwfl_Module,
    _core: PhantomData<&'c Core<'c>>,
}

/// A symbol an address falls in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Symbol {
    /// The symbol's name as the symbol table has it (mangled for C++ and
    /// Rust).
    pub name: String,
    /// How far into the symbol the address is.
    pub offset: u64,
}

/// A source line an address comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceLine {
    pub file: String,
    pub line: u32,
    pub column: u32,
}

impl Module<'_> {
    /// The module's name (its path as the core names it, or `[vdso: N]`).
    pub fn name(&self) -> String {
        // SAFETY: valid module; null out-pointers are allowed.
        owned(unsafe {
            sys::dwfl_module_info(
                self.raw,
                ptr::null_mut(),
                ptr::null_mut(),
                ptr::null_mut(),
                ptr::null_mut(),
                ptr::null_mut(),
                ptr::null_mut(),
                ptr::null_mut(),
            )
        })
        .unwrap_or_default()
    }

    /// The addresses the module spans, `[start, end)`.
    pub fn range(&self) -> (u64, u64) {
        let (mut start, mut end) = (0, 0);
        // SAFETY: valid module and out-pointers.
        unsafe {
            sys::dwfl_module_info(
                self.raw,
                ptr::null_mut(),
                &mut start,
                &mut end,
                ptr::null_mut(),
                ptr::null_mut(),
                ptr::null_mut(),
                ptr::null_mut(),
            )
        };
        (start, end)
    }

    /// The module's ELF file and debug information file, as far as they
    /// were looked for (see [`Module::find_files`]).
    pub fn files(&self) -> (Option<String>, Option<String>) {
        let (mut main, mut debug): (*const c_char, *const c_char) = (ptr::null(), ptr::null());
        // SAFETY: valid module and out-pointers.
        unsafe {
            sys::dwfl_module_info(
                self.raw,
                ptr::null_mut(),
                ptr::null_mut(),
                ptr::null_mut(),
                ptr::null_mut(),
                ptr::null_mut(),
                &mut main,
                &mut debug,
            )
        };
        (owned(main), owned(debug))
    }

    /// Looks for the module's ELF file and, when `debug_info`, its DWARF
    /// debug information (locally, then through debuginfod when enabled);
    /// returns whether each was found.
    pub fn find_files(&self, debug_info: bool) -> (bool, bool) {
        let mut bias = 0;
        // SAFETY: valid module and out-pointer.
        let elf = !unsafe { sys::dwfl_module_getelf(self.raw, &mut bias) }.is_null();
        // SAFETY: as above.
        let dwarf =
            debug_info && !unsafe { sys::dwfl_module_getdwarf(self.raw, &mut bias) }.is_null();
        (elf, dwarf)
    }

    /// The module's GNU build-id, when known (read from the core's copy of
    /// its ELF headers, or from its file).
    pub fn build_id(&self) -> Option<Vec<u8>> {
        let mut bits: *const u8 = ptr::null();
        let mut vaddr = 0;
        // SAFETY: valid module and out-pointers; `bits` points into the
        // module's data, copied at once.
        let len = unsafe { sys::dwfl_module_build_id(self.raw, &mut bits, &mut vaddr) };
        if len <= 0 || bits.is_null() {
            return None;
        }
        // SAFETY: libdwfl says `len` bytes are at `bits`.
        Some(unsafe { std::slice::from_raw_parts(bits, len as usize) }.to_vec())
    }

    /// The symbol `address` falls in (symbol table or dynamic symbols).
    pub fn symbol(&self, address: u64) -> Option<Symbol> {
        let mut offset = 0;
        let mut sym = sys::GElf_Sym::default();
        // SAFETY: valid module and out-pointers; the name is copied at once.
        let name = owned(unsafe {
            sys::dwfl_module_addrinfo(
                self.raw,
                address,
                &mut offset,
                &mut sym,
                ptr::null_mut(),
                ptr::null_mut(),
                ptr::null_mut(),
            )
        })?;
        (!name.is_empty()).then_some(Symbol { name, offset })
    }

    /// The source line `address` comes from, when the module has line
    /// information.
    pub fn source(&self, address: u64) -> Option<SourceLine> {
        // SAFETY: valid module; the line belongs to the module's data.
        let line = unsafe { sys::dwfl_module_getsrc(self.raw, address) };
        if line.is_null() {
            return None;
        }
        let (mut number, mut column) = (0, 0);
        // SAFETY: valid line and out-pointers; the name is copied at once.
        let file = owned(unsafe {
            sys::dwfl_lineinfo(
                line,
                ptr::null_mut(),
                &mut number,
                &mut column,
                ptr::null_mut(),
                ptr::null_mut(),
            )
        })?;
        Some(SourceLine {
            file,
            line: u32::try_from(number).unwrap_or(0),
            column: u32::try_from(column).unwrap_or(0),
        })
    }

    /// Up to `len` bytes of the module's file at run-time `address` (from
    /// the section that holds it, `.text` for code); `None` when the file
    /// was not found or the section has no bytes there.
    pub fn bytes(&self, address: u64, len: usize) -> Option<Vec<u8>> {
        let mut relative = address;
        let mut bias = 0;
        // SAFETY: valid module and out-pointers.
        let section =
            unsafe { sys::dwfl_module_address_section(self.raw, &mut relative, &mut bias) };
        if section.is_null() {
            return None;
        }
        // SAFETY: a section of the module's ELF; null for a fresh read.
        let data = unsafe { sys::elf_getdata(section, ptr::null_mut()) };
        if data.is_null() {
            return None;
        }
        // SAFETY: libelf returned a valid Elf_Data for the section.
        let data = unsafe { &*data };
        let start = usize::try_from(relative).ok()?;
        if data.d_buf.is_null() || start >= data.d_size {
            return None;
        }
        let n = len.min(data.d_size - start);
        // SAFETY: `d_buf` holds `d_size` bytes; start + n <= d_size.
        let bytes = unsafe { std::slice::from_raw_parts(data.d_buf.cast::<u8>().add(start), n) };
        Some(bytes.to_vec())
    }
}

/// One thread of a [`Core`], during [`Core::for_each_thread`].
pub struct Thread<'c> {
    raw: *mut sys::Dwfl_Thread,
    _core: PhantomData<&'c ()>,
}

/// Why a thread's frames ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FramesEnd {
    /// The unwinder reached the outermost frame.
    Complete,
    /// The visitor stopped the walk.
    Stopped,
    /// The unwinder could not go further (libdwfl's message).
    Error(String),
}

impl Thread<'_> {
    /// The thread's id.
    pub fn tid(&self) -> i32 {
        // SAFETY: valid thread (during the walk); never fails.
        unsafe { sys::dwfl_thread_tid(self.raw) }
    }

    /// Calls `visit` with each frame of the thread, innermost first, until
    /// it breaks or the unwinder ends.
    pub fn for_each_frame(
        &self,
        mut visit: impl FnMut(&Frame<'_>) -> ControlFlow<()>,
    ) -> FramesEnd {
        unsafe extern "C" fn each(frame: *mut sys::Dwfl_Frame, arg: *mut c_void) -> c_int {
            // SAFETY: `arg` is the Visit below, alive for the call.
            let visit = unsafe { &mut *arg.cast::<Visit<'_, Frame<'_>>>() };
            visit.call(&Frame {
                raw: frame,
                _thread: PhantomData,
            })
        }
        let mut visit = Visit::new(&mut visit);
        // SAFETY: valid thread; `each` only uses `visit`, alive for the call.
        let rc = unsafe { sys::dwfl_thread_getframes(self.raw, Some(each), visit.as_arg()) };
        visit.finish();
        match rc {
            0 => FramesEnd::Complete,
            rc if rc == sys::DWARF_CB_ABORT as c_int => FramesEnd::Stopped,
            _ => FramesEnd::Error(dwfl_error("").message),
        }
    }
}

/// One frame of a [`Thread`], during [`Thread::for_each_frame`].
pub struct Frame<'t> {
    raw: *mut sys::Dwfl_Frame,
    _thread: PhantomData<&'t ()>,
}

impl Frame<'_> {
    /// The frame's program counter, and whether it is an activation (the
    /// innermost frame, or a frame interrupted by a signal: its pc is the
    /// instruction itself, not a return address).
    pub fn pc(&self) -> Option<(u64, bool)> {
        let mut pc = 0;
        let mut activation = false;
        // SAFETY: valid frame and out-pointers.
        unsafe { sys::dwfl_frame_pc(self.raw, &mut pc, &mut activation) }
            .then_some((pc, activation))
    }

    /// The value of DWARF register `regno` in this frame, when known.
    pub fn register(&self, regno: u32) -> Option<u64> {
        let mut value = 0;
        // SAFETY: valid frame and out-pointer; an unknown register number
        // is an error return, not undefined behaviour.
        (unsafe { sys::dwfl_frame_reg(self.raw, regno, &mut value) } == 0).then_some(value)
    }
}
