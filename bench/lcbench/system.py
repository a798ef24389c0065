"""The machine the benchmark drives: fixed paths, the kernel's core_pattern
(owned only under the tests' machine-wide lock, always restored), the root
session daemon and the lttng CLI, and the C programs the benchmark builds.
"""

import fcntl
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BENCH_SRC = REPO / "bench"
# The project's one crashing program and its tracepoint header.
PROGRAMS_SRC = REPO / "programs"
TARGET_DIR = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
BUILD_DIR = TARGET_DIR / "bench"


class Profile:
    """Which cargo build of ours is measured: release (as users install
    it); the self-check takes the debug build the test suite already made."""

    release = True

    @classmethod
    def dir(cls):
        return TARGET_DIR / ("release" if cls.release else "debug")

    @classmethod
    def cargo_args(cls):
        return ["--release"] if cls.release else []

    @classmethod
    def make_profile(cls):
        return "release" if cls.release else "dev"

# The kernel takes at most 127 bytes of core_pattern: everything a pattern
# names lives under short paths.
RUN_DIR = Path("/run/lcb")
RSS_DIR = RUN_DIR / "rss"
DATA_DIR = Path("/var/lib/lcb")
SAVED_FILE = RUN_DIR / "saved-core-pattern"

CORE_PATTERN = Path("/proc/sys/kernel/core_pattern")
CORE_PIPE_LIMIT = Path("/proc/sys/kernel/core_pipe_limit")
TESTS_LOCK_DIR = Path("/run/lttng-coredump-tests")
CORE_PATTERN_LOCK = TESTS_LOCK_DIR / "core-pattern.lock"
# Held by the tests while OnAnyCoreDump triggers of theirs are registered in
# the root daemon (a crash, or lttng_trigger(), would fire them); always
# taken after the core_pattern lock.
ROOT_TRIGGERS_LOCK = TESTS_LOCK_DIR / "root-triggers.lock"
SESSIOND_START_LOCK = TESTS_LOCK_DIR / "sessiond-start.lock"
BENCH_LOCK = TESTS_LOCK_DIR / "bench.lock"
ROOT_SESSIOND_SOCKET = "/var/run/lttng/client-lttng-sessiond"

CFLAGS = ["-Wall", "-Wextra", "-Werror", "-O2", "-g"]


class BenchError(Exception):
    """Something the benchmark needs is missing or broke."""


def run(args, check=True, **kwargs):
    """Runs a command, capturing its output; fails with what it printed."""
    kwargs.setdefault("stdin", subprocess.DEVNULL)
    proc = subprocess.run(args, capture_output=True, text=True, **kwargs)
    if check and proc.returncode != 0:
        raise BenchError(
            f"{' '.join(map(str, args))} failed ({proc.returncode}): "
            f"{proc.stdout.strip()} {proc.stderr.strip()}"
        )
    return proc


def exit_on_signals():
    """SIGTERM and SIGHUP unwind like Ctrl-C, so every `finally` restores."""

    def unwind(signum, _frame):
        raise SystemExit(128 + signum)

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, unwind)


def hold_flock(path):
    """Blocks until an exclusive flock on `path` is ours; returns its fd."""
    TESTS_LOCK_DIR.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def single_bench_instance(wait_seconds=0):
    """Refuses to run next to another benchmark (they would share RUN_DIR).
    With `wait_seconds`, waits that long for the other one to end first
    (the self-check, run by the test suite, waits: a benchmark someone runs
    on the machine is no reason for a test to fail)."""
    TESTS_LOCK_DIR.mkdir(parents=True, exist_ok=True)
    fd = os.open(BENCH_LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    deadline = time.monotonic() + wait_seconds
    said = False
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise BenchError(f"another benchmark runs (it holds {BENCH_LOCK})") from None
            if not said:
                print(f"bench/run: waiting up to {wait_seconds} s for the benchmark "
                      f"that holds {BENCH_LOCK}", file=sys.stderr, flush=True)
                said = True
            time.sleep(1)
    return fd


def _read_sysctl(path):
    return path.read_text().rstrip("\n")


def _write_sysctl(path, value):
    with open(path, "w") as f:
        f.write(value)


class CorePatternOwner:
    """Owns core_pattern and core_pipe_limit for a block of crashes.

    Takes the exclusive flocks the project's tests take before touching
    core_pattern (and, after it, the one that keeps their OnAnyCoreDump
    triggers out of our crashes' fires), saves both values (also to SAVED_FILE, so that bench/run
    can restore them even if this process is killed outright), and restores
    them on leaving the block, whatever ends it.
    """

    def __enter__(self):
        self.lock_fd = hold_flock(CORE_PATTERN_LOCK)
        self.triggers_fd = hold_flock(ROOT_TRIGGERS_LOCK)
        self.saved_pattern = _read_sysctl(CORE_PATTERN)
        self.saved_pipe_limit = _read_sysctl(CORE_PIPE_LIMIT)
        SAVED_FILE.write_text(f"{self.saved_pattern}\n{self.saved_pipe_limit}\n")
        return self

    def set(self, pattern, pipe_limit):
        if len(pattern.encode()) > 127:
            raise BenchError(f"core_pattern {pattern!r} is over the kernel's 127 bytes")
        _write_sysctl(CORE_PIPE_LIMIT, str(pipe_limit))
        _write_sysctl(CORE_PATTERN, pattern)
        if _read_sysctl(CORE_PATTERN) != pattern:
            raise BenchError(f"the kernel did not take core_pattern {pattern!r}")

    def __exit__(self, *_exc):
        try:
            _write_sysctl(CORE_PATTERN, self.saved_pattern)
            _write_sysctl(CORE_PIPE_LIMIT, self.saved_pipe_limit)
            SAVED_FILE.unlink(missing_ok=True)
        finally:
            os.close(self.triggers_fd)
            os.close(self.lock_fd)
        return False


def root_sessiond_alive():
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        try:
            s.connect(ROOT_SESSIOND_SOCKET)
            return True
        except OSError:
            return False


# The tests' lock of the root session daemon's users: held shared for the
# whole benchmark, as every test that uses the daemon holds it, so that the
# one test that stops the daemon (the demo on a machine without one) waits
# for the benchmark instead of taking its session away mid-run.
ROOT_SESSIOND_USERS_LOCK = TESTS_LOCK_DIR / "root-sessiond.lock"
_root_sessiond_use = []


def ensure_sessiond():
    """Starts a root user-space session daemon when none runs (never stops
    one: other engineers' tests share it), and keeps it from being stopped
    by a test until the benchmark ends."""
    if not _root_sessiond_use:
        TESTS_LOCK_DIR.mkdir(parents=True, exist_ok=True)
        fd = os.open(ROOT_SESSIOND_USERS_LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        fcntl.flock(fd, fcntl.LOCK_SH)
        _root_sessiond_use.append(fd)
    if root_sessiond_alive():
        return False
    fd = hold_flock(SESSIOND_START_LOCK)
    try:
        if root_sessiond_alive():
            return False
        run(["lttng-sessiond", "--daemonize", "--no-kernel"])
        deadline = time.monotonic() + 20
        while not root_sessiond_alive():
            if time.monotonic() > deadline:
                raise BenchError(f"lttng-sessiond started but {ROOT_SESSIOND_SOCKET} never answered")
            time.sleep(0.05)
        return True
    finally:
        os.close(fd)


def lttng(*args, check=True):
    """The lttng CLI, for the benchmark's set-up and clean-up."""
    return run(["lttng", *args], check=check)


class SnapshotSession:
    """A flight-recorder (snapshot-mode) session with the default channel
    (per-uid buffers, default sizes) recording the benchmark's events;
    destroyed on leaving the block."""

    def __init__(self, name, output_dir):
        self.name = name
        self.output_dir = Path(output_dir)

    def __enter__(self):
        self.output_dir.mkdir(parents=True, exist_ok=True)
        lttng("create", self.name, "--snapshot", f"--output={self.output_dir}")
        try:
            lttng("enable-event", "--userspace", "--session", self.name, "lttng_coredump:step,lttng_coredump:load")
            lttng("start", self.name)
        except BaseException:
            lttng("destroy", self.name, check=False)
            raise
        return self

    def snapshots(self):
        """The snapshot directories recorded so far."""
        if not self.output_dir.is_dir():
            return set()
        return {p for p in self.output_dir.iterdir() if p.is_dir()}

    def clear_snapshots(self):
        for p in self.snapshots():
            shutil.rmtree(p, ignore_errors=True)

    def __exit__(self, *_exc):
        lttng("destroy", self.name, check=False)
        shutil.rmtree(self.output_dir, ignore_errors=True)
        return False


def pkg_config(*args):
    return run(["pkg-config", *args]).stdout.split()


def build_c(name, sources, extra=(), ust=False, ctl=False):
    """Compiles one of the benchmark's C programs (warnings are errors)."""
    BUILD_DIR.mkdir(parents=True, exist_ok=True)
    exe = BUILD_DIR / name
    cmd = ["cc", *CFLAGS, f"-I{BENCH_SRC}", f"-I{PROGRAMS_SRC}", "-o", str(exe)]
    cmd += [str(BENCH_SRC / s) for s in sources]
    cmd += list(extra)
    if ust:
        cmd += pkg_config("--cflags", "--libs", "lttng-ust") + ["-ldl"]
    if ctl:
        cmd += pkg_config("--cflags", "--libs", "lttng-ctl")
    cmd += ["-lpthread"]
    run(cmd)
    return exe


def build_programs():
    """Builds the crash, reap, wrapper and load programs; returns their paths."""
    return {
        "crasher": build_c("bench-crasher", [PROGRAMS_SRC / "crasher.c"], ust=True),
        "reap": build_c("bench-reap", ["reap.c"]),
        "wrap": build_c("bench-rusage-wrap", ["rusage-wrap.c"], [f'-DRSS_DIR="{RSS_DIR}"']),
        "loadgen": build_c("bench-loadgen", ["loadgen.c"], ust=True),
        "floor": build_c("bench-snapshot-floor", ["snapshot-floor.c"], ctl=True),
        "socket_cat": build_c("bench-socket-cat", ["socket-cat.c"]),
    }


def cargo_build(package, *extra):
    run(["cargo", "build", "--quiet", *Profile.cargo_args(), "-p", package, *extra], cwd=REPO)


def install_file(src, name, mode=0o755):
    """Copies a file under RUN_DIR (short paths for core_pattern)."""
    dst = RUN_DIR / name
    tmp = RUN_DIR / f".{name}.tmp"
    shutil.copyfile(src, tmp)
    os.chmod(tmp, mode)
    os.replace(tmp, dst)
    return dst


def disk_bytes(path):
    """Bytes the file really takes on disk (holes are free)."""
    return os.stat(path).st_blocks * 512


def root_records(core_dir):
    """Root's crash records in a core directory: not the crashing users' copies
    (STEM.user.json), nor the reports beside them (STEM.report.json,
    STEM.report.user.json)."""
    return sorted(
        p
        for p in Path(core_dir).glob("*.json")
        if not p.name.endswith(".user.json") and not p.name.endswith(".report.json") and ".report.user." not in p.name
    )
