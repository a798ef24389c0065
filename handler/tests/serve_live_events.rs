//! A live core on an event, not a crash: `lttng-coredump serve` with a
//! `[live]` table follows root's notify trigger (made with `lttng
//! add-trigger ... --capture '$ctx.vpid' --capture '$ctx.pid_ns' --action
//! notify`) on the real root session daemon, and takes a live core of the
//! lttng-ust program that emitted the event:
//!
//! - the crasher emits its events and keeps running: one live core of it
//!   (the process interval holds back the others), the record marked live
//!   and naming the trigger, its event rule and the captured vpid, the
//!   snapshot taken during the stop holding the event; the process runs on
//!   to its normal end;
//! - a user's trigger of a followed name is not followed (the service
//!   says why); a hostile program that answers getpid() itself sends the vpid of
//!   another user's process, then of a root process in another pid
//!   namespace: neither is dumped (nor stopped), and the service says why
//!   for each (the notification came: the refusal is not a lost event);
//! - a flood of a thousand events: one core, the service still answers,
//!   and its log stays within its per-second bound;
//! - one user's live core stuck (their own session daemon stopped during
//!   its snapshot) holds one dump slot and no more: root's event still gets
//!   its core meanwhile, and a storm of the stuck user's events past their
//!   bound is refused, each refusal saying why.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use testsupport::babeltrace::{babeltrace_events, fixture_seqs};
use testsupport::crasher::{gated_crasher, REGISTER_TIMEOUT_MS};
use testsupport::handler::{config_for, config_with_deadline, wait_for_record};
use testsupport::process::spawn_printing_pid;
use testsupport::service::{unique_socket, Service};
use testsupport::sessions::TestSession;
use testsupport::{ensure_sessiond, TestUser};
use testsupport::{handler_binary, lttng, lttng_ok, root_triggers_lock, unique_name, TempDir};

/// A hang guard, not a timing claim.
const GUARD: Duration = Duration::from_secs(300);

/// Root's notify trigger on the crasher's events tagged `tag`, capturing
/// the emitter's vpid and pid namespace; removed when dropped.
struct NotifyTrigger {
    name: String,
}

/// `lttng add-trigger`'s arguments for a notify trigger `name` on the
/// crasher's events tagged `tag`, capturing the emitter's vpid and pid
/// namespace (and the event's `seq`).
fn notify_trigger_args(name: &str, tag: &str) -> Vec<String> {
    let filter = format!("--filter=tag == \"{tag}\"");
    [
        "add-trigger",
        "--name",
        name,
        "--condition",
        "event-rule-matches",
        "--type=user",
        "--name=lttng_coredump:step",
        &filter,
        "--capture",
        "$ctx.vpid",
        "--capture",
        "$ctx.pid_ns",
        "--capture",
        "seq",
        "--action",
        "notify",
    ]
    .into_iter()
    .map(str::to_string)
    .collect()
}

impl NotifyTrigger {
    fn new(tag: &str) -> NotifyTrigger {
        let name = unique_name("live-event");
        let args = notify_trigger_args(&name, tag);
        lttng_ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
        NotifyTrigger { name }
    }
}

impl Drop for NotifyTrigger {
    fn drop(&mut self) {
        let _ = lttng(&["remove-trigger", &self.name]);
    }
}

/// A notify trigger like [`NotifyTrigger`]'s, named `name` but owned by
/// `uid`, registered through lttng-ctl; unregistered when dropped.
struct UsersTrigger {
    name: String,
    uid: u32,
}

fn users_trigger(name: &str, tag: &str, uid: u32) -> UsersTrigger {
    use lttng_ctl::trigger::{Action, CaptureExpr, Condition, EventRule, Trigger};
    let mut rule = EventRule::user_tracepoint("lttng_coredump:step").unwrap();
    rule.set_filter(&format!("tag == \"{tag}\"")).unwrap();
    let mut condition = Condition::event_rule_matches(&rule).unwrap();
    for field in ["vpid", "pid_ns"] {
        condition
            .capture(&CaptureExpr::ContextField(field.into()))
            .unwrap();
    }
    let mut trigger = Trigger::new(&condition, &Action::notify().unwrap()).unwrap();
    trigger.set_owner_uid(uid).unwrap();
    trigger.register(name).unwrap();
    UsersTrigger {
        name: name.to_string(),
        uid,
    }
}

impl Drop for UsersTrigger {
    fn drop(&mut self) {
        let _ = lttng_ctl::trigger::unregister_trigger_of(self.uid, &self.name);
    }
}

/// `serve` on a socket of its own with `[live]` following `trigger`, its
/// cores in `dir/cores`; returned once it follows the trigger.
fn serve_following(
    dir: &Path,
    trigger: &NotifyTrigger,
    extra: &str,
    live: &str,
) -> (Service, PathBuf) {
    let cores = dir.join("cores");
    let config = format!(
        "{}[live]\ntriggers = [\"{}\"]\n{live}\n",
        config_for(&cores, extra),
        trigger.name
    );
    let following = format!("following trigger \"{}\"", trigger.name);
    (serve_with(dir, &config, &[following]), cores)
}

/// `serve` on a socket of its own with `config`, returned once its log
/// says each of `following`.
fn serve_with(dir: &Path, config: &str, following: &[String]) -> Service {
    let service = Service::start(
        handler_binary!(),
        dir,
        config,
        &unique_socket(),
        &dir.join("no-backup"),
    );
    for line in following {
        wait_for_log(&service, |log| log.contains(line.as_str()));
    }
    service
}

fn wait_for_log(service: &Service, done: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + GUARD;
    loop {
        let log = service.log_text();
        if done(&log) {
            return log;
        }
        assert!(Instant::now() < deadline, "the service never did it: {log}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The root records (not users' copies) in `cores`.
fn records(cores: &Path) -> Vec<PathBuf> {
    fs::read_dir(cores)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| {
                    let name = p.file_name().unwrap().to_string_lossy().into_owned();
                    name.ends_with(".json") && !name.ends_with(".user.json")
                })
                .collect()
        })
        .unwrap_or_default()
}

/// A thread's state letters of `pid` (none stopped `t`/`T`) and its tracer.
fn running_untraced(pid: i32) {
    for task in fs::read_dir(format!("/proc/{pid}/task")).unwrap().flatten() {
        let stat = fs::read_to_string(task.path().join("stat")).unwrap();
        let state = stat.rsplit(')').next().unwrap().trim_start();
        assert!(
            !state.starts_with('t') && !state.starts_with('T'),
            "{pid}: thread left stopped: {state}"
        );
    }
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    assert!(status.contains("TracerPid:\t0\n"), "{pid} left traced");
}

/// Processes killed when dropped.
struct Victims(Vec<i32>);

impl Drop for Victims {
    fn drop(&mut self) {
        for pid in &self.0 {
            testsupport::process::signal(*pid, libc::SIGKILL);
        }
    }
}

fn let_go(mut child: Child) {
    child.stdin.take().unwrap().write_all(b"go\n").unwrap();
    let status = child.wait().unwrap();
    assert!(
        status.success(),
        "the process did not end normally: {status}"
    );
}

#[test]
fn an_event_of_a_followed_trigger_takes_a_live_core_of_the_process_that_emitted_it() {
    // The dump fires the root daemon's OnAnyCoreDump triggers, as gcore.
    let _lock = root_triggers_lock();
    let _daemon = ensure_sessiond();
    let dir = TempDir::new("live-event");
    let session = TestSession::snapshot("live-event");
    let tag = unique_name("live");
    let trigger = NotifyTrigger::new(&tag);
    let (service, cores) = serve_following(
        dir.path(),
        &trigger,
        &format!("snapshot_sessions = [\"{}\"]", session.name),
        "trigger_interval = 0\nprocess_interval = \"1h\"",
    );

    // Five events, then the crasher waits on its stdin: running.
    let (child, pid) = gated_crasher(&[&tag, "5", "exit"]);
    let (record_path, record) = wait_for_record(&cores, pid);
    // The other four notifications reach the service and are held back by
    // the process interval: one core.
    let refused = format!("(vpid {pid}): rate-limited (process_interval)");
    wait_for_log(&service, |log| log.matches(&refused).count() == 4);
    assert_eq!(records(&cores), vec![record_path.clone()], "one core only");

    // A crash-like record, marked live, naming the trigger and the event.
    assert_eq!(record["pid"], pid);
    assert_eq!(record["uid"], 0);
    assert!(record["signal"].is_null(), "{record}");
    assert_eq!(record["core"]["complete"], true, "{record}");
    assert!(Path::new(record["core"]["path"].as_str().unwrap()).is_file());
    let live = &record["live"];
    assert!(live["pause_us"].as_u64().unwrap() > 0, "{live}");
    let event = &live["event"];
    assert_eq!(event["trigger"], trigger.name.as_str(), "{live}");
    assert_eq!(event["trigger_owner_uid"], 0);
    assert_eq!(event["event_rule"], "lttng_coredump:step");
    let captured: Vec<&str> = event["captured"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(captured[0], format!("$ctx.vpid = {pid}"), "{captured:?}");
    assert!(captured[1].starts_with("$ctx.pid_ns = "), "{captured:?}");
    assert!(captured[2].starts_with("seq = "), "{captured:?}");
    // The snapshot taken during the stop holds the event (and those before
    // it: the notification is of one of the five, the core came after).
    let entry = record["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["session"] == session.name.as_str())
        .unwrap_or_else(|| panic!("no snapshot of {}: {record}", session.name));
    assert!(entry["error"].is_null(), "{entry}");
    let seqs = fixture_seqs(
        &babeltrace_events(Path::new(entry["path"].as_str().unwrap())),
        &tag,
    );
    assert!(
        seqs.contains(&0),
        "the event is not in the snapshot: {seqs:?}"
    );
    // `info` shows it as a live core.
    let info = Command::new(handler_binary!())
        .args(["info", &pid.to_string(), "--no-pager", "--config"])
        .arg(&service.config)
        .output()
        .unwrap();
    let info = String::from_utf8_lossy(&info.stdout);
    assert!(
        info.contains("Live Core: taken from the running process"),
        "{info}"
    );
    assert!(
        info.contains(&format!(
            "On Event: trigger \"{}\" of uid 0, event rule lttng_coredump:step",
            trigger.name
        )),
        "{info}"
    );
    assert!(
        info.contains(&format!("captured $ctx.vpid = {pid}")),
        "{info}"
    );

    // The process ran on, never stopped for longer than the dump's pause,
    // and ends normally.
    running_untraced(pid);
    let_go(child);
    drop(service);
}

#[test]
fn a_hostile_program_naming_another_process_gets_no_core_of_it() {
    let _lock = root_triggers_lock();
    let _daemon = ensure_sessiond();
    let dir = TempDir::new("live-hostile");
    let tag = unique_name("hostile");
    let trigger = NotifyTrigger::new(&tag);
    // The attacker's own trigger of the same name (root registers it for
    // them, as the daemon lets root do): not followed, and said so.
    let attacker = TestUser::create("lcdlive-attacker", false);
    let _theirs = users_trigger(&trigger.name, &tag, attacker.uid);
    let (service, cores) = serve_following(dir.path(), &trigger, "", "trigger_interval = 0");
    wait_for_log(&service, |log| {
        log.contains(&format!(
            "trigger \"{}\" is not followed: it is uid {}'s",
            trigger.name, attacker.uid
        ))
    });

    // The victims: another user's process, and a root process in a pid
    // namespace of its own (its pid here is not its vpid there).
    let victim_user = TestUser::create("lcdlive-victim", false);
    let (mut user_victim, user_victim_pid) = spawn_printing_pid(
        victim_user
            .command("/bin/sh")
            .args(["-c", "echo $$; exec sleep 1000"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null()),
    );
    let mut unshared = Command::new("unshare")
        .args(["--pid", "--fork", "sleep", "1000"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + GUARD;
    let ns_victim_pid = loop {
        if let Some((pid, _)) = testsupport::process::children_of(unshared.id() as i32).first() {
            break *pid;
        }
        assert!(Instant::now() < deadline, "unshare started nothing");
        std::thread::sleep(Duration::from_millis(20));
    };
    // Both end with the test, also when it fails (the namespace's init
    // takes SIGKILL only).
    let _victims = Victims(vec![user_victim_pid, ns_victim_pid]);

    // The hostile program: another user's, traced by root's daemon too.
    for (victim, why) in [
        (user_victim_pid, "the process is not the trigger owner's"),
        (ns_victim_pid, "lives in another pid namespace"),
    ] {
        let (child, _) = spawn_printing_pid(
            attacker
                .command("env")
                .arg(format!("LTTNG_UST_REGISTER_TIMEOUT={REGISTER_TIMEOUT_MS}"))
                .arg(testsupport::attacker::FORGED_VPID)
                .args([&tag, &victim.to_string()])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped()),
        );
        // The notification came, with the forged vpid, and was refused.
        let said = format!("(vpid {victim}): ");
        let log = wait_for_log(&service, |log| {
            log.lines().any(|l| l.contains(&said) && l.contains(why))
        });
        assert!(!log.contains("taking a live core"), "{log}");
        running_untraced(victim);
        let_go(child);
    }
    assert!(records(&cores).is_empty(), "{:?}", records(&cores));
    drop(_victims);
    for child in [&mut user_victim, &mut unshared] {
        let _ = child.wait();
    }
    drop(service);
}

#[test]
fn a_flood_of_events_costs_one_core_and_a_bounded_log() {
    let _lock = root_triggers_lock();
    let _daemon = ensure_sessiond();
    let dir = TempDir::new("live-flood");
    let tag = unique_name("flood");
    let trigger = NotifyTrigger::new(&tag);
    let (service, cores) = serve_following(
        dir.path(),
        &trigger,
        "",
        "trigger_interval = 0\nprocess_interval = \"1h\"",
    );
    let started = Instant::now();
    let (child, pid) = gated_crasher(&[&tag, "1000", "exit"]);
    wait_for_record(&cores, pid);
    // Later notifications reach the service and are held back.
    let refused = format!("(vpid {pid}): rate-limited (process_interval)");
    wait_for_log(&service, |log| log.contains(&refused));
    // Whatever is still coming is held back too: the process interval is
    // an hour. Give the rest time to arrive, then count.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(records(&cores).len(), 1, "{:?}", records(&cores));
    assert!(service.answers(), "the service no longer answers");
    // At most 5 refusals logged per second and one count each second after.
    let seconds = started.elapsed().as_secs() + 1;
    let lines = service
        .log_text()
        .lines()
        .filter(|l| l.contains("live events:"))
        .count() as u64;
    assert!(
        lines <= 2 + seconds * 6,
        "{lines} lines in {seconds} s: {}",
        service.log_text()
    );
    running_untraced(pid);
    let_go(child);
    drop(service);
}

/// The notification child of a user (`service::user_notifications`), run
/// by the handler's trampoline as that user, exactly as `spawn` starts it.
fn notification_child(user: &TestUser, names: &[&str]) -> Child {
    use lttng_coredump_handler::base::user_child::TRAMPOLINE;
    use lttng_coredump_handler::service::user_notifications::TASK;
    Command::new(handler_binary!())
        .arg(TRAMPOLINE)
        .arg(std::process::id().to_string())
        .arg(format!("{}:{}:{}", user.uid, user.gid, user.gid))
        .args(["-", "task", TASK])
        .args(names)
        .env_clear()
        .env("HOME", &user.home)
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap()
}

/// The child's lines, read by a thread (a hang guard on each, not a
/// timing claim).
fn child_lines(
    child: &mut Child,
) -> std::sync::mpsc::Receiver<lttng_coredump_handler::service::user_notifications::Line> {
    use lttng_coredump_handler::service::user_notifications::Reader;
    let stdout = child.stdout.take().unwrap();
    let (send, receive) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut reader = Reader::new(std::io::BufReader::new(stdout));
        while let Some(line) = reader.next_line() {
            if send.send(line).is_err() {
                break;
            }
        }
    });
    receive
}

/// A user (not in the tracing group) registers a notify trigger in their
/// own session daemon with the `lttng` CLI; the user's notification child
/// (the user's ids, a session of its own) follows it and passes on the
/// event of the user's own program, with the vpid and pid namespace it
/// captured and the owner the daemon says; a trigger of a followed name
/// without the captures is said to be not followed.
#[test]
fn a_users_notification_child_passes_on_the_events_of_the_users_own_trigger() {
    use lttng_coredump_handler::service::user_notifications::Line;
    let mut user = TestUser::create("lcdutrig", false);
    user.start_sessiond();
    let tag = unique_name("user-live");
    let name = unique_name("user-trigger");
    let bare = unique_name("user-bare");
    user_notify_trigger(&user, &name, &tag);
    user.lttng_ok(&[
        "add-trigger",
        "--name",
        &bare,
        "--condition",
        "event-rule-matches",
        "--type=user",
        "--name=lttng_coredump:step",
        "--action",
        "notify",
    ]);
    let mut child = notification_child(&user, &[&name, &bare]);
    let child_pid = child.id() as i32;
    struct Kill(i32);
    impl Drop for Kill {
        fn drop(&mut self) {
            testsupport::process::signal(self.0, libc::SIGKILL);
        }
    }
    let _kill = Kill(child_pid);
    let lines = child_lines(&mut child);
    let mut not_followed = None;
    loop {
        match lines
            .recv_timeout(GUARD)
            .expect("the child never followed the trigger")
        {
            Line::Following {
                name: n,
                event_rule,
            } if n == name => {
                assert_eq!(event_rule.as_deref(), Some("lttng_coredump:step"));
                break;
            }
            Line::NotFollowed { name: n, why } if n == bare => not_followed = Some(why),
            other => panic!("unexpected line before following: {other:?}"),
        }
    }
    // The child is the user's in every id, in a session of its own.
    let status = fs::read_to_string(format!("/proc/{child_pid}/status")).unwrap();
    let uid = user.uid;
    assert!(
        status.contains(&format!("Uid:\t{uid}\t{uid}\t{uid}\t{uid}\n")),
        "{status}"
    );
    assert!(status.contains("NoNewPrivs:\t1\n"), "{status}");
    let stat = fs::read_to_string(format!("/proc/{child_pid}/stat")).unwrap();
    let session: i32 = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .nth(3)
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(session, child_pid, "not a session of its own: {stat}");

    // The user's program emits one event and waits.
    let (program, pid) = spawn_printing_pid(
        user.crasher_command()
            .args(["--gate", &tag, "1", "exit"])
            .stdin(Stdio::piped())
            .stderr(Stdio::null()),
    );
    let own_ns = fs::metadata("/proc/self/ns/pid").unwrap();
    let event = loop {
        match lines.recv_timeout(GUARD).expect("no event came") {
            Line::Event {
                trigger,
                owner_uid,
                vpid,
                pid_ns,
                captured,
            } if trigger == name => break (owner_uid, vpid, pid_ns, captured),
            Line::NotFollowed { name: n, why } if n == bare => not_followed = Some(why),
            // The bare trigger is not followed, so its events never come.
            other => panic!("unexpected line: {other:?}"),
        }
    };
    let_go(program);
    assert_eq!(event.0, user.uid, "the owner the daemon says");
    assert_eq!(event.1, Some(i64::from(pid)));
    assert_eq!(event.2, Some(std::os::unix::fs::MetadataExt::ino(&own_ns)));
    assert!(
        event.3.iter().any(|c| c == "seq = 0"),
        "captured: {:?}",
        event.3
    );
    let why = not_followed.expect("the bare trigger was not said to be not followed");
    assert!(why.contains("$ctx.vpid"), "{why}");
}

/// A notify trigger like [`NotifyTrigger`]'s registered by `user` in the
/// daemon their `lttng` uses (their own: not in the tracing group).
fn user_notify_trigger(user: &TestUser, name: &str, tag: &str) {
    let args = notify_trigger_args(name, tag);
    user.lttng_ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
}

/// `serve` following the triggers `name` of root and of `users` (their
/// own, each by a child of theirs), its cores in `dir/cores`; returned
/// once it follows the users' triggers.
fn serve_following_users(dir: &Path, name: &str, users: &[&TestUser]) -> (Service, PathBuf) {
    let cores = dir.join("cores");
    let uids: Vec<String> = users.iter().map(|u| u.uid.to_string()).collect();
    let config = format!(
        "{}[live]\ntriggers = [\"{name}\"]\nusers = [{}]\ntrigger_interval = 0\n",
        config_for(&cores, ""),
        uids.join(", ")
    );
    let following: Vec<String> = users
        .iter()
        .map(|user| format!("following trigger \"{name}\" of uid {}", user.uid))
        .collect();
    (serve_with(dir, &config, &following), cores)
}

/// `serve` follows two users' own triggers (registered with their `lttng`
/// in their own daemons), each through a notification child of theirs:
/// the event of the owner's program gives a live core of it, its record
/// the user's (uid, the trigger's owner, the trigger's name, visible to
/// the user); the other user's hostile program, sending the owner's pid as
/// its vpid to its own trigger of the same name, gets nothing, and the
/// service says why.
#[test]
fn a_users_own_trigger_takes_a_live_core_of_their_own_process_only() {
    // The dump fires the root daemon's OnAnyCoreDump triggers, as gcore.
    let _lock = root_triggers_lock();
    let _daemon = ensure_sessiond();
    let mut owner = TestUser::create("lcdutown", false);
    let mut attacker = TestUser::create("lcdutatk", false);
    owner.start_sessiond();
    attacker.start_sessiond();
    let dir = TempDir::new("live-users");
    let name = unique_name("users-live");
    let (tag, attacker_tag) = (unique_name("owner"), unique_name("attacker"));
    user_notify_trigger(&owner, &name, &tag);
    user_notify_trigger(&attacker, &name, &attacker_tag);
    let (service, cores) = serve_following_users(dir.path(), &name, &[&owner, &attacker]);

    // The owner's program: one event, then it waits on its stdin.
    let (program, pid) = spawn_printing_pid(
        owner
            .crasher_command()
            .args(["--gate", &tag, "1", "exit"])
            .stdin(Stdio::piped())
            .stderr(Stdio::null()),
    );
    let (record_path, record) = wait_for_record(&cores, pid);
    assert_eq!(record["pid"], pid);
    assert_eq!(record["uid"], owner.uid, "{record}");
    let event = &record["live"]["event"];
    assert_eq!(event["trigger"], name.as_str(), "{record}");
    assert_eq!(event["trigger_owner_uid"], owner.uid, "{record}");
    // Readable by its user (the process was theirs in every respect).
    let core = Path::new(record["core"]["path"].as_str().unwrap());
    assert!(
        testsupport::access::readable_by(owner.uid, owner.gid, core),
        "the owner cannot read their core: {record}"
    );

    // The attacker's program names the owner's (still running) process.
    let (hostile, _) = spawn_printing_pid(
        attacker
            .command("env")
            .arg(format!("LTTNG_UST_REGISTER_TIMEOUT={REGISTER_TIMEOUT_MS}"))
            .arg(testsupport::attacker::FORGED_VPID)
            .args([&attacker_tag, &pid.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped()),
    );
    let said = format!("(vpid {pid}): the process is not the trigger owner's");
    let log = wait_for_log(&service, |log| log.contains(&said));
    assert_eq!(
        log.matches("taking a live core").count(),
        1,
        "only the owner's own core: {log}"
    );
    let_go(hostile);
    let_go(program);
    assert_eq!(records(&cores), vec![record_path]);
    drop(service);
}

/// Whether a thread of `pid` is stopped by its tracer (`t`).
fn traced_stop(pid: i32) -> bool {
    fs::read_dir(format!("/proc/{pid}/task"))
        .map(|tasks| {
            tasks.flatten().any(|task| {
                fs::read_to_string(task.path().join("stat")).is_ok_and(|stat| {
                    stat.rsplit(')')
                        .next()
                        .is_some_and(|rest| rest.trim_start().starts_with('t'))
                })
            })
        })
        .unwrap_or(false)
}

/// The snapshot deadline of the services below: a stuck user's live core
/// waits this long (its dump's own deadline, 15 minutes, too), far longer
/// than any wait of the tests (at most [`testsupport::handler::RECORD_HANG_GUARD`]).
const STUCK_SNAPSHOT_SECS: u64 = 900;

/// A followed user whose live core gets stuck. In the `tracing` group,
/// their trigger (`name`, on their events tagged `tag`, registered for
/// them by root) lives in root's daemon, where their notification child
/// follows it; but the snapshots of their live core are also fired in
/// their own session daemon (`~/.lttng`, as for a crash), which is stopped
/// (SIGSTOP): the dump waits there for the snapshot deadline, the process
/// stopped meanwhile, for certain. Their programs register with root's
/// daemon only (an `LTTNG_HOME` without a daemon), so the stopped one
/// never holds them up. The daemon is let go (SIGCONT) by [`release`] or
/// when the user is dropped.
struct StuckUser {
    trigger: UsersTrigger,
    tag: String,
    daemon: i32,
    // Dropped last: the daemon let go and stopped, the user deleted.
    user: TestUser,
}

impl StuckUser {
    fn new(name: &str) -> StuckUser {
        let mut user = TestUser::create(name, true);
        let daemon = user.start_sessiond_outside_groups();
        assert!(testsupport::process::signal(daemon, libc::SIGSTOP));
        let tag = unique_name("stuck");
        let trigger = users_trigger(&unique_name("stuck-live"), &tag, user.uid);
        StuckUser {
            trigger,
            tag,
            daemon,
            user,
        }
    }

    /// The user's program: `count` events of their trigger, then it waits
    /// on its stdin.
    fn program(&self, count: u32) -> (Child, i32) {
        spawn_printing_pid(
            self.user
                .command("env")
                .arg(format!("LTTNG_HOME={}/no-daemon", self.user.home.display()))
                .arg(format!("LTTNG_UST_REGISTER_TIMEOUT={REGISTER_TIMEOUT_MS}"))
                .arg(testsupport::crasher::crasher_path())
                .args(["--gate", &self.tag, &count.to_string(), "exit"])
                .stdin(Stdio::piped())
                .stderr(Stdio::null()),
        )
    }
}

/// `serve` following root's trigger and a [`StuckUser`]'s (with `extra`
/// in `[live]`), once the user's live core is stuck in its snapshot: the
/// user's program stopped, waiting on its stdin.
struct StuckScene {
    // Dropped first: the service, then the program (its stdin closed).
    service: Service,
    program: Option<Child>,
    pid: i32,
    cores: PathBuf,
    root_trigger: NotifyTrigger,
    root_tag: String,
    _dir: TempDir,
    stuck: StuckUser,
}

impl StuckScene {
    fn new(user: &str, extra: &str) -> StuckScene {
        let stuck = StuckUser::new(user);
        let dir = TempDir::new("live-stuck");
        let root_tag = unique_name("stuck-root");
        let root_trigger = NotifyTrigger::new(&root_tag);
        let cores = dir.path().join("cores");
        let uid = stuck.user.uid;
        let config = format!(
            "{}[live]\ntriggers = [\"{}\", \"{}\"]\nusers = [{uid}]\ntrigger_interval = 0\n\
             process_interval = 0\n{extra}\n",
            config_with_deadline(&cores, STUCK_SNAPSHOT_SECS, ""),
            root_trigger.name,
            stuck.trigger.name,
        );
        let following = [
            format!("following trigger \"{}\" of uid 0", root_trigger.name),
            format!("following trigger \"{}\" of uid {uid}", stuck.trigger.name),
        ];
        let service = serve_with(dir.path(), &config, &following);
        // One event: its live core is started and stays stopped in its
        // snapshot.
        let (program, pid) = stuck.program(1);
        let taking = format!("taking a live core of process {pid}");
        wait_for_log(&service, |log| log.contains(&taking));
        let deadline = Instant::now() + GUARD;
        while !traced_stop(pid) {
            assert!(Instant::now() < deadline, "{pid} was never stopped");
            std::thread::sleep(Duration::from_millis(20));
        }
        StuckScene {
            service,
            program: Some(program),
            pid,
            cores,
            root_trigger,
            root_tag,
            _dir: dir,
            stuck,
        }
    }

    /// Root's event, and its live core taken, while the user's is stuck.
    fn roots_core_meanwhile(&self) {
        let (child, pid) = gated_crasher(&[&self.root_tag, "1", "exit"]);
        // Bounded by the hang guard (300 s), far below the stuck dump's 900.
        let (_, record) = wait_for_record(&self.cores, pid);
        assert_eq!(record["uid"], 0, "{record}");
        assert_eq!(record["core"]["complete"], true, "{record}");
        assert_eq!(
            record["live"]["event"]["trigger"],
            self.root_trigger.name.as_str(),
            "{record}"
        );
        running_untraced(pid);
        let_go(child);
        // The user's is still stuck: its process stopped, no record of it.
        assert!(traced_stop(self.pid), "{} is no longer stopped", self.pid);
        let needle = format!(".{}.", self.pid);
        assert!(
            !records(&self.cores)
                .iter()
                .any(|r| r.to_string_lossy().contains(&needle)),
            "{} already has a record",
            self.pid
        );
    }

    /// Lets the user's daemon go: their live core comes (its record
    /// returned), and their program ends.
    fn release(&mut self) -> serde_json::Value {
        assert!(testsupport::process::signal(
            self.stuck.daemon,
            libc::SIGCONT
        ));
        let (_, record) = wait_for_record(&self.cores, self.pid);
        running_untraced(self.pid);
        let_go(self.program.take().unwrap());
        record
    }
}

/// A followed user's live core is stuck in its snapshot (their own session
/// daemon stopped): root's trigger then fires, and root's live core and
/// record come while the user's is still stuck (the process still stopped,
/// no record); once the user's daemon is let go, their core comes too.
/// One dump thread for all would hold root's event for the stuck dump's
/// 15 minutes.
#[test]
fn a_users_stuck_live_core_does_not_hold_up_roots() {
    let _lock = root_triggers_lock();
    let _daemon = ensure_sessiond();
    let mut scene = StuckScene::new("lcdlfair", "");
    scene.roots_core_meanwhile();
    let uid = scene.stuck.user.uid;
    let record = scene.release();
    assert_eq!(record["uid"], uid, "{record}");
    assert_eq!(
        record["live"]["event"]["trigger_owner_uid"], uid,
        "{record}"
    );
}

/// While a followed user's live core is stuck, a storm of that user's
/// events (a program emitting 30) fills their queue (2 may wait here) and
/// the rest is refused, the service saying why and how many so far; root's
/// event still gets its core. The storm's program then ends: once the stuck
/// core is let go, the two that waited are refused at their turn (the
/// process is checked again then).
#[test]
fn a_storm_of_a_stuck_users_events_is_refused_past_their_bound_and_root_still_gets_its_core() {
    let _lock = root_triggers_lock();
    let _daemon = ensure_sessiond();
    let mut scene = StuckScene::new("lcdlstorm", "max_pending_per_user = 2");
    let (storm, storm_pid) = scene.stuck.program(30);
    // At least 16 of the 30 reach the service (its queue of the user's
    // lines holds 16): two wait, the others are refused.
    let said = format!(
        "(vpid {storm_pid}): uid {} has a live core under way and 2 event(s) waiting for one \
         (at most 2 may wait per user; ",
        scene.stuck.user.uid
    );
    let log = wait_for_log(&scene.service, |log| log.contains(&said));
    assert!(
        !log.contains(&format!("taking a live core of process {storm_pid}")),
        "{log}"
    );
    scene.roots_core_meanwhile();
    // The storm's program ends before its turn: the two of its events that
    // waited are refused when it comes (the process is checked again).
    let_go(storm);
    scene.release();
    let gone = format!("(vpid {storm_pid}): by its turn to be dumped: no such process");
    wait_for_log(&scene.service, |log| log.matches(&gone).count() == 2);
}
