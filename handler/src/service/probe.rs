//! Whether the crash service answers on a socket: a client that is not the
//! kernel gets the service's greeting (and nothing is written or fired),
//! so that `install --socket` never points the kernel at a socket nobody
//! serves, and `status` tells a live service from a dead socket.

use std::io::Read;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

/// What a client (not the kernel) gets, so that `status` and `install`
/// can tell the service is alive.
pub const GREETING: &str = "lttng-coredump serve";
/// How long a probe waits for the greeting.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// Whether a service answers on `socket`: its greeting, or why not.
pub fn probe(socket: &Path) -> Result<String, String> {
    let mut stream = UnixStream::connect(socket)
        .map_err(|err| format!("nothing accepts connections on {}: {err}", socket.display()))?;
    stream
        .set_read_timeout(Some(PROBE_TIMEOUT))
        .map_err(|err| format!("cannot set a timeout: {err}"))?;
    let mut answer = Vec::new();
    let _ = (&mut stream).take(4096).read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer).trim().to_string();
    if answer.starts_with(GREETING) {
        Ok(answer)
    } else if answer.is_empty() {
        Err(format!(
            "{} accepts connections but did not answer within {} s (a hung or foreign service)",
            socket.display(),
            PROBE_TIMEOUT.as_secs()
        ))
    } else {
        Err(format!(
            "{} answered {answer:?}, not lttng-coredump serve",
            socket.display()
        ))
    }
}
