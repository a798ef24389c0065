//! What the fleet's system tests share: a host's spool and configuration,
//! crash entries with systemd-coredump's fields, the submitter run as the
//! spool's user inside a host's namespace, and reading the collector.

#![allow(dead_code)]

use lttng_coredump_fleet::collector::{self, CollectedCrash, ReadOptions};
use lttng_coredump_fleet::export::Field;
use lttng_coredump_fleet::{
    CoreSource, CrashId, HostIdentity, NewCrash, Spool, SpoolLimits, SpoolOwner,
};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;
use testsupport::netns::TestNetwork;
use testsupport::process::run_bounded;
use testsupport::TestUser;

pub const BIN: &str = env!("CARGO_BIN_EXE_lttng-coredump-fleet");

/// One crashing host: its namespace, its name, its spool and the
/// configuration its submitter reads.
pub struct Host {
    pub ns: String,
    pub name: String,
    pub dir: PathBuf,
    pub spool_dir: PathBuf,
    pub config: PathBuf,
    pub limits: SpoolLimits,
    owner: SpoolOwner,
}

impl Host {
    /// A host whose `[submit]` section is `submit` (the spool's path is
    /// added), its spool owned by `user`.
    pub fn new(
        network: &TestNetwork,
        i: usize,
        name: &str,
        dir: &Path,
        user: &TestUser,
        submit: &str,
    ) -> Host {
        let dir = dir.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let spool_dir = dir.join("spool");
        let config = dir.join("config.toml");
        let text = format!(
            "[submit]\nspool_dir = \"{}\"\n{submit}\n",
            spool_dir.display()
        );
        std::fs::write(&config, &text).unwrap();
        let (parsed, problems) = lttng_coredump_fleet::config::SubmitConfig::from_table(
            text.parse::<toml::Table>().unwrap()["submit"]
                .as_table()
                .unwrap(),
            &lttng_coredump_fleet::config::Units::plain(),
        );
        assert!(problems.is_empty(), "{problems:?}");
        let owner = SpoolOwner {
            uid: user.uid,
            gid: user.gid,
        };
        Spool::create(&spool_dir, owner).unwrap();
        Host {
            ns: network.host(i).to_owned(),
            name: name.to_owned(),
            dir,
            spool_dir,
            config,
            limits: parsed.limits,
            owner,
        }
    }

    /// Replaces the `[submit]` section (the spool's path stays).
    pub fn set_submit(&self, submit: &str) {
        let text = format!(
            "[submit]\nspool_dir = \"{}\"\n{submit}\n",
            self.spool_dir.display()
        );
        std::fs::write(&self.config, text).unwrap();
    }

    pub fn spool(&self) -> Spool {
        Spool::open(&self.spool_dir).unwrap()
    }

    /// Enqueues a crash of `exe` (pid `pid`) with `signature`, as the
    /// handler would (as root), with its core when given.
    pub fn enqueue(&self, pid: u32, exe: &str, signature: &str, core: Option<&Path>) -> CrashId {
        self.enqueue_with(pid, exe, signature, core, Vec::new())
    }

    pub fn enqueue_with(
        &self,
        pid: u32,
        exe: &str,
        signature: &str,
        core: Option<&Path>,
        extra: Vec<Field>,
    ) -> CrashId {
        let mut host = HostIdentity::now();
        host.hostname = self.name.clone();
        let core = core.map(|path| CoreSource {
            file: std::fs::File::open(path).unwrap(),
            zstd: false,
            size: std::fs::metadata(path).unwrap().len(),
            host_path: path.to_owned(),
        });
        let mut fields = coredump_fields(
            &self.name,
            pid,
            exe,
            signature,
            core.as_ref().map(|c| c.host_path.as_path()),
        );
        fields.extend(extra);
        let report = serde_json::json!({"pid": pid, "exe": exe, "signature": signature});
        self.spool()
            .enqueue(
                NewCrash {
                    crash_id: None,
                    fields,
                    report_json: Some(serde_json::to_vec(&report).unwrap()),
                    core,
                    host,
                },
                &self.limits,
            )
            .unwrap()
            .crash_id
    }

    /// Enqueues a crash of these fields under this ID (as the handler
    /// does when the ID was given at the crash).
    pub fn enqueue_fields(&self, crash_id: CrashId, fields: Vec<Field>) {
        let mut host = HostIdentity::now();
        host.hostname = self.name.clone();
        self.spool()
            .enqueue(
                NewCrash {
                    crash_id: Some(crash_id),
                    fields,
                    report_json: None,
                    core: None,
                    host,
                },
                &self.limits,
            )
            .unwrap();
    }

    /// The submitter (`lttng-coredump-fleet submit [ARGS]`) as `user`,
    /// in this host's namespace; the pid of the child is the submitter's
    /// own (`ip netns exec` and `setpriv` replace themselves with it).
    pub fn submitter(&self, network: &TestNetwork, user: &TestUser, args: &[&str]) -> Command {
        let mut command = network.command(&self.ns, "setpriv");
        command
            .arg(format!("--reuid={}", user.uid))
            .arg(format!("--regid={}", user.gid))
            .arg("--clear-groups")
            .arg("--")
            .arg(BIN)
            .arg("submit")
            .arg("--config")
            .arg(&self.config)
            .args(args)
            .stdin(Stdio::null());
        // (Without the machine's proxies: see TestNetwork::command.)
        command
    }

    /// Runs `submit` once to its end.
    pub fn submit(&self, network: &TestNetwork, user: &TestUser) -> Output {
        run_bounded(
            &mut self.submitter(network, user, &[]),
            Duration::from_secs(300),
        )
    }

    /// Starts `submit --follow`, its output to `log`.
    pub fn follow(&self, network: &TestNetwork, user: &TestUser, log: &Path) -> Child {
        let out = std::fs::File::create(log).unwrap();
        self.submitter(network, user, &["--follow"])
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap()
    }

    /// `status --json`.
    pub fn status(&self) -> serde_json::Value {
        let out = run_bounded(
            Command::new(BIN)
                .args(["status", "--json", "--config"])
                .arg(&self.config),
            Duration::from_secs(60),
        );
        assert!(out.status.success(), "{out:?}");
        serde_json::from_slice(&out.stdout).unwrap()
    }
}

/// systemd-coredump's fields for a crash (what its journal entry holds),
/// plus our signature.
pub fn coredump_fields(
    host: &str,
    pid: u32,
    exe: &str,
    signature: &str,
    core: Option<&Path>,
) -> Vec<Field> {
    let comm = Path::new(exe)
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let now = lttng_coredump_fleet::spool::now_us();
    let mut fields: Vec<(&str, String)> = vec![
        ("MESSAGE_ID", lttng_coredump_fleet::fields::COREDUMP_MESSAGE_ID.into()),
        ("PRIORITY", "2".into()),
        ("MESSAGE", format!("Process {pid} ({comm}) of user 1000 dumped core.\n\nStack trace of thread {pid}:\n#0  0x0000000000401136 crash (/usr/bin/{comm} + 0x1136)")),
        ("COREDUMP_PID", pid.to_string()),
        ("COREDUMP_UID", "1000".into()),
        ("COREDUMP_GID", "1000".into()),
        ("COREDUMP_SIGNAL", "11".into()),
        ("COREDUMP_SIGNAL_NAME", "SIGSEGV".into()),
        ("COREDUMP_TIMESTAMP", now.to_string()),
        ("COREDUMP_RLIMIT", "18446744073709551615".into()),
        ("COREDUMP_HOSTNAME", host.into()),
        ("COREDUMP_COMM", comm.clone()),
        ("COREDUMP_EXE", exe.into()),
        ("COREDUMP_CMDLINE", format!("{exe} --crash")),
        ("LTTNG_COREDUMP_SIGNATURE", signature.into()),
    ];
    if let Some(core) = core {
        fields.push(("COREDUMP_FILENAME", core.display().to_string()));
    }
    let mut fields: Vec<Field> = fields
        .into_iter()
        .map(|(n, v)| (n.to_string(), v.into_bytes()))
        .collect();
    // A binary field: the environment, NUL-separated, as the kernel gives it.
    fields.push(("COREDUMP_ENVIRON".into(), b"HOME=/root\0LANG=C\0".to_vec()));
    fields
}

/// The crashes the collector stored, each counted once.
pub fn collected(journal_dir: &Path) -> Vec<CollectedCrash> {
    collector::read_journal_dir(journal_dir, &ReadOptions::default()).unwrap()
}

/// The crash IDs of `crashes` (each ours: it carries one).
pub fn crash_ids(crashes: &[CollectedCrash]) -> Vec<String> {
    crashes
        .iter()
        .map(|c| {
            c.crash_id
                .clone()
                .expect("our entries carry their crash ID")
        })
        .collect()
}

/// `coredumpctl -D DIR ARGS`.
pub fn coredumpctl(journal_dir: &Path, args: &[&str]) -> Output {
    run_bounded(
        Command::new("coredumpctl")
            .arg("-D")
            .arg(journal_dir)
            .args(args),
        Duration::from_secs(120),
    )
}

/// Every value of `LTTNG_COREDUMP_CRASH_ID` in the journal directory, one
/// per entry (a crash stored twice is there twice).
pub fn raw_crash_ids(journal_dir: &Path) -> Vec<String> {
    let out = run_bounded(
        Command::new("journalctl")
            .arg("-D")
            .arg(journal_dir)
            .args([
                "-o",
                "cat",
                "--output-fields=LTTNG_COREDUMP_CRASH_ID",
                "--no-pager",
            ])
            .arg(format!(
                "MESSAGE_ID={}",
                lttng_coredump_fleet::fields::COREDUMP_MESSAGE_ID
            )),
        Duration::from_secs(120),
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

/// A file of `size` bytes that compress (a core-like mix: zeros and text).
pub fn fake_core(dir: &Path, name: &str, size: usize) -> PathBuf {
    let path = dir.join(name);
    let mut bytes = Vec::with_capacity(size);
    let mut i = 0u32;
    while bytes.len() < size {
        bytes.extend_from_slice(b"\x7fELF core of a test crash ");
        bytes.extend_from_slice(&i.to_le_bytes());
        bytes.extend(std::iter::repeat_n(0u8, 200));
        i += 1;
    }
    bytes.truncate(size);
    std::fs::write(&path, &bytes).unwrap();
    path
}

/// Every field of the first entry with this crash ID in the journal
/// directory, as journalctl exports it.
pub fn all_fields(journal_dir: &Path, crash_id: &str) -> Vec<Field> {
    let out = run_bounded(
        Command::new("journalctl")
            .arg("-D")
            .arg(journal_dir)
            .args(["-o", "export", "--no-pager"])
            .arg(format!(
                "{}={crash_id}",
                lttng_coredump_fleet::fields::CRASH_ID
            )),
        Duration::from_secs(120),
    );
    lttng_coredump_fleet::export::Reader::new(out.stdout.as_slice(), Default::default())
        .next_entry()
        .unwrap()
        .expect("an entry")
        .fields
}
