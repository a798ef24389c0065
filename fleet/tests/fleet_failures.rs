//! What goes wrong on the way to the collector, and that each says so:
//! a full spool (the oldest cores dropped first, reports last, every drop
//! recorded), a destination that refuses (HTTP 4xx and 5xx), a certificate
//! that does not verify (the server's, and a client's the collector's TLS
//! front refuses). Nothing is dropped silently: what was refused is still
//! queued, and is delivered once the destination takes it.

mod support;

use lttng_coredump_fleet::{export, fields, Spool};
use support::*;
use testsupport::collector::{Certificates, JournalRemote, TlsFront, WebhookReceiver};
use testsupport::netns::TestNetwork;
use testsupport::{TempDir, TestUser};

/// A file of `size` bytes zstd cannot shrink.
fn random_core(dir: &std::path::Path, name: &str, size: usize) -> std::path::PathBuf {
    let mut state = 0x9e3779b97f4a7c15u64 ^ size as u64 ^ name.len() as u64;
    let bytes: Vec<u8> = (0..size)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

#[test]
fn a_full_spool_drops_the_oldest_cores_first_then_the_oldest_reports_and_records_every_drop() {
    let dir = TempDir::new("fleet-full");
    let user = TestUser::create("lcdfleet4", false);
    let network = TestNetwork::new(1);
    let host = Host::new(
        &network,
        0,
        "host1",
        dir.path(),
        &user,
        "journal_remote = \"http://10.213.0.1:19531\"\nmax_spool_size = 200000\ncore_in_entry_max = 1000000",
    );
    let core = random_core(dir.path(), "core", 60_000);
    let mut ids = Vec::new();
    for i in 0..8 {
        ids.push(
            host.enqueue(i, "/usr/bin/crasher", "sig-a", Some(&core))
                .to_string(),
        );
    }
    let spool = host.spool();
    let drops = spool.drops();
    // Only cores so far, the oldest first; the newest still have theirs.
    assert!(drops.iter().all(|d| d.what == "core"), "{drops:?}");
    let dropped: Vec<&str> = drops.iter().map(|d| d.crash_id.as_str()).collect();
    assert_eq!(
        dropped,
        ids[..dropped.len()]
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
    );
    assert!(
        (4..8).contains(&dropped.len()),
        "{} cores dropped",
        dropped.len()
    );
    let (queued_bytes, _) = spool.bytes().unwrap();
    assert!(queued_bytes <= 200_000, "{queued_bytes} bytes queued");
    assert_eq!(spool.queued().unwrap().len(), 8);

    // The entry of a crash whose core was dropped says where the core is,
    // and why it is not in the entry.
    let mut item = spool.load(&spool.queued().unwrap()[0]).unwrap();
    let bytes = lttng_coredump_fleet::entry::journal_entry(&mut item, 1_000_000).unwrap();
    let entry = export::Reader::new(bytes.as_slice(), Default::default())
        .next_entry()
        .unwrap()
        .unwrap();
    assert_eq!(entry.text(fields::CORE_STORAGE).as_deref(), Some("host"));
    assert!(entry
        .text(fields::CORE_NOTE)
        .unwrap()
        .contains("over its bound"));
    assert_eq!(
        entry.text(fields::CORE_LOCATION),
        Some(format!("host1:{}", core.display()))
    );
    assert!(entry.get(fields::COREDUMP).is_none());
    let mut newest = spool.load(spool.queued().unwrap().last().unwrap()).unwrap();
    let bytes = lttng_coredump_fleet::entry::journal_entry(&mut newest, 1_000_000).unwrap();
    let entry = export::Reader::new(bytes.as_slice(), Default::default())
        .next_entry()
        .unwrap()
        .unwrap();
    assert_eq!(
        entry.get(fields::COREDUMP),
        Some(std::fs::read(&core).unwrap().as_slice())
    );

    // Past the cores, the oldest reports (whole crashes) go, each recorded.
    let padding = vec![(String::from("COREDUMP_PROC_MAPS"), vec![b'm'; 3000])];
    for i in 8..100 {
        ids.push(
            host.enqueue_with(i, "/usr/bin/crasher", "sig-a", None, padding.clone())
                .to_string(),
        );
    }
    let drops = spool.drops();
    let first_report = drops
        .iter()
        .position(|d| d.what == "report")
        .expect("reports were dropped");
    assert!(
        drops[first_report..].iter().all(|d| d.what == "report"),
        "a core dropped after a report: {drops:?}"
    );
    assert_eq!(
        drops.iter().filter(|d| d.what == "core").count(),
        8,
        "every core went before any report"
    );
    // Nothing silently gone: each crash is queued or recorded as dropped.
    let queued: Vec<String> = spool
        .queued()
        .unwrap()
        .iter()
        .map(|i| lttng_coredump_fleet::spool::crash_id_of(i))
        .collect();
    for id in &ids {
        let dropped = drops
            .iter()
            .any(|d| d.what == "report" && &d.crash_id == id);
        assert!(
            queued.contains(id) != dropped,
            "crash {id}: queued {}, dropped {dropped}",
            queued.contains(id)
        );
    }
    let (queued_bytes, _) = spool.bytes().unwrap();
    assert!(queued_bytes <= 200_000, "{queued_bytes} bytes queued");
    let status = host.status();
    assert_eq!(
        status["drops_total"].as_u64().unwrap() as usize,
        drops.len()
    );
    assert_eq!(
        status["recent_drops"].as_array().unwrap().last().unwrap()["what"],
        "report"
    );
    let text = testsupport::process::run(
        std::path::Path::new(BIN),
        &["status", "--config", host.config.to_str().unwrap()],
    );
    assert!(
        String::from_utf8_lossy(&text.stdout)
            .contains(&format!("dropped from the full spool: {}", drops.len())),
        "{text:?}"
    );
}

fn destination<'a>(status: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    status["destinations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == name)
        .unwrap()
}

#[test]
fn refusals_and_certificates_that_do_not_verify_show_in_status_and_lose_nothing() {
    let dir = TempDir::new("fleet-refused");
    let user = TestUser::create("lcdfleet5", false);
    let network = TestNetwork::new(1);
    let certs = Certificates::new(&["host1"]);
    let http = JournalRemote::http(&network, dir.path(), 19531);
    let https = JournalRemote::https(&network, dir.path(), 19532, &certs);
    let front = TlsFront::start(&network, dir.path(), 19533, 19531, &certs);
    let webhook = WebhookReceiver::start(&network, dir.path(), 9000);
    let host = Host::new(&network, 0, "host1", dir.path(), &user, "");
    let ids: Vec<String> = (0..3)
        .map(|i| {
            host.enqueue(i, "/usr/bin/crasher", "sig-r", None)
                .to_string()
        })
        .collect();
    let tls = |ca: &str, client: Option<&str>| {
        let mut text = format!("ca = \"{}\"\n", certs.cert(ca).display());
        if let Some(client) = client {
            text += &format!(
                "client_cert = \"{}\"\nclient_key = \"{}\"\n",
                certs.cert(client).display(),
                certs.key(client).display()
            );
        }
        text
    };

    // journal-remote answers 404 to a wrong path; the webhook's command fails (500).
    host.set_submit(&format!(
        "journal_remote = \"{}/wrong\"\nwebhook = \"{}\"\ntimeout = 10",
        http.url, webhook.broken_url
    ));
    let out = host.submit(&network, &user);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("HTTP 404") && said.contains("HTTP 500"),
        "{said}"
    );
    let status = host.status();
    assert_eq!(
        destination(&status, "journal-remote")["last_error"]["http_status"],
        404
    );
    assert_eq!(
        destination(&status, "journal-remote")["last_error"]["kind"],
        "refused"
    );
    assert_eq!(
        destination(&status, "webhook")["last_error"]["http_status"],
        500
    );
    assert_eq!(destination(&status, "journal-remote")["pending"], 3);
    assert_eq!(destination(&status, "webhook")["pending"], 3);
    assert_eq!(status["queued"], 3);

    // The collector's certificate, checked against a CA that did not sign it.
    host.set_submit(&format!(
        "journal_remote = \"{}\"\n{}timeout = 10",
        https.url,
        tls("rogue-ca", None)
    ));
    let out = host.submit(&network, &user);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let status = host.status();
    let error = &destination(&status, "journal-remote")["last_error"];
    assert_eq!(error["kind"], "tls", "{error}");
    assert!(
        error["message"].as_str().unwrap().contains("certificate"),
        "{error}"
    );
    assert_eq!(status["queued"], 3);

    // A client certificate of a CA the collector does not trust: its TLS
    // front refuses the handshake.
    host.set_submit(&format!(
        "journal_remote = \"{}\"\n{}timeout = 10",
        front.url,
        tls("ca", Some("rogue-client"))
    ));
    let out = host.submit(&network, &user);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let status = host.status();
    let state = destination(&status, "journal-remote");
    assert_eq!(state["last_error"]["kind"], "tls", "{state}");
    assert_eq!(status["queued"], 3);
    assert_eq!(status["drops_total"], 0);
    assert!(collected(&http.journal_dir).is_empty());
    assert!(webhook.deliveries().is_empty());
    let text = testsupport::process::run(
        std::path::Path::new(BIN),
        &["status", "--config", host.config.to_str().unwrap()],
    );
    assert!(
        String::from_utf8_lossy(&text.stdout).contains("FAILING"),
        "{text:?}"
    );

    // Set right, every queued crash is delivered: over HTTPS (the CA that
    // signed the collector) and to the webhook.
    host.set_submit(&format!(
        "journal_remote = \"{}\"\nwebhook = \"{}\"\n{}timeout = 10",
        https.url,
        webhook.url,
        tls("ca", None)
    ));
    let out = host.submit(&network, &user);
    assert!(out.status.success(), "{out:?}");
    assert!(host.spool().queued().unwrap().is_empty());
    let mut got = crash_ids(&collected(&https.journal_dir));
    let mut want = ids.clone();
    got.sort();
    want.sort();
    assert_eq!(got, want);
    let mut delivered = webhook.deliveries();
    delivered.sort();
    assert_eq!(delivered, want);
    let payload = webhook.payload(&ids[0]).unwrap();
    assert_eq!(payload["crash_id"], ids[0].as_str());
    assert_eq!(payload["signature"], "sig-r");
    assert_eq!(payload["report"]["signature"], "sig-r");
    assert_eq!(payload["host"], "host1");
    // The host's machine, with its name and the ID, the receiver's key.
    assert_eq!(
        payload["machine_id"].as_str(),
        lttng_coredump_fleet::HostIdentity::now()
            .machine_id
            .as_deref()
    );
    // A binary field, as journalctl's JSON writes it: its bytes.
    assert_eq!(payload["fields"]["COREDUMP_ENVIRON"][0], b'H');
    let status = host.status();
    assert_eq!(
        destination(&status, "journal-remote")["consecutive_failures"],
        0
    );
    assert_eq!(destination(&status, "webhook")["delivered"], 3);
    let _ = Spool::open(&host.spool_dir).unwrap();
}

#[test]
fn an_entry_the_collector_refuses_holds_back_none_of_the_others() {
    let dir = TempDir::new("fleet-poison");
    let user = TestUser::create("lcdfleet10", false);
    let network = TestNetwork::new(1);
    let remote = JournalRemote::http(&network, dir.path(), 19531);
    let host = Host::new(
        &network,
        0,
        "host1",
        dir.path(),
        &user,
        &format!("journal_remote = \"{}\"\ntimeout = 20", remote.url),
    );
    // journal-remote drops the connection of an upload holding an entry
    // of more fields than it takes (ENTRY_FIELD_COUNT_MAX, 1024).
    let too_many: Vec<(String, Vec<u8>)> = (0..1100)
        .map(|i| (format!("FIELD_{i}"), b"x".to_vec()))
        .collect();
    let mut good = Vec::new();
    for i in 0..3 {
        good.push(
            host.enqueue(i, "/usr/bin/crasher", "sig-good", None)
                .to_string(),
        );
    }
    let poison = host
        .enqueue_with(99, "/usr/bin/crasher", "sig-poison", None, too_many)
        .to_string();
    for i in 3..6 {
        good.push(
            host.enqueue(i, "/usr/bin/crasher", "sig-good", None)
                .to_string(),
        );
    }
    let out = host.submit(&network, &user);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let queued = host.spool().queued().unwrap();
    assert_eq!(queued.len(), 1, "{queued:?}");
    assert!(queued[0].ends_with(&poison));
    let mut got = crash_ids(&collected(&remote.journal_dir));
    got.sort();
    good.sort();
    assert_eq!(got, good, "every other crash delivered, each counted once");
    let status = host.status();
    let state = destination(&status, "journal-remote");
    assert_eq!(state["pending"], 1);
    assert!(state["last_error"]["message"].as_str().is_some(), "{state}");
    assert_eq!(status["drops_total"], 0, "the refused crash stays queued");
}
