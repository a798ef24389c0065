//! A network of the test's own: network namespaces made for one test (a
//! collector and some hosts, joined by veth pairs on a bridge inside the
//! collector's namespace), with addresses the test chooses, never touching
//! the machine's own network (nothing is created in the root namespace;
//! every interface is made inside a test namespace). Torn down when
//! dropped, even when the test fails: the processes run in the namespaces
//! (all the test's own) are killed, then the namespaces deleted. A test
//! killed outright leaves its namespaces behind; the next network made
//! removes those whose test process is gone.
//!
//! ```text
//!   collector ns:  br0 10.213.0.1/24 ── vethN ┄┄ eth0 10.213.0.(N+1)/24 :host N ns
//! ```

use crate::process::run_bounded;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The prefix of every namespace a test makes (`lcdn-PID-N-ROLE`).
const PREFIX: &str = "lcdn";

/// The collector's address on the test network.
pub const COLLECTOR_ADDR: &str = "10.213.0.1";

/// A test network: a collector namespace and `hosts` host namespaces.
pub struct TestNetwork {
    collector: String,
    hosts: Vec<String>,
}

fn ip(args: &[&str]) -> String {
    let out = run_bounded(Command::new("ip").args(args), Duration::from_secs(30));
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Namespaces of earlier test processes that are gone (killed outright, so
/// their `Drop` never ran).
fn remove_leftovers() {
    let listed = ip(&["netns", "list"]);
    for line in listed.lines() {
        let name = line.split_whitespace().next().unwrap_or("");
        let mut parts = name.split('-');
        if parts.next() != Some(PREFIX) {
            continue;
        }
        let Some(pid) = parts.next().and_then(|p| p.parse::<i32>().ok()) else {
            continue;
        };
        if std::path::Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        kill_processes_in(name);
        let _ = run_bounded(
            Command::new("ip").args(["netns", "del", name]),
            Duration::from_secs(30),
        );
    }
}

/// Kills every process running in the test namespace `name` (each one the
/// test started there), and waits (bounded) until none is left.
fn kill_processes_in(name: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let out = run_bounded(
            Command::new("ip").args(["netns", "pids", name]),
            Duration::from_secs(30),
        );
        let pids: Vec<i32> = String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect();
        if pids.is_empty() || Instant::now() > deadline {
            return;
        }
        for pid in pids {
            crate::process::signal(pid, libc::SIGKILL);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

impl TestNetwork {
    /// Makes a collector and `hosts` hosts (at most 200), each host joined
    /// to the collector's bridge.
    pub fn new(hosts: usize) -> TestNetwork {
        assert!(hosts <= 200);
        remove_leftovers();
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let base = format!("{PREFIX}-{}-{n}", std::process::id());
        let network = TestNetwork {
            collector: format!("{base}-c"),
            hosts: (1..=hosts).map(|i| format!("{base}-h{i}")).collect(),
        };
        // Each namespace is owned by `network` from its creation, so a
        // failure half-way still tears down what was made.
        ip(&["netns", "add", &network.collector]);
        let c = network.collector.as_str();
        ip(&["-n", c, "link", "set", "lo", "up"]);
        ip(&["-n", c, "link", "add", "br0", "type", "bridge"]);
        ip(&[
            "-n",
            c,
            "addr",
            "add",
            &format!("{COLLECTOR_ADDR}/24"),
            "dev",
            "br0",
        ]);
        ip(&["-n", c, "link", "set", "br0", "up"]);
        for (i, host) in network.hosts.iter().enumerate() {
            ip(&["netns", "add", host]);
            let port = format!("veth{}", i + 1);
            ip(&[
                "-n", c, "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns",
                host,
            ]);
            ip(&["-n", c, "link", "set", &port, "master", "br0", "up"]);
            ip(&["-n", host, "link", "set", "lo", "up"]);
            ip(&[
                "-n",
                host,
                "addr",
                "add",
                &format!("{}/24", network.host_addr(i)),
                "dev",
                "eth0",
            ]);
            ip(&["-n", host, "link", "set", "eth0", "up"]);
        }
        network
    }

    /// The collector's namespace.
    pub fn collector(&self) -> &str {
        &self.collector
    }

    /// Host `i`'s namespace (from 0).
    pub fn host(&self, i: usize) -> &str {
        &self.hosts[i]
    }

    /// Host `i`'s address.
    pub fn host_addr(&self, i: usize) -> String {
        format!("10.213.0.{}", i + 2)
    }

    /// `program` run in namespace `ns` (`ip netns exec`: the program itself
    /// is the process, its pid the child's), without the machine's proxy
    /// variables: the test network has no proxy, and one the environment
    /// names would be asked for the collector's address.
    pub fn command(&self, ns: &str, program: impl AsRef<std::ffi::OsStr>) -> Command {
        assert!(ns == self.collector || self.hosts.iter().any(|h| h == ns));
        let mut command = Command::new("ip");
        command.args(["netns", "exec", ns]).arg(program);
        for proxy in [
            "http_proxy",
            "https_proxy",
            "all_proxy",
            "HTTP_PROXY",
            "HTTPS_PROXY",
            "ALL_PROXY",
        ] {
            command.env_remove(proxy);
        }
        command
    }

    /// Takes the collector's side of the network down (its bridge): the
    /// hosts' packets go nowhere, as when its link is cut.
    pub fn set_collector_link(&self, up: bool) {
        ip(&[
            "-n",
            &self.collector,
            "link",
            "set",
            "br0",
            if up { "up" } else { "down" },
        ]);
    }

    /// Bytes the collector's side received from and sent to host `i`
    /// (its veth's counters: what went over the wire, headers and all).
    pub fn host_link_bytes(&self, i: usize) -> (u64, u64) {
        let port = format!("veth{}", i + 1);
        let read = |what: &str| -> u64 {
            let out = ip(&[
                "netns",
                "exec",
                &self.collector,
                "cat",
                &format!("/sys/class/net/{port}/statistics/{what}"),
            ]);
            out.trim().parse().expect("a byte counter")
        };
        (read("rx_bytes"), read("tx_bytes"))
    }

    /// Waits (bounded) until something listens on TCP `port` in namespace
    /// `ns`. (A server that exits at once fails the wait: the caller's log
    /// says why.)
    pub fn wait_for_listener(&self, ns: &str, port: u16, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let out = run_bounded(
                self.command(ns, "ss")
                    .args(["-Hltn", &format!("sport = :{port}")]),
                Duration::from_secs(30),
            );
            if !String::from_utf8_lossy(&out.stdout).trim().is_empty() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "nothing listens on port {port} in {ns} after {timeout:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for TestNetwork {
    fn drop(&mut self) {
        for ns in std::iter::once(&self.collector).chain(&self.hosts) {
            kill_processes_in(ns);
            let _ = run_bounded(
                Command::new("ip").args(["netns", "del", ns]),
                Duration::from_secs(30),
            );
        }
    }
}
