//! `lttng_trigger()` fired from several processes at once (the RFC's C
//! helper) while `lttng_trigger_set()` and `lttng_trigger_unset()` run, from
//! threads of this process and from the C program: every call completes
//! or returns a negative code, nothing deadlocks (the whole is bounded),
//! and every snapshot a fire reports is there.

use lttng_coredump::ffi::api::{lttng_trigger_set, lttng_trigger_unset};
use lttng_coredump::ffi::types::{lttng_handle, RawTriggerAction, RawTriggerType};
use std::ffi::CString;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use testsupport::capi::*;
use testsupport::crasher::*;
use testsupport::sessions::*;
use testsupport::triggers::*;
use testsupport::*;

const FIRING_PROCESSES: usize = 4;
const FIRES_EACH: usize = 3;
/// Far beyond what the calls take; a deadlock would never end.
const BOUND: Duration = Duration::from_secs(150);

/// A `struct lttng_handle` of liblttng-ctl for the session, as a C program
/// gets one; destroyed when dropped.
struct Handle(*mut lttng_ctl::sys::lttng_handle);

// SAFETY: the handle is plain data liblttng-ctl only reads; our calls read
// its session name, from any thread.
unsafe impl Send for Handle {}

impl Handle {
    fn new(session: &str) -> Handle {
        let name = CString::new(session).unwrap();
        // SAFETY: zeroed lttng_domain is valid plain data; the type is set.
        let mut domain: lttng_ctl::sys::lttng_domain = unsafe { std::mem::zeroed() };
        domain.type_ = lttng_ctl::sys::lttng_domain_type::LTTNG_DOMAIN_UST;
        // SAFETY: a NUL-terminated name and a valid domain; liblttng-ctl
        // copies both.
        let handle = unsafe { lttng_ctl::sys::lttng_create_handle(name.as_ptr(), &mut domain) };
        assert!(!handle.is_null());
        Handle(handle)
    }

    /// The handle as the C API takes it.
    fn as_c(&self) -> *mut lttng_handle {
        self.0.cast()
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        // SAFETY: made by lttng_create_handle, destroyed once.
        unsafe { lttng_ctl::sys::lttng_destroy_handle(self.0) };
    }
}

fn wait_bounded(child: &mut Child, started: Instant) -> std::process::Output {
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > BOUND {
            let _ = child.kill();
            panic!("a process never returned: deadlock");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut output = std::process::Output {
        status: child.wait().unwrap(),
        stdout: Vec::new(),
        stderr: Vec::new(),
    };
    use std::io::Read;
    child
        .stdout
        .take()
        .unwrap()
        .read_to_end(&mut output.stdout)
        .unwrap();
    output
}

#[test]
fn concurrent_fires_sets_and_unsets_all_return_and_never_deadlock() {
    let api = c_api();
    let _lock = root_triggers_lock();
    remove_stale_triggers();
    let session = TestSession::snapshot("security-concurrent");
    let tag = unique_name("concurrent");
    let pid = run_crasher(&tag, 10);
    let set_program = api
        .set_trigger
        .iter()
        .find(|p| p.label == "set_trigger-c-shared")
        .unwrap();
    let started = Instant::now();

    // Set and unset in a loop, from two threads of this process and from
    // the C program, until the fires are done.
    let done = Arc::new(AtomicBool::new(false));
    let togglers: Vec<_> = (0..2)
        .map(|thread| {
            let done = Arc::clone(&done);
            let handle = Handle::new(&session.name);
            std::thread::spawn(move || {
                let mut codes = Vec::new();
                let action = RawTriggerAction(1 + thread);
                while !done.load(Ordering::Relaxed) && started.elapsed() < BOUND {
                    for set in [true, false] {
                        let call = if set {
                            lttng_trigger_set
                        } else {
                            lttng_trigger_unset
                        };
                        // SAFETY: a handle from lttng_create_handle; opts
                        // NULL with nb_opt 0.
                        let ret = unsafe {
                            call(
                                handle.as_c(),
                                RawTriggerType(1),
                                action,
                                std::ptr::null(),
                                0,
                            )
                        };
                        codes.push(ret);
                    }
                }
                codes
            })
        })
        .collect();
    let c_toggler = {
        let done = Arc::clone(&done);
        let program = set_program.path.clone();
        let name = session.name.clone();
        std::thread::spawn(move || {
            let mut outputs = Vec::new();
            while !done.load(Ordering::Relaxed) && started.elapsed() < BOUND {
                for verb in ["set", "unset"] {
                    let mut child = Command::new(&program)
                        .args([verb, &name, "snapshot"])
                        .stdin(Stdio::null())
                        .stdout(Stdio::piped())
                        .stderr(Stdio::null())
                        .spawn()
                        .unwrap();
                    outputs.push(wait_bounded(&mut child, started));
                }
            }
            outputs
        })
    };

    // The fires: several processes at once, each several times in a row.
    let helper = api.helper(Link::Shared).path.clone();
    let mut firing: Vec<Child> = (0..FIRING_PROCESSES)
        .map(|_| {
            let script = format!(
                "for i in $(seq {FIRES_EACH}); do \"$0\" --report --timeout-ms 5000 {pid} 0 0 crasher testhost; echo \"exit $?\"; done"
            );
            Command::new("/bin/sh")
                .args(["-c", &script, helper.to_str().unwrap()])
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    let outputs: Vec<String> = firing
        .iter_mut()
        .map(|child| String::from_utf8_lossy(&wait_bounded(child, started).stdout).into_owned())
        .collect();
    done.store(true, Ordering::Relaxed);
    let set_codes: Vec<i32> = togglers
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    let c_outputs = c_toggler.join().unwrap();
    assert!(started.elapsed() < BOUND);

    // Every fire returned a code, 0 or negative, and said what it did.
    let mut fires = 0;
    let mut snapshots = Vec::new();
    for output in &outputs {
        let mut current = String::new();
        for line in output.lines() {
            if let Some(status) = line.strip_prefix("exit ") {
                let parsed = HelperOutput::parse(&current);
                assert!(parsed.ret <= 0, "{}", parsed.raw);
                assert_eq!(status == "0", parsed.ret == 0, "{}", parsed.raw);
                for entry in parsed.for_session(&session.name) {
                    assert!(entry.status <= 0, "{}", parsed.raw);
                    if entry.status == 0 && entry.action == 1 {
                        snapshots.push(entry.snapshot_path.clone().unwrap());
                    }
                }
                fires += 1;
                current.clear();
            } else {
                current.push_str(line);
                current.push('\n');
            }
        }
    }
    assert_eq!(fires, FIRING_PROCESSES * FIRES_EACH, "{outputs:?}");
    for code in &set_codes {
        assert!(*code <= 0, "set/unset returned {code}");
    }
    assert!(
        set_codes.contains(&0),
        "no set or unset succeeded: {set_codes:?}"
    );
    for output in &c_outputs {
        let text = String::from_utf8_lossy(&output.stdout);
        let code: i32 = text
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or_else(|| panic!("the C program printed {text:?}"));
        assert!(code <= 0, "{text}");
    }
    // What the fires say they snapshotted is there, and is a trace; the
    // program's events are in those taken before any stop trigger ran
    // (a stop racing a snapshot may leave that snapshot's streams empty).
    assert!(!snapshots.is_empty(), "no fire snapshotted: {outputs:?}");
    let with_events = snapshots
        .iter()
        .filter(|path| {
            assert!(path.is_dir(), "{}", path.display());
            fixture_seqs(&babeltrace_events(path), &tag) == (0..10).collect::<Vec<i64>>()
        })
        .count();
    assert!(with_events > 0, "no snapshot holds the program's events");
    eprintln!(
        "{fires} fires ({} snapshots, {with_events} with the events), {} in-process set/unset, {} by the C program",
        snapshots.len(),
        set_codes.len(),
        c_outputs.len()
    );
}
