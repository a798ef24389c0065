//! The collector's servers for the fleet tests, the real programs users run,
//! started in a [`TestNetwork`]'s collector namespace and stopped when
//! dropped: systemd-journal-remote (HTTP, or HTTPS with a certificate of a
//! CA made here with openssl), stunnel in front of it where client
//! certificates must be checked, lttng-relayd, and a webhook receiver
//! (Debian's `webhook` server, whose hook keeps each delivery).
//!
//! Debian 12's systemd-journal-remote is built without systemd's own
//! GnuTLS code: it serves HTTPS but refuses `--trust` and checks no client
//! certificate ("Certificate checking disabled"). A collector that must
//! know its hosts puts a TLS front that does (stunnel, nginx) before
//! journal-remote's HTTP port; [`TlsFront`] is that.

use crate::netns::{TestNetwork, COLLECTOR_ADDR};
use crate::process::run_bounded;
use crate::temp::TempDir;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// How long a server may take to listen once started (a loaded machine).
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// Certificates made for one test: a CA, the collector's server
/// certificate (for its test address), a client certificate per host, and
/// a second CA nobody trusts with a server and a client certificate of its
/// own.
pub struct Certificates {
    dir: TempDir,
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = run_bounded(
        Command::new("openssl").args(args).current_dir(dir),
        Duration::from_secs(60),
    );
    assert!(
        out.status.success(),
        "openssl {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Certificates {
    /// Makes them (EC P-256 keys, valid for two days); `hosts` are the
    /// client certificates' common names (journal-remote files each host's
    /// entries under it).
    pub fn new(hosts: &[&str]) -> Certificates {
        let certs = Certificates {
            dir: TempDir::new("fleet-certs"),
        };
        let dir = certs.dir.path();
        for ca in ["ca", "rogue-ca"] {
            openssl(
                dir,
                &[
                    "req",
                    "-x509",
                    "-newkey",
                    "ec",
                    "-pkeyopt",
                    "ec_paramgen_curve:prime256v1",
                    "-nodes",
                    "-keyout",
                    &format!("{ca}.key"),
                    "-out",
                    &format!("{ca}.pem"),
                    "-days",
                    "2",
                    "-subj",
                    &format!("/CN=lttng-coredump test {ca}"),
                ],
            );
        }
        let server_ext = format!(
            "subjectAltName=IP:{COLLECTOR_ADDR},DNS:collector\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n"
        );
        let client_ext = "extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n";
        certs.issue("ca", "server", "collector", &server_ext);
        certs.issue("rogue-ca", "rogue-server", "collector", &server_ext);
        certs.issue("rogue-ca", "rogue-client", "intruder", client_ext);
        for host in hosts {
            certs.issue("ca", host, host, client_ext);
        }
        // journal-remote (root) and the submitters (test users) read them.
        for entry in fs::read_dir(dir).unwrap().flatten() {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(entry.path(), fs::Permissions::from_mode(0o644)).unwrap();
        }
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).unwrap();
        certs
    }

    fn issue(&self, ca: &str, name: &str, common_name: &str, extensions: &str) {
        let dir = self.dir.path();
        fs::write(dir.join(format!("{name}.ext")), extensions).unwrap();
        openssl(
            dir,
            &[
                "req",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-keyout",
                &format!("{name}.key"),
                "-out",
                &format!("{name}.csr"),
                "-subj",
                &format!("/CN={common_name}"),
            ],
        );
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &format!("{name}.csr"),
                "-CA",
                &format!("{ca}.pem"),
                "-CAkey",
                &format!("{ca}.key"),
                "-CAcreateserial",
                "-out",
                &format!("{name}.pem"),
                "-days",
                "2",
                "-extfile",
                &format!("{name}.ext"),
            ],
        );
    }

    /// The PEM file `NAME.pem` (`ca`, `server`, a host's, `rogue-ca`,
    /// `rogue-server`, `rogue-client`).
    pub fn cert(&self, name: &str) -> PathBuf {
        self.dir.path().join(format!("{name}.pem"))
    }

    /// The private key `NAME.key`.
    pub fn key(&self, name: &str) -> PathBuf {
        self.dir.path().join(format!("{name}.key"))
    }
}

/// A server process the test started in the collector's namespace, killed
/// when dropped.
pub struct Server {
    child: Child,
    pub log: PathBuf,
}

impl Server {
    fn start(mut command: Command, log: PathBuf) -> Server {
        let out = fs::File::create(&log).unwrap();
        let child = command
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"));
        Server { child, log }
    }

    /// Waits (bounded) until it listens on `port`; fails with its log if it
    /// exits first.
    pub fn wait_listening(&mut self, network: &TestNetwork, port: u16) {
        let deadline = std::time::Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().ok().flatten() {
                panic!(
                    "the server exited ({status}) before listening on {port}: {}",
                    self.log_text()
                );
            }
            let out = run_bounded(
                network
                    .command(network.collector(), "ss")
                    .args(["-Hltn", &format!("sport = :{port}")]),
                Duration::from_secs(30),
            );
            if !String::from_utf8_lossy(&out.stdout).trim().is_empty() {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "nothing listens on {port} after {START_TIMEOUT:?}: {}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// What the server logged.
    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Stops it (SIGTERM, then SIGKILL after 10 s) and waits for it.
    pub fn stop(&mut self) {
        if self.child.try_wait().ok().flatten().is_some() {
            return;
        }
        crate::process::signal(self.child.id() as i32, libc::SIGTERM);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::time::Instant::now() < deadline {
            if self.child.try_wait().ok().flatten().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// systemd-journal-remote on the collector, writing one journal file per
/// host (`--split-mode=host`) into its own directory.
pub struct JournalRemote {
    pub server: Server,
    pub url: String,
    pub journal_dir: PathBuf,
}

/// journal-remote's program (Debian's systemd-journal-remote package).
pub const JOURNAL_REMOTE: &str = "/lib/systemd/systemd-journal-remote";

impl JournalRemote {
    /// Listening for HTTP on `port`.
    pub fn http(network: &TestNetwork, dir: &Path, port: u16) -> JournalRemote {
        JournalRemote::start(network, dir, port, None)
    }

    /// Listening for HTTPS on `port`, with the collector's certificate
    /// (signed by the test CA).
    pub fn https(
        network: &TestNetwork,
        dir: &Path,
        port: u16,
        certs: &Certificates,
    ) -> JournalRemote {
        JournalRemote::start(network, dir, port, Some(certs))
    }

    fn start(
        network: &TestNetwork,
        dir: &Path,
        port: u16,
        certs: Option<&Certificates>,
    ) -> JournalRemote {
        assert!(
            Path::new(JOURNAL_REMOTE).exists(),
            "{JOURNAL_REMOTE} is missing (apt-get install -y systemd-journal-remote)"
        );
        let journal_dir = dir.join(format!("journal-remote-{port}"));
        fs::create_dir_all(&journal_dir).unwrap();
        let mut command = network.command(network.collector(), JOURNAL_REMOTE);
        // Every setting on the command line, so that the machine's
        // journal-remote.conf changes nothing.
        command
            .arg(format!("--output={}/", journal_dir.display()))
            .args(["--split-mode=host", "--seal=no", "--compress=yes"]);
        let scheme = match certs {
            None => {
                command.arg(format!("--listen-http=0.0.0.0:{port}"));
                "http"
            }
            Some(certs) => {
                command
                    .arg(format!("--listen-https=0.0.0.0:{port}"))
                    .arg(format!("--key={}", certs.key("server").display()))
                    .arg(format!("--cert={}", certs.cert("server").display()));
                "https"
            }
        };
        let mut server = Server::start(command, dir.join(format!("journal-remote-{port}.log")));
        server.wait_listening(network, port);
        JournalRemote {
            server,
            url: format!("{scheme}://{COLLECTOR_ADDR}:{port}"),
            journal_dir,
        }
    }
}

/// stunnel on the collector: TLS on `port`, with the collector's
/// certificate, requiring a client certificate signed by the test CA,
/// forwarding to `127.0.0.1:target` in the collector's namespace.
pub struct TlsFront {
    pub server: Server,
    pub url: String,
}

impl TlsFront {
    pub fn start(
        network: &TestNetwork,
        dir: &Path,
        port: u16,
        target: u16,
        certs: &Certificates,
    ) -> TlsFront {
        let config = dir.join(format!("stunnel-{port}.conf"));
        fs::write(
            &config,
            format!(
                "foreground = yes\npid =\n[front]\naccept = {COLLECTOR_ADDR}:{port}\nconnect = 127.0.0.1:{target}\ncert = {}\nkey = {}\nCAfile = {}\nverifyChain = yes\nrequireCert = yes\n",
                certs.cert("server").display(),
                certs.key("server").display(),
                certs.cert("ca").display()
            ),
        )
        .unwrap();
        let mut command = network.command(network.collector(), "stunnel");
        command.arg(&config);
        let mut server = Server::start(command, dir.join(format!("stunnel-{port}.log")));
        server.wait_listening(network, port);
        TlsFront {
            server,
            url: format!("https://{COLLECTOR_ADDR}:{port}"),
        }
    }
}

/// lttng-relayd on the collector.
pub struct Relayd {
    pub server: Server,
    /// Its output directory.
    pub output: PathBuf,
    /// The `net://` URL of its control and data ports.
    pub url: String,
}

impl Relayd {
    pub fn start(network: &TestNetwork, dir: &Path, control_port: u16) -> Relayd {
        let output = dir.join("relayd");
        fs::create_dir_all(&output).unwrap();
        let data_port = control_port + 1;
        let live_port = control_port + 2;
        let mut command = network.command(network.collector(), "lttng-relayd");
        command
            .arg(format!("--output={}", output.display()))
            .arg(format!("--control-port=tcp://0.0.0.0:{control_port}"))
            .arg(format!("--data-port=tcp://0.0.0.0:{data_port}"))
            .arg(format!("--live-port=tcp://0.0.0.0:{live_port}"));
        let mut server = Server::start(command, dir.join("relayd.log"));
        server.wait_listening(network, control_port);
        server.wait_listening(network, data_port);
        Relayd {
            server,
            output,
            url: format!("net://{COLLECTOR_ADDR}:{control_port}:{data_port}"),
        }
    }
}

/// A webhook receiver: Debian's `webhook` server with two hooks, `crash`,
/// which keeps each delivery (`deliveries/CRASHID.json`, and a line per
/// delivery in `deliveries.log`) and answers only once it is kept, and
/// `broken`, whose command fails (HTTP 500).
pub struct WebhookReceiver {
    pub server: Server,
    pub dir: PathBuf,
    /// The URL of the `crash` hook.
    pub url: String,
    /// The URL of the `broken` hook.
    pub broken_url: String,
}

impl WebhookReceiver {
    pub fn start(network: &TestNetwork, dir: &Path, port: u16) -> WebhookReceiver {
        let dir = dir.join("webhook");
        let deliveries = dir.join("deliveries");
        fs::create_dir_all(&deliveries).unwrap();
        let keep = format!(
            "set -e; printf '%s\\n' \"$1\" >> {log}; cp \"$PAYLOAD\" {d}/\"$1\".json.tmp; mv {d}/\"$1\".json.tmp {d}/\"$1\".json",
            log = dir.join("deliveries.log").display(),
            d = deliveries.display()
        );
        let hooks = serde_json::json!([
            {
                "id": "crash",
                "execute-command": "/bin/sh",
                "include-command-output-in-response": true,
                "include-command-output-in-response-on-error": true,
                "pass-arguments-to-command": [
                    {"source": "string", "name": "-c"},
                    {"source": "string", "name": keep},
                    {"source": "string", "name": "keep"},
                    {"source": "payload", "name": "crash_id"}
                ],
                "pass-file-to-command": [
                    {"source": "entire-payload", "envname": "PAYLOAD"}
                ]
            },
            {
                "id": "broken",
                "execute-command": "/bin/false",
                "include-command-output-in-response": true,
                "include-command-output-in-response-on-error": true
            }
        ]);
        let hooks_file = dir.join("hooks.json");
        fs::write(&hooks_file, serde_json::to_vec_pretty(&hooks).unwrap()).unwrap();
        assert!(
            Path::new("/usr/bin/webhook").exists(),
            "/usr/bin/webhook is missing (apt-get install -y webhook)"
        );
        let mut command = network.command(network.collector(), "/usr/bin/webhook");
        command.arg("-hooks").arg(&hooks_file).args([
            "-ip",
            COLLECTOR_ADDR,
            "-port",
            &port.to_string(),
            "-verbose",
        ]);
        let mut server = Server::start(command, dir.join("webhook.log"));
        server.wait_listening(network, port);
        WebhookReceiver {
            server,
            url: format!("http://{COLLECTOR_ADDR}:{port}/hooks/crash"),
            broken_url: format!("http://{COLLECTOR_ADDR}:{port}/hooks/broken"),
            dir,
        }
    }

    /// The crash IDs received, one per delivery (a crash sent twice is
    /// there twice).
    pub fn deliveries(&self) -> Vec<String> {
        fs::read_to_string(self.dir.join("deliveries.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// The JSON kept for crash `id`.
    pub fn payload(&self, id: &str) -> Option<serde_json::Value> {
        let bytes = fs::read(self.dir.join("deliveries").join(format!("{id}.json"))).ok()?;
        serde_json::from_slice(&bytes).ok()
    }
}
