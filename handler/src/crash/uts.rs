//! The crash's host name: the one the crashing process sees, its UTS
//! namespace's, not the handler's. A container, or a "host" made of
//! namespaces on a machine shared with others, names its crashes itself,
//! as systemd-coredump records `COREDUMP_HOSTNAME`.
//!
//! - Through the pipe, the kernel gives it: `%h` is the nodename of the
//!   dumping task's UTS namespace (`h=` on the handler's line).
//! - Through the coredump socket, the service asks: a short-lived thread
//!   joins the UTS namespace of the crashing process (`setns` on its pidfd,
//!   which names that very process, not a reused PID) and reads `uname`;
//!   the thread ends there, taking the namespace with it, so nothing else
//!   of the service changes. Root's right to join namespaces is the
//!   service's; failing that, the service's own host name.
//!
//! The crash's record (`hostname`), its journal entry
//! (`COREDUMP_HOSTNAME`) and the copy shipped to the collector (`_HOSTNAME`,
//! `crash/submit.rs`) carry that name.

use std::os::fd::{AsFd, OwnedFd};

/// This machine's host name (the handler's own UTS namespace).
pub fn own_hostname() -> Vec<u8> {
    rustix::system::uname().nodename().to_bytes().to_vec()
}

/// The host name the process of `pidfd` sees, else `None`.
pub fn hostname_of(pidfd: &OwnedFd) -> Option<Vec<u8>> {
    let fd = pidfd.try_clone().ok()?;
    std::thread::Builder::new()
        .name("uts".into())
        .spawn(move || {
            rustix::thread::move_into_thread_name_spaces(
                fd.as_fd(),
                rustix::thread::ThreadNameSpaceType::HOST_NAME_AND_NIS_DOMAIN_NAME,
            )
            .ok()?;
            Some(own_hostname())
        })
        .ok()?
        .join()
        .ok()
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Needs root (tests/tiers): joining another UTS namespace.
    #[test]
    fn the_host_name_is_the_one_the_crashing_process_sees() {
        // A process in a UTS namespace of its own, named otherwise.
        let mut child = std::process::Command::new("unshare")
            .args([
                "--uts",
                "sh",
                "-c",
                "hostname lcd-uts-other && echo ok && exec sleep 60",
            ])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        use std::io::BufRead;
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "ok");
        let pid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
        let pidfd = rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty()).unwrap();
        let name = hostname_of(&pidfd);
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(name.as_deref(), Some(&b"lcd-uts-other"[..]));
        // This thread stayed in the machine's namespace.
        assert_ne!(own_hostname(), b"lcd-uts-other");
    }
}
