"""Our crash service (`lttng-coredump serve`) for the socket-mode columns:
started once for the whole run on a socket of its own (core_pattern
`@@SOCKET` while its column is measured), stopped with SIGTERM at the end;
its memory at rest and under a storm of simultaneous crashes."""

import signal
import socket
import subprocess
import time
from pathlib import Path

from .system import BenchError, root_records

START_TIMEOUT_S = 60


def kernel_has_socket_mode():
    try:
        return "socket" in Path("/proc/sys/kernel/core_modes").read_text().split()
    except OSError:
        return False


class Service:
    def __init__(self, binary, socket_path, config, log_path, backup):
        self.socket_path = Path(socket_path)
        self.log_path = Path(log_path)
        log = open(log_path, "ab")
        self.proc = subprocess.Popen(
            [str(binary), "serve", "--socket", str(socket_path), "--config", str(config), "--backup", str(backup)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        log.close()
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self.answers():
            if self.proc.poll() is not None:
                raise BenchError(f"lttng-coredump serve ended ({self.proc.returncode}): {self.log_text()}")
            if time.monotonic() > deadline:
                self.stop()
                raise BenchError(f"lttng-coredump serve did not answer on {socket_path}")
            time.sleep(0.02)

    def answers(self):
        try:
            with socket.socket(socket.AF_UNIX) as s:
                s.settimeout(5)
                s.connect(str(self.socket_path))
                return s.recv(64).startswith(b"lttng-coredump serve")
        except OSError:
            return False

    def log_text(self):
        try:
            return self.log_path.read_text()[-2000:]
        except OSError:
            return ""

    def _status(self, field):
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
        raise BenchError(f"no {field} for the service")

    def rss_kib(self):
        return self._status("VmRSS")

    def peak_rss_kib(self):
        return self._status("VmHWM")

    def children_rss_kib(self):
        """The VmRSS of each of the service's resident children (which talk
        to the session daemons), not of the processes of crashes (`serve
        --crash-on-stdin`, among them the spare started for the next
        crash)."""
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                fields = dict(
                    line.split(":", 1) for line in (entry / "status").read_text().splitlines() if ":" in line
                )
            except OSError:
                continue
            try:
                crash_process = b"--crash-on-stdin" in (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if fields.get("PPid", "").strip() == str(self.proc.pid) and "VmRSS" in fields and not crash_process:
                found.append(int(fields["VmRSS"].split()[0]))
        return found

    def reset_peak(self):
        # clear_refs 5: the peak RSS starts again from the current RSS.
        Path(f"/proc/{self.proc.pid}/clear_refs").write_text("5")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class SocketCat:
    """bench-socket-cat on a socket of its own: the floor of a socket-mode
    service that saves the core (acknowledges, then read()s the core into
    a file, 64 KiB at a time as ours; nothing else)."""

    def __init__(self, binary, socket_path, core_dir):
        self.socket_path = Path(socket_path)
        self.socket_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [str(binary), str(socket_path), str(core_dir), str(64 * 1024)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        if self.proc.stdout.readline().strip() != b"ready":
            self.stop()
            raise BenchError(f"bench-socket-cat did not start on {socket_path}")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def storm(service, crasher, core_dir, count, tag, size_mb):
    """`count` crashes at once under `service` (already in core_pattern,
    writing to `core_dir`); returns the service's peak RSS (KiB) over the
    storm, once every crash has its record."""
    service.reset_peak()
    procs = [
        subprocess.Popen(
            [str(crasher), f"{tag}-{i}", "10", "segv", str(size_mb), "random"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for i in range(count)
    ]
    for p in procs:
        p.wait(timeout=300)
        if p.returncode != -signal.SIGSEGV:
            raise BenchError(f"a storm crasher ended with {p.returncode}")
    deadline = time.monotonic() + 300
    while len(root_records(core_dir)) < count:
        if time.monotonic() > deadline:
            raise BenchError(f"the storm left {len(root_records(core_dir))} records of {count}")
        time.sleep(0.05)
    return service.peak_rss_kib()
