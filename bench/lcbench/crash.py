"""One crash under one handler, and everything measured of it: the
crash-to-reap and crash-to-snapshot latencies, the handler's peak RSS, the
core's size and its bytes on disk, and the snapshot it left."""

import os
import time
from dataclasses import dataclass, field
from typing import Optional

from .system import RSS_DIR, BenchError, disk_bytes, root_records, run

# How long a handler may take to exit after the crashed process was reaped.
HANDLER_EXIT_TIMEOUT_S = 300


@dataclass
class CrashResult:
    handler: str
    reap_ms: float
    snapshot_ms: Optional[float] = None
    rss_kb: Optional[int] = None
    # From the crash to the kernel starting the pipe handler (its wrapper):
    # the part of every latency that no handler can change.
    handler_start_ms: Optional[float] = None
    core_bytes: Optional[int] = None
    core_disk_bytes: Optional[int] = None
    snapshot_dirs: list = field(default_factory=list)
    # Our handler's own account (its record's stages): how long it took to
    # record the snapshots, and to read and store the core.
    stage_startup_ms: Optional[float] = None
    # Socket mode: from the crash instant to the start of the snapshot stage.
    stage_from_crash_ms: Optional[float] = None
    stage_snapshots_ms: Optional[float] = None
    stage_core_ms: Optional[float] = None
    # The check of the trace the core holds (after the process is let go;
    # None when the handler did not run it).
    stage_core_trace_ms: Optional[float] = None
    stage_report_ms: Optional[float] = None
    # Why there is no snapshot_ms although the handler takes snapshots; the
    # crash's other measures still count.
    snapshot_error: Optional[str] = None


def _parse_fields(line):
    return dict(item.split("=", 1) for item in line.split())


def _clear_rss_dir():
    RSS_DIR.mkdir(parents=True, exist_ok=True)
    for p in RSS_DIR.iterdir():
        p.unlink()


def _wait_for_handler_exit(handler):
    """The wrapper's report (a dict), written once the handler has exited."""
    deadline = time.monotonic() + HANDLER_EXIT_TIMEOUT_S
    while True:
        reports = [p for p in RSS_DIR.iterdir() if not p.name.startswith(".")]
        if len(reports) > 1:
            raise BenchError(f"{handler.label}: {len(reports)} handler reports for one crash")
        if reports:
            fields = _parse_fields(reports[0].read_text())
            status = int(fields["status"])
            if status != 0:
                raise BenchError(f"{handler.label}: the handler ended with wait status {status:#x}")
            return fields
        if time.monotonic() > deadline:
            raise BenchError(f"{handler.label}: the handler did not exit within {HANDLER_EXIT_TIMEOUT_S}s")
        time.sleep(0.01)


def _wait_for_record(handler):
    deadline = time.monotonic() + HANDLER_EXIT_TIMEOUT_S
    while not root_records(handler.core_dir):
        if time.monotonic() > deadline:
            raise BenchError(f"{handler.label}: no crash record within {HANDLER_EXIT_TIMEOUT_S}s")
        time.sleep(0.005)


def crash_once(handler, programs, session, tag, events, size_mb, fill):
    """Crashes bench-crasher (programs/crasher.c) once under `handler` (already in core_pattern)
    and collects the measures; leaves no core and no snapshot behind, but
    for the snapshot directories it returns (the caller reads, then deletes
    them)."""
    handler.clear()
    session.clear_snapshots()
    _clear_rss_dir()
    before = session.snapshots()
    # Every run starts with nothing of the previous one left to write back.
    os.sync()

    proc = run(
        [programs["reap"], programs["crasher"], "--stamp-fd", "3", tag, str(events), "segv", str(size_mb), fill],
        timeout=HANDLER_EXIT_TIMEOUT_S,
    )
    reap = _parse_fields(proc.stdout.strip().splitlines()[-1])
    if reap["core_dumped"] != "1":
        raise BenchError(f"{handler.label}: the kernel reports no core dumped for {tag}")
    result = CrashResult(handler.key, int(reap["reap_ns"]) / 1e6)

    wrapper = None
    if handler.piped:
        wrapper = _wait_for_handler_exit(handler)
        result.rss_kb = int(wrapper["maxrss_kb"])
        result.handler_start_ms = (int(wrapper["start_real_ns"]) - int(reap["crash_real_ns"])) / 1e6
    elif handler.snapshots:
        # The socket service: it is done with the crash once its record is
        # written (it compresses after the process is let go).
        _wait_for_record(handler)
    pid = int(reap["pid"])
    cores = handler.core_files()
    if len(cores) != 1:
        raise BenchError(
            f"{handler.label}: expected one core in {handler.core_dir}, found {[c.name for c in cores]}"
        )
    result.core_bytes = os.stat(cores[0]).st_size
    result.core_disk_bytes = disk_bytes(cores[0])

    if handler.snapshots:
        result.snapshot_dirs = sorted(session.snapshots() - before)
        try:
            if not result.snapshot_dirs:
                raise BenchError(f"{handler.label}: no snapshot recorded in {session.output_dir}")
            done_ns = handler.snapshot_done_real_ns(pid)
            result.snapshot_ms = (done_ns - int(reap["crash_real_ns"])) / 1e6
            if handler.key != "seed":
                stages = handler.stages()
                # From the kernel starting the handler (its wrapper) to the
                # handler starting its snapshots: exec, libraries, arguments,
                # configuration, /proc.
                if wrapper is not None:
                    result.stage_startup_ms = (stages["snapshots"][0] * 1000 - int(wrapper["start_real_ns"])) / 1e6
                else:
                    # The service: from the crash (no wrapper to tell when
                    # the crash's process started): the kernel's
                    # connection, the accept, the crash's process, its
                    # configuration and /proc.
                    result.stage_from_crash_ms = (stages["snapshots"][0] * 1000 - int(reap["crash_real_ns"])) / 1e6
                result.stage_snapshots_ms = (stages["snapshots"][1] - stages["snapshots"][0]) / 1e3
                result.stage_core_ms = (stages["core"][1] - stages["core"][0]) / 1e3
                check = stages.get("core_trace")
                if check and check[0]:
                    result.stage_core_trace_ms = (check[1] - check[0]) / 1e3
                made = stages.get("report")
                if made and made[0]:
                    result.stage_report_ms = (made[1] - made[0]) / 1e3
        except BenchError as e:
            result.snapshot_error = str(e) + handler.why_no_snapshot()
    handler.clear()
    return result

