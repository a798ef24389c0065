//! The `[submit]` section of the configuration:
//!
//! ```toml
//! [submit]
//! spool_dir = "/var/spool/lttng-coredump"   # the spool (default)
//! user = "lttng-coredump"                   # the submitter's user, owner of the spool
//! journal_remote = "https://collector:19532"
//! relayd = "net://collector"
//! webhook = "https://hooks.example.org/crash"
//! ca = "/etc/lttng-coredump/submit/ca.pem"
//! client_cert = "/etc/lttng-coredump/submit/host.pem"
//! client_key = "/etc/lttng-coredump/submit/host.key"
//! max_spool_size = "1G"                     # the spool's bound
//! core_in_entry_max = "16M"                 # cores up to this size travel inside the entry
//! keep_sent = 100
//! retry_initial = "1s"                      # the back-off: doubles from here...
//! retry_max = "5m"                          # ...up to here
//! poll = "30s"
//! timeout = "30s"                           # one request, connect to last byte
//! ```
//!
//! Read key by key as the handler reads its file: a bad value costs that
//! key (it keeps its default) and is reported. Sizes and durations are
//! read by the caller's own parsers ([`Units`]), so that they mean what
//! they mean everywhere else in the file.

use crate::destination::{Destination, JournalRemote, Webhook};
use crate::http::TlsFiles;
use crate::spool::SpoolLimits;
use crate::submit::Retry;
use std::path::PathBuf;
use std::time::Duration;
use toml::{Table, Value};

pub const DEFAULT_SPOOL_DIR: &str = "/var/spool/lttng-coredump";
/// The submitter's user: a system user with no login that owns the spool's
/// states (the package creates it). Never root.
pub const DEFAULT_USER: &str = "lttng-coredump";

/// Every key of `[submit]`.
pub const KEYS: [&str; 15] = [
    "spool_dir",
    "user",
    "journal_remote",
    "relayd",
    "webhook",
    "ca",
    "client_cert",
    "client_key",
    "max_spool_size",
    "core_in_entry_max",
    "keep_sent",
    "retry_initial",
    "retry_max",
    "poll",
    "timeout",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubmitConfig {
    pub spool_dir: PathBuf,
    pub user: String,
    pub journal_remote: Option<String>,
    pub relayd: Option<String>,
    pub webhook: Option<String>,
    pub tls: TlsFiles,
    pub limits: SpoolLimits,
    pub retry: Retry,
    pub timeout: Duration,
}

impl Default for SubmitConfig {
    fn default() -> Self {
        SubmitConfig {
            spool_dir: PathBuf::from(DEFAULT_SPOOL_DIR),
            user: DEFAULT_USER.into(),
            journal_remote: None,
            relayd: None,
            webhook: None,
            tls: TlsFiles::default(),
            limits: SpoolLimits::default(),
            retry: Retry::default(),
            timeout: Duration::from_secs(30),
        }
    }
}

/// The parsers of sizes and durations given as strings (`"16M"`, `"5m"`).
pub struct Units {
    pub size: fn(&str) -> Result<u64, String>,
    pub duration: fn(&str) -> Result<Duration, String>,
}

impl Units {
    /// Plain numbers only: bytes, and seconds (`"1.5"`).
    pub fn plain() -> Units {
        Units {
            size: |s| {
                s.trim()
                    .parse()
                    .map_err(|_| format!("invalid size {s:?} (bytes)"))
            },
            duration: |s| {
                s.trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|v| v.is_finite() && *v >= 0.0 && *v < 1e12)
                    .map(Duration::from_secs_f64)
                    .ok_or_else(|| format!("invalid duration {s:?} (seconds)"))
            },
        }
    }
}

impl SubmitConfig {
    /// Reads the `[submit]` table. Returns the configuration and, for each
    /// key it could not use, what was wrong (the key keeps its default).
    pub fn from_table(table: &Table, units: &Units) -> (SubmitConfig, Vec<String>) {
        let mut config = SubmitConfig::default();
        let mut problems = Vec::new();
        for (key, value) in table {
            let full = format!("submit.{key}");
            let mut problem =
                |what: String| problems.push(format!("{full}: {what}; using the default"));
            let text = || value.as_str().map(str::to_owned);
            match key.as_str() {
                "spool_dir" => match text().filter(|p| p.starts_with('/')) {
                    Some(p) => config.spool_dir = PathBuf::from(p),
                    None => problem("expected an absolute path".into()),
                },
                "user" => match text().filter(|u| !u.is_empty() && u != "root") {
                    Some(u) => config.user = u,
                    None => problem("expected a user name other than root".into()),
                },
                "journal_remote" | "webhook" => {
                    match text().filter(|u| u.starts_with("http://") || u.starts_with("https://")) {
                        Some(u) if key == "webhook" => config.webhook = Some(u),
                        Some(u) => config.journal_remote = Some(u),
                        None => problem("expected an http:// or https:// URL".into()),
                    }
                }
                "relayd" => match text().filter(|u| {
                    u.starts_with("net://") || u.starts_with("net6://") || u.starts_with("tcp://")
                }) {
                    Some(u) => config.relayd = Some(u),
                    None => problem("expected a net://HOST[:PORT[:PORT]] URL".into()),
                },
                "ca" | "client_cert" | "client_key" => {
                    match text().filter(|p| p.starts_with('/')) {
                        Some(p) => {
                            let path = Some(PathBuf::from(p));
                            match key.as_str() {
                                "ca" => config.tls.ca = path,
                                "client_cert" => config.tls.client_cert = path,
                                _ => config.tls.client_key = path,
                            }
                        }
                        None => problem("expected an absolute path".into()),
                    }
                }
                "max_spool_size" | "core_in_entry_max" => match size(value, units) {
                    Ok(bytes) if key == "max_spool_size" => config.limits.max_bytes = bytes,
                    Ok(bytes) => config.limits.core_in_entry_max = bytes,
                    Err(e) => problem(e),
                },
                "keep_sent" => match value.as_integer().filter(|n| (0..=1_000_000).contains(n)) {
                    Some(n) => config.limits.keep_sent = n as usize,
                    None => problem("expected a number from 0 to 1000000".into()),
                },
                "retry_initial" | "retry_max" | "poll" | "timeout" => {
                    match duration(value, units) {
                        Ok(d) if d.is_zero() => problem("must not be zero".into()),
                        Ok(d) => match key.as_str() {
                            "retry_initial" => config.retry.initial = d,
                            "retry_max" => config.retry.max = d,
                            "poll" => config.retry.poll = d,
                            _ => config.timeout = d,
                        },
                        Err(e) => problem(e),
                    }
                }
                _ => problem(format!("unknown key (known: {})", KEYS.join(", "))),
            }
        }
        if config.retry.max < config.retry.initial {
            problems.push("submit.retry_max is shorter than submit.retry_initial; using retry_initial for both".into());
            config.retry.max = config.retry.initial;
        }
        if config.tls.client_cert.is_some() != config.tls.client_key.is_some() {
            problems
                .push("submit.client_cert and submit.client_key go together; using neither".into());
            config.tls.client_cert = None;
            config.tls.client_key = None;
        }
        (config, problems)
    }

    /// The destinations of the spool's items, in the order they are tried.
    /// (`relayd` is not one: snapshots go to it when they are recorded.)
    pub fn destinations(&self) -> Vec<Box<dyn Destination + Send>> {
        let mut destinations: Vec<Box<dyn Destination + Send>> = Vec::new();
        if let Some(url) = &self.journal_remote {
            destinations.push(Box::new(JournalRemote::new(
                url,
                &self.tls,
                self.timeout,
                self.limits.core_in_entry_max,
            )));
        }
        if let Some(url) = &self.webhook {
            destinations.push(Box::new(Webhook::new(url, &self.tls, self.timeout)));
        }
        destinations
    }

    /// The names of the configured destinations.
    pub fn destination_names(&self) -> Vec<&'static str> {
        let mut names = Vec::new();
        if self.journal_remote.is_some() {
            names.push("journal-remote");
        }
        if self.webhook.is_some() {
            names.push("webhook");
        }
        names
    }
}

fn size(value: &Value, units: &Units) -> Result<u64, String> {
    match value {
        Value::Integer(n) if *n >= 0 => Ok(*n as u64),
        Value::String(s) => (units.size)(s),
        _ => Err(format!("expected a size, not {value}")),
    }
}

fn duration(value: &Value, units: &Units) -> Result<Duration, String> {
    match value {
        Value::Integer(n) if *n >= 0 => Ok(Duration::from_secs(*n as u64)),
        Value::Float(f) if f.is_finite() && *f >= 0.0 && *f < 1e12 => {
            Ok(Duration::from_secs_f64(*f))
        }
        Value::String(s) => (units.duration)(s),
        _ => Err(format!("expected a duration, not {value}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> (SubmitConfig, Vec<String>) {
        let table: Table = text.parse().unwrap();
        SubmitConfig::from_table(table["submit"].as_table().unwrap(), &Units::plain())
    }

    #[test]
    fn every_key_is_read() {
        let (config, problems) = parse(
            r#"
            [submit]
            spool_dir = "/srv/spool"
            user = "crashes"
            journal_remote = "https://collector:19532"
            relayd = "net://collector"
            webhook = "https://hooks/crash"
            ca = "/etc/ca.pem"
            client_cert = "/etc/host.pem"
            client_key = "/etc/host.key"
            max_spool_size = 1000000
            core_in_entry_max = "4096"
            keep_sent = 5
            retry_initial = 0.5
            retry_max = "60"
            poll = 10
            timeout = 7
            "#,
        );
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(config.spool_dir, PathBuf::from("/srv/spool"));
        assert_eq!(config.user, "crashes");
        assert_eq!(
            config.journal_remote.as_deref(),
            Some("https://collector:19532")
        );
        assert_eq!(config.relayd.as_deref(), Some("net://collector"));
        assert_eq!(config.webhook.as_deref(), Some("https://hooks/crash"));
        assert_eq!(config.tls.ca, Some(PathBuf::from("/etc/ca.pem")));
        assert_eq!(config.limits.max_bytes, 1_000_000);
        assert_eq!(config.limits.core_in_entry_max, 4096);
        assert_eq!(config.limits.keep_sent, 5);
        assert_eq!(config.retry.initial, Duration::from_millis(500));
        assert_eq!(config.retry.max, Duration::from_secs(60));
        assert_eq!(config.retry.poll, Duration::from_secs(10));
        assert_eq!(config.timeout, Duration::from_secs(7));
        assert_eq!(config.destination_names(), ["journal-remote", "webhook"]);
    }

    #[test]
    fn a_bad_key_costs_that_key_only() {
        let (config, problems) = parse(
            r#"
            [submit]
            user = "root"
            journal_remote = "ftp://x"
            webhook = "http://ok"
            client_cert = "/only/the/cert"
            retry_initial = 0
            colour = "blue"
            "#,
        );
        assert_eq!(problems.len(), 5, "{problems:?}");
        assert_eq!(config.user, DEFAULT_USER);
        assert_eq!(config.journal_remote, None);
        assert_eq!(config.webhook.as_deref(), Some("http://ok"));
        assert_eq!(config.tls.client_cert, None);
        assert_eq!(config.retry, Retry::default());
    }
}
