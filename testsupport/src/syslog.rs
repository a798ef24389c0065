//! A syslog socket the handler can be pointed at (`syslog_socket`), to read
//! what it logged. A thread takes every datagram as it comes, as a syslog
//! daemon does: the socket's queue (10 datagrams by default) never fills,
//! so the handler never finds it stalled and never turns to the kernel log.

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A syslog socket the handler can be pointed at (`syslog_socket`), to read
/// what it logged.
pub struct SyslogListener {
    pub path: PathBuf,
    socket: Arc<UnixDatagram>,
    /// What the reader took; the reader holds the lock while it reads.
    received: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    reader: Option<JoinHandle<()>>,
}

impl SyslogListener {
    pub fn bind(dir: &Path) -> SyslogListener {
        let path = dir.join("log.sock");
        let socket = Arc::new(UnixDatagram::bind(&path).unwrap());
        socket
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let received = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let reader = {
            let received = Arc::clone(&received);
            let stop = Arc::clone(&stop);
            let socket = Arc::clone(&socket);
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let mut received = received.lock().unwrap();
                    receive(&socket, &mut received);
                    drop(received);
                    std::thread::yield_now();
                }
            })
        };
        SyslogListener {
            path,
            socket,
            received,
            stop,
            reader: Some(reader),
        }
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

    /// The messages received since the last call.
    pub fn messages(&self) -> Vec<String> {
        // What the reader took, then all that is still queued.
        let mut received = self.received.lock().unwrap();
        while receive(&self.socket, &mut received) {}
        std::mem::take(&mut *received)
    }
}

/// Takes one datagram, waiting up to the socket's read timeout; whether
/// one came.
fn receive(socket: &UnixDatagram, into: &mut Vec<String>) -> bool {
    let mut buffer = vec![0u8; 65536];
    match socket.recv(&mut buffer) {
        Ok(length) => {
            into.push(String::from_utf8_lossy(&buffer[..length]).into_owned());
            true
        }
        Err(_) => false,
    }
}

impl Drop for SyslogListener {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }
}
