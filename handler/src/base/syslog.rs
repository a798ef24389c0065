//! The handler's log. The kernel starts it with no terminal, so messages go
//! to the system log: RFC 3164 datagrams on `/dev/log` (where syslog daemons
//! and journald listen), or the kernel log (`/dev/kmsg`) when nothing
//! listens there. Every message is also kept for the crash record.

use std::io::Write;
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

const TAG: &str = "lttng-coredump";
pub const DEFAULT_SOCKET: &str = "/dev/log";
/// syslog facility LOG_DAEMON.
const FACILITY_DAEMON: u8 = 3;

#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error = 3,
    Warning = 4,
    Notice = 5,
    #[default]
    Info = 6,
}

/// One message as the record keeps it.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Message {
    pub severity: Severity,
    pub text: String,
}

/// Sends messages to the system log and keeps them.
#[derive(Debug)]
pub struct Log {
    socket_path: PathBuf,
    kmsg_path: PathBuf,
    also_stderr: bool,
    /// The least severe message printed on stderr.
    stderr_from: Severity,
    messages: Vec<Message>,
}

impl Default for Log {
    fn default() -> Self {
        Log::new(DEFAULT_SOCKET.into(), "/dev/kmsg".into())
    }
}

impl Log {
    /// A log sending to `socket_path`, or to `kmsg_path` when no one
    /// listens on the socket.
    pub fn new(socket_path: PathBuf, kmsg_path: PathBuf) -> Log {
        Log {
            socket_path,
            kmsg_path,
            also_stderr: false,
            stderr_from: Severity::Info,
            messages: Vec::new(),
        }
    }

    /// Sends later messages to another syslog socket.
    pub fn set_socket_path(&mut self, socket_path: PathBuf) {
        self.socket_path = socket_path;
    }

    /// Also prints messages on stderr (for a person running a subcommand).
    pub fn with_stderr(mut self) -> Log {
        self.also_stderr = true;
        self
    }

    /// Also prints on stderr the messages of `severity` and worse.
    pub fn with_stderr_from(mut self, severity: Severity) -> Log {
        self.also_stderr = true;
        self.stderr_from = severity;
        self
    }

    pub fn error(&mut self, text: impl Into<String>) {
        self.log(Severity::Error, text.into());
    }

    pub fn warning(&mut self, text: impl Into<String>) {
        self.log(Severity::Warning, text.into());
    }

    pub fn notice(&mut self, text: impl Into<String>) {
        self.log(Severity::Notice, text.into());
    }

    pub fn info(&mut self, text: impl Into<String>) {
        self.log(Severity::Info, text.into());
    }

    /// Every message logged so far.
    pub fn messages(&self) -> &[Message] {
        &self.messages
    }

    /// The errors and warnings logged so far.
    pub fn problems(&self) -> Vec<String> {
        self.messages
            .iter()
            .filter(|m| m.severity <= Severity::Warning)
            .map(|m| m.text.clone())
            .collect()
    }

    fn log(&mut self, severity: Severity, text: String) {
        // Callers escape what they quote; this keeps any stray newline from
        // splitting one message into forged lines.
        let text: String = text
            .chars()
            .flat_map(|c| {
                let escaped: Vec<char> = if c.is_control() {
                    c.escape_default().collect()
                } else {
                    vec![c]
                };
                escaped
            })
            .collect();
        if self.also_stderr && severity <= self.stderr_from {
            eprintln!("{TAG}: {text}");
        }
        self.send(severity, &text);
        self.messages.push(Message { severity, text });
    }

    fn send(&self, severity: Severity, text: &str) {
        let priority = FACILITY_DAEMON * 8 + severity as u8;
        let pid = std::process::id();
        let datagram = format!(
            "<{priority}>{} {TAG}[{pid}]: {text}",
            rfc3164_timestamp(SystemTime::now())
        );
        if let Ok(socket) = UnixDatagram::unbound() {
            if socket
                .send_to(datagram.as_bytes(), &self.socket_path)
                .is_ok()
            {
                return;
            }
        }
        // /dev/kmsg takes one record per write, with its own timestamps
        // (appending changes nothing there, and keeps a file whole).
        if let Ok(mut kmsg) = std::fs::OpenOptions::new()
            .append(true)
            .open(&self.kmsg_path)
        {
            let _ = kmsg.write_all(format!("<{priority}>{TAG}[{pid}]: {text}\n").as_bytes());
        }
    }
}

/// `Mmm dd hh:mm:ss` in UTC (the handler has no time zone: its environment
/// is empty).
fn rfc3164_timestamp(now: SystemTime) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let seconds = now
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let (_, month, day) = civil_from_days(seconds.div_euclid(86_400));
    let in_day = seconds.rem_euclid(86_400);
    format!(
        "{} {:>2} {:02}:{:02}:{:02}",
        MONTHS[(month - 1) as usize],
        day,
        in_day / 3600,
        in_day % 3600 / 60,
        in_day % 60
    )
}

/// `YYYY-MM-DDThh:mm:ssZ` for an epoch time.
pub fn iso8601_utc(seconds: i64) -> String {
    let (year, month, day) = civil_from_days(seconds.div_euclid(86_400));
    let in_day = seconds.rem_euclid(86_400);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        in_day / 3600,
        in_day % 3600 / 60,
        in_day % 60
    )
}

/// Days since 1970-01-01 to (year, month, day), Howard Hinnant's algorithm.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn dates() {
        assert_eq!(iso8601_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso8601_utc(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(iso8601_utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(
            rfc3164_timestamp(UNIX_EPOCH + Duration::from_secs(1_700_000_000)),
            "Nov 14 22:13:20"
        );
        assert_eq!(
            rfc3164_timestamp(UNIX_EPOCH + Duration::from_secs(5 * 86_400)),
            "Jan  6 00:00:00"
        );
    }

    #[test]
    fn messages_reach_a_syslog_socket_as_rfc3164_datagrams() {
        let dir = std::env::temp_dir().join(format!("handler-syslog-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let socket_path = dir.join("log");
        let _ = std::fs::remove_file(&socket_path);
        let listener = UnixDatagram::bind(&socket_path).unwrap();
        listener
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();

        let mut log = Log::new(socket_path.clone(), dir.join("no-kmsg"));
        log.warning("core of \"x\nforged\" cut");
        let mut buffer = [0u8; 1024];
        let length = listener.recv(&mut buffer).unwrap();
        let datagram = std::str::from_utf8(&buffer[..length]).unwrap();
        let expected_tail = format!(
            " lttng-coredump[{}]: core of \"x\\nforged\" cut",
            std::process::id()
        );
        assert!(datagram.starts_with("<28>"), "{datagram}");
        assert!(datagram.ends_with(&expected_tail), "{datagram}");
        assert_eq!(log.problems(), ["core of \"x\\nforged\" cut"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn without_a_socket_messages_go_to_the_kernel_log_file() {
        let dir = std::env::temp_dir().join(format!("handler-kmsg-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let kmsg = dir.join("kmsg");
        std::fs::write(&kmsg, "").unwrap();
        let mut log = Log::new(dir.join("absent-socket"), kmsg.clone());
        log.info("saved");
        let written = std::fs::read_to_string(&kmsg).unwrap();
        assert_eq!(
            written,
            format!("<30>lttng-coredump[{}]: saved\n", std::process::id())
        );
        assert!(log.problems().is_empty());
        assert_eq!(log.messages().len(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
