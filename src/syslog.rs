//! A syslog socket the handler can be pointed at (`syslog_socket`), to read
//! what it logged.

use std::path::{Path, PathBuf};

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
