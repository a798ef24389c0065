//! lttng-ctl's notification channel against the real root session daemon
//! and a real lttng-ust program (the crasher): a notify trigger built and
//! registered through the API, its event-rule-matches condition capturing
//! `$ctx.vpid`, `$ctx.pid_ns` and two payload fields, a channel subscribed
//! to it; the wait is bounded when nothing comes, and each event the
//! program emits arrives as a notification naming the trigger and its
//! owner, with the values captured in the program.

use lttng_ctl::notification::{FieldValue, NotificationChannel, Received};
use lttng_ctl::trigger::{
    unregister_trigger, Action, CaptureExpr, Condition, EventRule, Trigger, TriggerList,
};
use std::os::unix::fs::MetadataExt;
use std::time::{Duration, Instant};
use testsupport::crasher::run_crasher;
use testsupport::{ensure_sessiond, unique_name};

/// Unregisters the test's trigger when dropped, also when the test panics.
struct Registered(String);

impl Drop for Registered {
    fn drop(&mut self) {
        let _ = unregister_trigger(&self.0);
    }
}

#[test]
fn a_notify_trigger_capturing_vpid_notifies_its_channel_with_the_emitters_values() {
    let _daemon = ensure_sessiond();
    let tag = unique_name("notify");
    let mut rule = EventRule::user_tracepoint("lttng_coredump:step").unwrap();
    rule.set_filter(&format!("tag == \"{tag}\"")).unwrap();
    let mut condition = Condition::event_rule_matches(&rule).unwrap();
    let captures = [
        CaptureExpr::ContextField("vpid".into()),
        CaptureExpr::ContextField("pid_ns".into()),
        CaptureExpr::PayloadField("seq".into()),
        CaptureExpr::PayloadField("tag".into()),
        CaptureExpr::PayloadField("no_such_field".into()),
    ];
    for capture in &captures {
        condition.capture(capture).unwrap();
    }
    assert_eq!(condition.captures(), captures);
    let name = unique_name("notify-trigger");
    let mut trigger = Trigger::new(&condition, &Action::notify().unwrap()).unwrap();
    trigger.register(&name).unwrap();
    let _registered = Registered(name.clone());
    // Listed back: the notify action and the capture descriptors.
    let list = TriggerList::fetch().unwrap();
    let listed = list.find(0, &name).expect("the trigger is listed");
    assert_eq!(listed.captures(), captures);
    assert_eq!(
        listed.info().actions,
        vec![lttng_ctl::trigger::ActionInfo::Notify]
    );

    let mut channel = NotificationChannel::connect().unwrap();
    assert!(
        channel.polls_socket(),
        "the channel's socket was not found in liblttng-ctl's layout"
    );
    channel.subscribe(&listed).unwrap();
    drop(list);

    // Nothing emitted yet: the wait ends at its bound with nothing.
    let started = Instant::now();
    assert_eq!(
        channel.next(Duration::from_millis(300)).unwrap(),
        Received::Timeout
    );
    assert!(started.elapsed() >= Duration::from_millis(300));

    let pid = run_crasher(&tag, 3);
    let pid_ns = std::fs::metadata("/proc/self/ns/pid").unwrap().ino();
    let mut seqs = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    while seqs.len() < 3 {
        assert!(Instant::now() < deadline, "notifications missing: {seqs:?}");
        let notification = match channel.next(Duration::from_secs(5)).unwrap() {
            Received::Notification(n) => n,
            Received::Timeout => continue,
            Received::Dropped => panic!("the session daemon dropped notifications"),
        };
        assert_eq!(notification.trigger_name.as_deref(), Some(name.as_str()));
        assert_eq!(notification.owner_uid, 0);
        assert_eq!(notification.captured.len(), captures.len());
        assert_eq!(
            notification
                .value_of(&captures[0])
                .and_then(FieldValue::as_i64),
            Some(i64::from(pid)),
            "{notification:?}"
        );
        assert_eq!(
            notification
                .value_of(&captures[1])
                .and_then(FieldValue::as_u64),
            Some(pid_ns),
            "{notification:?}"
        );
        assert_eq!(
            notification.value_of(&captures[3]),
            Some(&FieldValue::String(tag.clone()))
        );
        assert_eq!(notification.value_of(&captures[4]), None);
        seqs.push(
            notification
                .value_of(&captures[2])
                .and_then(FieldValue::as_i64)
                .unwrap(),
        );
    }
    seqs.sort_unstable();
    assert_eq!(seqs, [0, 1, 2]);
}
