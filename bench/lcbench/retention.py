"""Trace retention under load: while bench-loadgen floods the session's
per-uid buffers, a traced program emits its last 1000 events and crashes
with a large core; how many of those 1000 does the handler's snapshot hold?
"""

import re
import signal
import subprocess
import time

from .system import BenchError

CRASHER_EVENTS = 1000
LOAD_THREADS = 2

_LINE = re.compile(r"^\[(\d+)\.(\d+)\] .* lttng_coredump:(step|load): \{ cpu_id = (\d+) \}, \{ (.*) \}$")
_SEQ = re.compile(r"seq = (\d+)")
_TAG = re.compile(r'tag = "([^"]*)"')


class LoadGenerator:
    """bench-loadgen running for the duration of a block; its own account
    of the rate it really kept is in `.stats` afterwards."""

    def __init__(self, exe, rate):
        self.exe = exe
        self.rate = rate
        self.stats = None

    def __enter__(self):
        self.proc = subprocess.Popen(
            [str(self.exe), str(self.rate), str(LOAD_THREADS)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            text=True,
        )
        if self.proc.stdout.readline().strip() != "ready":
            self.proc.kill()
            self.proc.wait()
            raise BenchError("bench-loadgen did not start")
        # lttng-ust registers the app with the session daemon before main();
        # one more second lets the buffers fill and the rate settle.
        time.sleep(1.5)
        return self

    def __exit__(self, *_exc):
        self.proc.send_signal(signal.SIGTERM)
        out, _ = self.proc.communicate(timeout=30)
        lines = out.strip().splitlines()
        if lines:
            self.stats = dict(item.split("=", 1) for item in lines[-1].split())
        return False


def read_snapshot(snapshot_dirs, tag):
    """The seqs of the crasher's events (with `tag`) found in the snapshot,
    and the load rate the trace itself shows (events per second, per CPU
    over the span its buffer covers, summed over CPUs)."""
    kept = set()
    load = {}
    for d in snapshot_dirs:
        proc = subprocess.Popen(
            ["babeltrace2", "--clock-seconds", str(d)], stdout=subprocess.PIPE, text=True
        )
        for line in proc.stdout:
            m = _LINE.match(line.rstrip("\n"))
            if not m:
                continue
            secs, frac, name, cpu, fields = m.groups()
            if name == "step":
                t = _TAG.search(fields)
                if t and t.group(1) == tag:
                    kept.add(int(_SEQ.search(fields).group(1)))
            else:
                ts = int(secs) * 1_000_000_000 + int(frac.ljust(9, "0")[:9])
                first, last, n = load.get(cpu, (ts, ts, 0))
                load[cpu] = (min(first, ts), max(last, ts), n + 1)
        if proc.wait() != 0:
            raise BenchError(f"babeltrace2 could not read the snapshot {d}")
    rate = sum((n - 1) * 1e9 / (last - first) for first, last, n in load.values() if last > first)
    return sorted(s for s in kept if 0 <= s < CRASHER_EVENTS), rate
