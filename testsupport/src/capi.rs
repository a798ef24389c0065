//! The C API as C programs see it: the C library installed with its own
//! `make install` into a private prefix, the C test programs compiled
//! against it (C and C++, shared and static), and the output of the RFC's
//! core_pattern helper parsed.

use crate::lock::FileLock;
use crate::process::{run, stdout};
use crate::temp::workspace_root;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The C flags every C API test program is built with.
const C_FLAGS: &[&str] = &["-Wall", "-Wextra", "-Werror", "-pedantic", "-g", "-O1"];

/// What a program is linked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    Shared,
    Static,
}

/// One build of a C test program.
#[derive(Debug, Clone)]
pub struct Program {
    pub label: String,
    pub path: PathBuf,
    pub link: Link,
}

/// The installed library and the test programs built against it.
pub struct CApi {
    pub prefix: PathBuf,
    /// `tests/c/set_trigger.c` as C and as C++, each shared and static.
    pub set_trigger: Vec<Program>,
    /// `tests/c/coredump_helper.c` (the RFC's core_pattern helper), shared
    /// and static.
    pub helper: Vec<Program>,
    /// `tests/c/live.c` (`lttng_coredump_live()`), shared and static.
    pub live: Vec<Program>,
}

impl CApi {
    pub fn helper(&self, link: Link) -> &Program {
        self.helper.iter().find(|p| p.link == link).unwrap()
    }
}

fn run_checked(cmd: &mut Command, what: &str) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {cmd:?}\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn pkg_config(prefix: &Path, args: &[&str]) -> Vec<String> {
    let out = Command::new("pkg-config")
        .env("PKG_CONFIG_PATH", prefix.join("lib/pkgconfig"))
        .args(args)
        .arg("lttng-coredump")
        .output()
        .expect("running pkg-config (apt-get install -y pkg-config)");
    assert!(
        out.status.success(),
        "pkg-config {args:?} lttng-coredump failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

/// Compiles `source` as C or C++ against the installed library, with the
/// flags pkg-config gives; a static build names the archive so that the
/// program does not depend on the shared library.
fn compile(prefix: &Path, source: &str, cxx: bool, link: Link, out: &Path) {
    let root = workspace_root();
    let compiler = if cxx {
        std::env::var("CXX").unwrap_or_else(|_| "c++".into())
    } else {
        std::env::var("CC").unwrap_or_else(|_| "cc".into())
    };
    let mut cmd = Command::new(compiler);
    cmd.args(C_FLAGS);
    if cxx {
        cmd.args(["-x", "c++", "-std=c++11"]);
    } else {
        cmd.arg("-std=gnu11");
    }
    cmd.args(pkg_config(prefix, &["--cflags"]));
    cmd.arg(root.join(source)).arg("-o").arg(out);
    if cxx {
        // What follows are libraries, not sources to compile as C++.
        cmd.args(["-x", "none"]);
    }
    match link {
        Link::Shared => {
            cmd.arg(format!("-Wl,-rpath,{}", prefix.join("lib").display()));
            cmd.args(pkg_config(prefix, &["--libs"]));
        }
        Link::Static => {
            for flag in pkg_config(prefix, &["--static", "--libs"]) {
                if flag == "-llttng-coredump" {
                    cmd.args(["-Wl,-Bstatic", "-llttng-coredump", "-Wl,-Bdynamic"]);
                } else {
                    cmd.arg(flag);
                }
            }
        }
    }
    run_checked(&mut cmd, &format!("compiling {source}"));
}

fn build() -> CApi {
    let root = workspace_root();
    let base = root.join("target/capi-c-tests");
    // Directories of earlier test processes are left behind only if those
    // died; remove those of processes that are gone.
    if let Ok(entries) = fs::read_dir(&base) {
        for entry in entries.flatten() {
            let gone = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
                .is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists());
            if gone {
                let _ = fs::remove_dir_all(entry.path());
            }
        }
    }
    let dir = base.join(std::process::id().to_string());
    let _ = fs::remove_dir_all(&dir);
    let prefix = dir.join("prefix");
    let bin = dir.join("bin");
    fs::create_dir_all(&bin).unwrap();
    {
        // One cargo build of the library at a time across test processes.
        let _lock = FileLock::acquire("capi-build");
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        run_checked(
            Command::new("make")
                .current_dir(&root)
                .env("CARGO", cargo)
                .args(["-s", "-C", "capi", "install", "PROFILE=dev"])
                .arg(format!("PREFIX={}", prefix.display()))
                // Not the multiarch default (capi/tests/install.rs checks
                // that): the programs below look in <prefix>/lib.
                .arg(format!("LIBDIR={}", prefix.join("lib").display())),
            "make -C capi install",
        );
    }
    for name in [
        "liblttng-coredump.so",
        "liblttng-coredump.so.0",
        "liblttng-coredump.a",
        "pkgconfig/lttng-coredump.pc",
    ] {
        assert!(
            prefix.join("lib").join(name).exists(),
            "make install did not install {name}"
        );
    }
    assert!(prefix.join("include/lttng-coredump.h").exists());

    let mut set_trigger = Vec::new();
    let mut helper = Vec::new();
    let mut live = Vec::new();
    for link in [Link::Shared, Link::Static] {
        let suffix = match link {
            Link::Shared => "shared",
            Link::Static => "static",
        };
        for cxx in [false, true] {
            let label = format!("set_trigger-{}-{suffix}", if cxx { "c++" } else { "c" });
            let path = bin.join(&label);
            compile(&prefix, "tests/c/set_trigger.c", cxx, link, &path);
            set_trigger.push(Program { label, path, link });
        }
        let label = format!("coredump_helper-c-{suffix}");
        let path = bin.join(&label);
        compile(&prefix, "tests/c/coredump_helper.c", false, link, &path);
        helper.push(Program { label, path, link });
        let label = format!("live-c-{suffix}");
        let path = bin.join(&label);
        compile(&prefix, "tests/c/live.c", false, link, &path);
        live.push(Program { label, path, link });
    }
    CApi {
        prefix,
        set_trigger,
        helper,
        live,
    }
}

/// The C API, installed and its programs built, once per test process.
pub fn c_api() -> &'static CApi {
    static C_API: OnceLock<CApi> = OnceLock::new();
    C_API.get_or_init(build)
}

/// The shared libraries a program needs (`readelf -d`).
pub fn needed_libraries(program: &Path) -> Vec<String> {
    let out = Command::new("readelf")
        .arg("-d")
        .arg(program)
        .output()
        .expect("running readelf (binutils)");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains("(NEEDED)"))
        .filter_map(|l| Some(l.split('[').nth(1)?.trim_end_matches(']').to_string()))
        .collect()
}

/// One action of a fire, as `coredump_helper --report` prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub status: i32,
    pub action: i32,
    pub owner_uid: i64,
    pub session: String,
    pub trigger: String,
    pub snapshot_path: Option<PathBuf>,
    pub message: Option<String>,
}

/// What `coredump_helper` printed.
#[derive(Debug, Clone)]
pub struct HelperOutput {
    pub ret: i32,
    pub entries: Vec<Entry>,
    pub errors: Vec<(i32, String)>,
    pub raw: String,
}

impl HelperOutput {
    pub fn parse(text: &str) -> HelperOutput {
        let mut ret = None;
        let mut entries: Vec<Entry> = Vec::new();
        let mut errors = Vec::new();
        for line in text.lines() {
            let mut words = line.splitn(2, ' ');
            let (kind, rest) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
            match kind {
                "ret" => ret = rest.trim().parse().ok(),
                "entry" => {
                    let f: Vec<&str> = rest.splitn(7, ' ').collect();
                    assert_eq!(f.len(), 7, "bad entry line {line:?}");
                    entries.push(Entry {
                        status: f[1].parse().unwrap(),
                        action: f[2].parse().unwrap(),
                        owner_uid: f[3].parse().unwrap(),
                        session: f[4].to_string(),
                        trigger: f[5].to_string(),
                        snapshot_path: (f[6] != "-").then(|| PathBuf::from(f[6])),
                        message: None,
                    });
                }
                "message" => {
                    let (index, message) = rest.split_once(' ').unwrap();
                    entries[index.parse::<usize>().unwrap()].message = Some(message.to_string());
                }
                "error" => {
                    let (code, message) = rest.split_once(' ').unwrap();
                    errors.push((code.parse().unwrap(), message.to_string()));
                }
                _ => {}
            }
        }
        HelperOutput {
            ret: ret.unwrap_or_else(|| panic!("no `ret` line in {text:?}")),
            entries,
            errors,
            raw: text.to_string(),
        }
    }

    /// The entries about `session`.
    pub fn for_session(&self, session: &str) -> Vec<&Entry> {
        self.entries
            .iter()
            .filter(|e| e.session == session)
            .collect()
    }
}

/// Runs the helper with `--report` for a crash of `pid`/`exec_name`.
pub fn fire(helper: &Program, extra: &[&str], pid: u32, exec_name: &str) -> HelperOutput {
    let pid = pid.to_string();
    let mut args: Vec<&str> = extra.to_vec();
    args.extend(["--report", &pid, "0", "0", exec_name, "testhost"]);
    let out = run(&helper.path, &args);
    let parsed = HelperOutput::parse(&stdout(&out));
    assert_eq!(
        out.status.success(),
        parsed.ret == 0,
        "exit status and ret disagree: {}",
        parsed.raw
    );
    parsed
}

/// The negative `LTTNG_ERR_*` value C sees for `code`.
pub fn c_code(code: lttng_ctl::ErrorCode) -> i32 {
    -(code.raw() as i32)
}
