//! Tests never read the machine's own core directory or configuration
//! (issue 19): a test that runs a tool without `--config` or `--dir` holds
//! a `testsupport::PrivateMachineDirs`, and whatever the machine keeps in
//! `/var/lib/lttng-coredump/cores` and `/etc/lttng-coredump` cannot reach
//! it. Shown here on a "machine" played inside the test's own mount
//! namespace (nothing real is touched): two crashes with huge records
//! (4 MB each) in the default core directory and a configuration of its
//! administrator; the tools see them there, and nothing of them once the
//! test holds its private view. (`handler_status_report.rs` runs the
//! status scenario of issue 19 on such a machine too.)

use serde_json::Value;
use std::fs;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;
use testsupport::handler::DEFAULT_CORE_DIR;
use testsupport::machine_dirs::plant_two_huge_crashes;
use testsupport::{handler_binary, run_bounded, PrivateMachineDirs};

fn tool(args: &[&str]) -> Output {
    run_bounded(
        Command::new(handler_binary!()).args(args),
        Duration::from_secs(120),
    )
}

fn listed_pids(output: &Output) -> Vec<i64> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| {
            serde_json::from_str::<Value>(line).unwrap()["pid"]
                .as_i64()
                .unwrap()
        })
        .collect()
}

#[test]
fn the_machines_crashes_and_configuration_never_reach_a_test_that_owns_its_view() {
    // The machine, played in a namespace of this test's own.
    let _machine = PrivateMachineDirs::enter();
    let pids = plant_two_huge_crashes(Path::new(DEFAULT_CORE_DIR));
    fs::write(
        "/etc/lttng-coredump/config.toml",
        "max_core_size = \"1K\"\nzstd_level = 99\n",
    )
    .unwrap();

    // What the tools read by default there: both crashes, the
    // administrator's configuration (a bad value: `config` says so).
    let seen = tool(&["list", "--json"]);
    assert!(seen.status.success(), "{seen:?}");
    assert_eq!(listed_pids(&seen), pids.map(i64::from).to_vec());
    let config = tool(&["config"]);
    let text = String::from_utf8_lossy(&config.stdout);
    assert!(text.contains("max_core_size = \"1K\""), "{config:?}");
    assert_eq!(config.status.code(), Some(1), "{config:?}");

    // A test that owns its view: none of it.
    {
        let _own = PrivateMachineDirs::enter();
        assert_eq!(fs::read_dir("/var/lib/lttng-coredump").unwrap().count(), 0);
        assert!(!Path::new("/etc/lttng-coredump/config.toml").exists());
        let none = tool(&["list", "--json"]);
        assert_eq!(none.status.code(), Some(1), "{none:?}");
        assert!(listed_pids(&none).is_empty(), "{none:?}");
        let config = tool(&["config"]);
        let text = String::from_utf8_lossy(&config.stdout);
        assert!(config.status.success(), "{config:?}");
        assert!(text.contains("max_core_size = \"8G\"  # default"), "{text}");
    }

    // Back in the machine's view, it is all still there.
    assert_eq!(listed_pids(&tool(&["list", "--json"])).len(), 2);
}
