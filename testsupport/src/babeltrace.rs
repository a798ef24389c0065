//! Reading traces back with babeltrace2, and finding the crasher's events
//! (`lttng_coredump:step`, by tag) in them.

use std::path::Path;
use std::process::Command;

/// The events of a trace (a snapshot directory), one line each, as
/// babeltrace2 prints them. Panics when babeltrace2 is missing or fails.
pub fn babeltrace_events(path: &Path) -> Vec<String> {
    let out = Command::new("babeltrace2")
        .arg(path)
        .output()
        .unwrap_or_else(|e| panic!("cannot run babeltrace2 (apt-get install -y babeltrace2): {e}"));
    assert!(
        out.status.success(),
        "babeltrace2 {} failed: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// The `seq` values of the fixture's events with this `tag`, in trace order.
pub fn fixture_seqs(events: &[String], tag: &str) -> Vec<i64> {
    let tag_field = format!("tag = \"{tag}\"");
    events
        .iter()
        .filter(|line| line.contains("lttng_coredump:step") && line.contains(&tag_field))
        .filter_map(|line| {
            let rest = &line[line.find("seq = ")? + 6..];
            rest.split(|c: char| !c.is_ascii_digit() && c != '-')
                .next()?
                .parse()
                .ok()
        })
        .collect()
}
