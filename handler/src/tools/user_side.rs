//! The work the crash tools hand to a child acting as the crash's user
//! ([`crate::base::user_child`]), run by this binary's trampoline once it has
//! become that user: recovering a trace from their core into a
//! directory the child itself creates (`trace --from-core`), searching
//! their trees for a trace's metadata and sending its bytes back through
//! the pipe (`recover`), debugging their core (`debug`: decompressed, when
//! it must be, into a directory of the child's), and removing what such a
//! child left when it was killed. Nothing here runs as root over another
//! user's files: root reads what these print, bounded, and nothing else.

use super::read_core::copy_sparse;
use anyhow::{anyhow, bail, Context, Result};
use lttng_coredump_recover::{self as recover, metadata, Options};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::ffi::OsString;
use std::fs;
use std::io::{BufRead, Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

/// The tasks, by name, for [`crate::base::user_child::trampoline`].
pub const TASKS: &[crate::base::user_child::Task] = &[
    (RECOVER_TRACE, recover_trace),
    (FETCH_METADATA, fetch_metadata),
    (DEBUG, debug),
    (REMOVE, remove),
    (crate::crash::last_events::TASK, super::last_events::task),
    (
        crate::base::path_presence::TASK,
        crate::base::path_presence::task,
    ),
    (
        crate::crash::analysis_child::TASK,
        crate::crash::analysis_child::task,
    ),
    (
        crate::service::user_notifications::TASK,
        crate::service::user_notifications::task,
    ),
];

pub const RECOVER_TRACE: &str = "recover-trace";
pub const FETCH_METADATA: &str = "fetch-metadata";
pub const DEBUG: &str = "debug";
pub const REMOVE: &str = "remove";

/// Largest request a task reads on its standard input.
const MAX_REQUEST: u64 = 4 << 20;
/// Largest header line of a fetched metadata file.
const MAX_HEADER: usize = 64 * 1024;

fn failed(err: anyhow::Error) -> ExitCode {
    eprintln!("lttng-coredump: {err:#}");
    ExitCode::from(2)
}

/// Creates `dir` for this user, owner-only; never one that exists.
fn create_own_dir(dir: &Path) -> Result<()> {
    fs::DirBuilder::new()
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create {}", dir.display()))
}

/// `recover-trace CORE OUTPUT [SEARCH...]`: recovers the core's trace into
/// OUTPUT (created here), its metadata searched in the session's
/// `--shm-path` and in SEARCH; prints the report as JSON.
fn recover_trace(args: &[OsString]) -> ExitCode {
    let [core, output, search @ ..] = args else {
        return failed(anyhow!("usage: recover-trace CORE OUTPUT [SEARCH...]"));
    };
    let output = PathBuf::from(output);
    if let Err(err) = create_own_dir(&output) {
        return failed(err);
    }
    let options = Options {
        core: PathBuf::from(core),
        output,
        metadata: None,
        recorded_snapshots: Vec::new(),
        search: search.iter().map(PathBuf::from).collect(),
    };
    let report = match recover::recover(&options) {
        Ok(report) => report,
        Err(err) => return failed(anyhow!("{err}")),
    };
    let traces: Vec<Value> = report
        .traces
        .iter()
        .map(|t| {
            json!({
                "uuid": metadata::format_uuid(&t.uuid),
                "dir": t.dir.to_string_lossy(),
                "streams": t.files.len(),
                "packets": t.files.iter().map(|(_, n, _)| n).sum::<usize>(),
                "metadata": t.metadata.as_ref().map(|m| json!({
                    "path": m.path.to_string_lossy(),
                    "source": m.source,
                })),
            })
        })
        .collect();
    let out = json!({"status": report.status, "text": report.text, "traces": traces});
    let mut stdout = std::io::stdout().lock();
    match writeln!(stdout, "{out}").and_then(|()| stdout.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => failed(err.into()),
    }
}

/// One trace of [`recover_trace`]'s report, as root reads it back.
#[derive(Debug, Clone)]
pub struct RecoveredTrace {
    pub uuid: String,
    pub dir: PathBuf,
    pub streams: u64,
    pub packets: u64,
    /// Where its metadata came from (path, source), when found.
    pub metadata: Option<(String, String)>,
}

/// [`recover_trace`]'s report read back: (status, text, traces).
pub fn read_recovered(bytes: &[u8]) -> Result<(u8, String, Vec<RecoveredTrace>)> {
    let value: Value =
        serde_json::from_slice(bytes).context("unreadable report from the recovering child")?;
    let status = value["status"]
        .as_u64()
        .and_then(|s| u8::try_from(s).ok())
        .ok_or_else(|| anyhow!("the recovering child's report has no status"))?;
    let text = value["text"].as_str().unwrap_or_default().to_string();
    let traces = value["traces"]
        .as_array()
        .map(|traces| {
            traces
                .iter()
                .filter_map(|t| {
                    Some(RecoveredTrace {
                        uuid: t["uuid"].as_str()?.to_string(),
                        dir: PathBuf::from(t["dir"].as_str()?),
                        streams: t["streams"].as_u64().unwrap_or(0),
                        packets: t["packets"].as_u64().unwrap_or(0),
                        metadata: t["metadata"].as_object().map(|m| {
                            (
                                m.get("path").and_then(Value::as_str).unwrap_or("?").into(),
                                m.get("source")
                                    .and_then(Value::as_str)
                                    .unwrap_or("?")
                                    .into(),
                            )
                        }),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    Ok((status, text, traces))
}

/// The request of [`fetch_metadata`]: where to search, for which traces.
pub fn fetch_request(roots: &[metadata::Root], wanted: &[[u8; 16]]) -> Vec<u8> {
    let roots: Vec<Value> = roots
        .iter()
        .map(|r| json!({"path": r.path.to_string_lossy(), "source": r.source}))
        .collect();
    let wanted: Vec<String> = wanted.iter().map(metadata::format_uuid).collect();
    serde_json::to_vec(&json!({"roots": roots, "wanted": wanted})).expect("serializes")
}

/// `fetch-metadata`: reads a [`fetch_request`] on standard input, searches
/// (as this user), and prints each metadata file found: a JSON header line
/// (`uuid`, `path`, `source`, `len`), then its `len` bytes.
fn fetch_metadata(_args: &[OsString]) -> ExitCode {
    let mut request = Vec::new();
    if let Err(err) = std::io::stdin()
        .lock()
        .take(MAX_REQUEST)
        .read_to_end(&mut request)
    {
        return failed(err.into());
    }
    let Ok(request) = serde_json::from_slice::<Value>(&request) else {
        return failed(anyhow!("unreadable request"));
    };
    let roots: Vec<metadata::Root> = request["roots"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| {
            Some(metadata::Root {
                path: PathBuf::from(r["path"].as_str()?),
                source: r["source"].as_str()?.to_string(),
                explicit: false,
            })
        })
        .collect();
    let wanted: Vec<[u8; 16]> = request["wanted"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|u| metadata::parse_uuid(u.as_str()?))
        .collect();
    let mut stdout = std::io::stdout().lock();
    for (uuid, fetched) in metadata::fetch(&roots, &wanted) {
        let header = json!({
            "uuid": metadata::format_uuid(&uuid),
            "path": fetched.found.path.to_string_lossy(),
            "source": fetched.found.source,
            "len": fetched.bytes.len(),
        });
        if writeln!(stdout, "{header}")
            .and_then(|()| stdout.write_all(&fetched.bytes))
            .is_err()
        {
            return ExitCode::FAILURE;
        }
    }
    match stdout.flush() {
        Ok(()) => ExitCode::SUCCESS,
        Err(_) => ExitCode::FAILURE,
    }
}

/// [`fetch_metadata`]'s answer read back (each file's UUID checked again
/// on its bytes), at most `wanted`'s.
pub fn read_fetched(
    answer: &mut dyn BufRead,
    wanted: &[[u8; 16]],
) -> Result<HashMap<[u8; 16], metadata::Fetched>> {
    let mut out = HashMap::new();
    loop {
        let mut line = Vec::new();
        let n = answer
            .take(MAX_HEADER as u64)
            .read_until(b'\n', &mut line)?;
        if n == 0 {
            return Ok(out);
        }
        if line.last() != Some(&b'\n') {
            bail!("a header of the metadata search's answer is cut");
        }
        let header: Value = serde_json::from_slice(&line).context("bad header")?;
        let uuid = header["uuid"]
            .as_str()
            .and_then(metadata::parse_uuid)
            .ok_or_else(|| anyhow!("a header has no UUID"))?;
        let len = header["len"]
            .as_u64()
            .filter(|&l| l <= metadata::MAX_METADATA)
            .ok_or_else(|| anyhow!("a header has a bad length"))?;
        let mut bytes = vec![0u8; len as usize];
        answer.read_exact(&mut bytes).context("reading metadata")?;
        if !wanted.contains(&uuid) || metadata::metadata_uuid(&bytes) != Some(uuid) {
            bail!("the metadata search sent a file that is not the trace's metadata");
        }
        out.insert(
            uuid,
            metadata::Fetched {
                found: metadata::Found {
                    path: PathBuf::from(header["path"].as_str().unwrap_or("?")),
                    len,
                    source: header["source"].as_str().unwrap_or("?").to_string(),
                },
                bytes,
            },
        );
    }
}

/// `debug CORE COMPRESSION TEMP DEBUGGER EXE BATCH [ARG...]`: runs the
/// debugger (gdb: `--batch -ex bt` when BATCH is `batch`) on EXE (empty:
/// none; gone: the core alone) and the core, decompressed first into TEMP
/// (created here) when COMPRESSION is not `none`; removes TEMP; exits
/// with the debugger's status.
fn debug(args: &[OsString]) -> ExitCode {
    let [core, compression, temp, debugger, exe, batch, extra @ ..] = args else {
        return failed(anyhow!(
            "usage: debug CORE COMPRESSION TEMP DEBUGGER EXE BATCH [ARG...]"
        ));
    };
    // Ctrl-C and Ctrl-\ on the terminal are the debugger's (they reach
    // this process too, in its process group): heard, not obeyed.
    for signal in [rustix::process::Signal::INT, rustix::process::Signal::QUIT] {
        let ignored = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let _ = signal_hook::flag::register(signal.as_raw(), ignored);
    }
    let core = PathBuf::from(core);
    let temp = PathBuf::from(temp);
    let result = (|| -> Result<ExitCode> {
        let file = fs::OpenOptions::new()
            .read(true)
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
            .open(&core)
            .with_context(|| format!("cannot open the core {}", core.display()))?;
        if !file.metadata()?.is_file() {
            bail!("the core {} is not a regular file", core.display());
        }
        let core_for_debugger = match compression.to_str() {
            Some("none") => core.clone(),
            Some("zstd") => {
                create_own_dir(&temp)?;
                let path = temp.join("core");
                let mut to = super::read_core::create_private(&path, true)?;
                let mut from = zstd::stream::read::Decoder::new(file).context("starting zstd")?;
                eprintln!("decompressing {} into {}", core.display(), path.display());
                copy_sparse(&mut from, &mut to).with_context(|| {
                    format!("decompressing {} to {}", core.display(), path.display())
                })?;
                path
            }
            other => bail!("the core is stored with {other:?}, which this version cannot read"),
        };
        let is_gdb = Path::new(debugger)
            .file_name()
            .is_some_and(|name| name == "gdb");
        let mut command = Command::new(debugger);
        if batch == "batch" && is_gdb {
            command.args(["--batch", "-ex", "bt"]);
        }
        command.args(extra);
        let exe = Path::new(exe);
        if !exe.as_os_str().is_empty() && exe.is_file() {
            command.arg(exe).arg(&core_for_debugger);
        } else {
            if !exe.as_os_str().is_empty() {
                eprintln!(
                    "lttng-coredump: the executable {} is no longer there; debugging the core alone",
                    crate::base::human::escape(&exe.to_string_lossy())
                );
            }
            if is_gdb {
                command.arg("--core");
            }
            command.arg(&core_for_debugger);
        }
        let status = command
            .status()
            .with_context(|| format!("cannot run the debugger {debugger:?}"))?;
        Ok(match status.code() {
            Some(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
            None => ExitCode::FAILURE,
        })
    })();
    if temp.is_dir() {
        let _ = fs::remove_dir_all(&temp);
    }
    result.unwrap_or_else(failed)
}

/// `remove DIR`: removes DIR, a directory of this user's that a killed
/// child of theirs left (links inside are removed, never followed).
fn remove(args: &[OsString]) -> ExitCode {
    let [dir] = args else {
        return failed(anyhow!("usage: remove DIR"));
    };
    let dir = Path::new(dir);
    match fs::symlink_metadata(dir) {
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => ExitCode::SUCCESS,
        Err(err) => failed(err.into()),
        Ok(meta) if !meta.is_dir() || meta.uid() != rustix::process::geteuid().as_raw() => failed(
            anyhow!("{} is not a directory of this user's", dir.display()),
        ),
        Ok(_) => match fs::remove_dir_all(dir) {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => failed(err.into()),
        },
    }
}

/// A new name for a child's temporary directory: under `$TMPDIR` when it
/// is absolute, else `/var/tmp` (cores can be larger than a RAM-backed
/// `/tmp`). The child creates it (and fails if anything is there).
pub fn temporary_name() -> Result<PathBuf> {
    let base = std::env::var_os("TMPDIR")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .unwrap_or_else(|| PathBuf::from("/var/tmp"));
    let mut random = [0u8; 8];
    rustix::rand::getrandom(&mut random, rustix::rand::GetRandomFlags::empty())
        .context("getrandom")?;
    let name: String = random.iter().map(|b| format!("{b:02x}")).collect();
    Ok(base.join(format!("lttng-coredump-{name}")))
}
