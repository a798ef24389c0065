//! A syslog socket the handler can be pointed at (`syslog_socket`), to read
//! what it logged.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A syslog socket the handler can be pointed at (`syslog_socket`), to read
/// what it logged.
pub struct SyslogListener {
    pub path: PathBuf,
    socket: std::os::unix::net::UnixDatagram,
}

impl SyslogListener {
    pub fn bind(dir: &Path) -> SyslogListener {
        let path = dir.join("log.sock");
        let socket = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
        socket.set_nonblocking(true).unwrap();
        SyslogListener { path, socket }
    }

    /// The messages received until one contains `last` (the message the
    /// handler sends last in the case under test), waiting up to `within`
    /// for it: the crashed process is reaped once its core is read, and the
    /// handler logs its outcome and record after that, so a test that has
    /// no record file to wait for waits here. Returns what came either way.
    pub fn messages_until(&self, last: &str, within: Duration) -> Vec<String> {
        let deadline = Instant::now() + within;
        let mut messages = Vec::new();
        loop {
            messages.extend(self.messages());
            if messages.iter().any(|m| m.contains(last)) || Instant::now() >= deadline {
                return messages;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The messages received so far.
    pub fn messages(&self) -> Vec<String> {
        let mut messages = Vec::new();
        let mut buffer = vec![0u8; 65536];
        while let Ok(length) = self.socket.recv(&mut buffer) {
            messages.push(String::from_utf8_lossy(&buffer[..length]).into_owned());
        }
        messages
    }
}
