//! The layout of the liblttng-ctl structures that lttng-ctl passes by value,
//! embeds or fills in field by field, as bindgen generated them, against what
//! the C compiler says (the `lttng_ctl_layout` fixture, compiled from
//! `<lttng/lttng.h>` by build.rs).

use lttng_ctl::sys;
use std::collections::BTreeMap;
use std::mem::{align_of, offset_of, size_of};
use std::process::Command;

/// The fixture's "NAME size|align|offset VALUE" lines.
fn c_layout() -> BTreeMap<String, usize> {
    let out = Command::new(env!("FIXTURE_LTTNG_CTL_LAYOUT"))
        .output()
        .expect("running the layout fixture");
    assert!(out.status.success(), "the layout fixture failed");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|line| {
            let mut words = line.split(' ');
            let (name, what, value) = (
                words.next().unwrap(),
                words.next().unwrap(),
                words.next().unwrap(),
            );
            (format!("{name} {what}"), value.parse().unwrap())
        })
        .collect()
}

macro_rules! layout {
    ($rust:ident { $($field:ident => $c_field:literal),* $(,)? }) => {{
        let name = stringify!($rust);
        let mut entries = vec![
            (format!("{name} size"), size_of::<sys::$rust>()),
            (format!("{name} align"), align_of::<sys::$rust>()),
        ];
        $(entries.push((format!("{name}.{} offset", $c_field), offset_of!(sys::$rust, $field)));)*
        entries
    }};
}

#[test]
fn bound_structs_match_the_c_compiler() {
    let c = c_layout();
    let rust: Vec<(String, usize)> = [
        layout!(lttng_handle {
            session_name => "session_name",
            domain => "domain",
            padding => "padding",
        }),
        layout!(lttng_domain {
            type_ => "type",
            buf_type => "buf_type",
            attr => "attr",
        }),
        layout!(lttng_session {
            name => "name",
            path => "path",
            enabled => "enabled",
            snapshot_mode => "snapshot_mode",
            live_timer_interval => "live_timer_interval",
            extended => "extended",
        }),
        layout!(lttng_channel_attr {
            overwrite => "overwrite",
            subbuf_size => "subbuf_size",
            num_subbuf => "num_subbuf",
            switch_timer_interval => "switch_timer_interval",
            read_timer_interval => "read_timer_interval",
            output => "output",
            tracefile_size => "tracefile_size",
            tracefile_count => "tracefile_count",
            live_timer_interval => "live_timer_interval",
            extended => "extended",
        }),
        layout!(lttng_channel {
            name => "name",
            enabled => "enabled",
            attr => "attr",
        }),
        layout!(lttng_event {
            type_ => "type",
            name => "name",
            loglevel_type => "loglevel_type",
            loglevel => "loglevel",
            enabled => "enabled",
            pid => "pid",
            flags => "flags",
            extended => "extended",
            attr => "attr",
        }),
    ]
    .concat();

    let mut mismatches = Vec::new();
    for (key, rust_value) in &rust {
        match c.get(key) {
            Some(c_value) if c_value == rust_value => {}
            Some(c_value) => mismatches.push(format!("{key}: C {c_value}, Rust {rust_value}")),
            None => mismatches.push(format!("{key}: not printed by the C fixture")),
        }
    }
    for key in c.keys() {
        if !rust.iter().any(|(k, _)| k == key) {
            mismatches.push(format!("{key}: printed by the C fixture but not checked"));
        }
    }
    assert!(
        mismatches.is_empty(),
        "layout mismatches:\n{}",
        mismatches.join("\n")
    );
    // Guards against a fixture that prints nothing useful.
    assert_eq!(c["lttng_session size"], size_of::<sys::lttng_session>());
    assert!(c.len() >= 40, "{c:?}");
}
