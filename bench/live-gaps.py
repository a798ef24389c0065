"""Where the gaps the live target sees fall, for one configuration of the
live-core benchmark (bench/livecore.py), and what its threads and the
dumper's were doing then.

    python3 bench/live-gaps.py --dumper DUMPER --target LIVE_TARGET \
        [--size 2048] [--thp always|never] [--writer] [--runs 3] [-- DUMPER OPTIONS...]

Starts one target (as the benchmark does), dumps it `--runs` times by
stop-and-copy into a file under /var/tmp, and for each dump prints:
- the pause our dumper measured and the largest gap seen from inside;
- every gap over 5 ms of the target's counting thread, placed against the
  dumper's own clock (the report's `pause_begin_ns`, `pause_end_ns`,
  `write_begin_ns`, `write_end_ns`, CLOCK_MONOTONIC as the target's stamps):
  in the pause, in the write-out after it, or elsewhere;
- for each such gap, what a sampler (every 2 ms) saw of the counting
  thread (its state: R waiting for a CPU, D or S in the kernel, with its
  kernel stack when not R) and of the dumping child's threads (state, nice);
- /proc/vmstat's reclaim and compaction counters and the pressure stalls
  (PSI) over the dump;
- a one-line summary: the largest gap by place, the time before the stop.
--dumper-b DUMPER alternates a second dumper with the first, run by run, in
the same target; --squeeze fills the free memory with clean page cache
(a sparse file read) before each dump.
Needs root. Not part of bench/live: a diagnosis tool (BENCHMARKS.md, "The
4 GiB stop-and-copy row with a writer").
"""

import argparse
import json
import os
import subprocess
import threading
import time

VMSTAT = [
    "allocstall_normal", "allocstall_movable", "pgscan_direct", "pgscan_kswapd",
    "compact_stall", "compact_success", "compact_fail", "thp_fault_alloc",
    "thp_fault_fallback", "pgmigrate_success", "thp_split_pmd", "nr_dirty",
    "nr_writeback",
]


def pressure():
    """PSI totals (microseconds): memory some/full, cpu some, io full."""
    out = {}
    for what in ("memory", "cpu", "io"):
        text = read(f"/proc/pressure/{what}") or ""
        for line in text.splitlines():
            kind, *fields = line.split()
            total = next((int(f.split("=")[1]) for f in fields if f.startswith("total=")), 0)
            out[f"{what}_{kind}"] = total
    return out


def vmstat():
    out = {}
    with open("/proc/vmstat") as f:
        for line in f:
            k, v = line.split()
            if k in VMSTAT:
                out[k] = int(v)
    return out


def read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


SPARSE = "/var/tmp/live-gaps-sparse"


def squeeze():
    """Puts MemFree's worth of clean page cache in the way."""
    with open("/proc/meminfo") as f:
        free = next(int(l.split()[1]) for l in f if l.startswith("MemFree:")) * 1024
    with open(SPARSE, "wb") as f:
        f.truncate(free)
    with open(SPARSE, "rb") as f:
        while f.read(8 << 20):
            pass
    # Kept until the dump is done (removing it frees its cache).


def task_state(pid, tid):
    """(state, nice, cpu) of one thread."""
    text = read(f"/proc/{pid}/task/{tid}/stat")
    if text is None:
        return None
    fields = text[text.rindex(")") + 2:].split()
    return fields[0], int(fields[16]), int(fields[36])


def thread_named(pid, name):
    for tid in os.listdir(f"/proc/{pid}/task"):
        if (read(f"/proc/{pid}/task/{tid}/comm") or "").strip() == name:
            return int(tid)
    raise RuntimeError(f"no thread {name} in {pid}")


class Sampler(threading.Thread):
    def __init__(self, pid, counting, dumper):
        super().__init__(daemon=True)
        self.pid, self.counting, self.dumper = pid, counting, dumper
        self.samples = []
        self.stop = False

    def run(self):
        while not self.stop:
            now = time.monotonic_ns()
            counting = task_state(self.pid, self.counting)
            stack = None
            if counting and counting[0] != "R":
                stack = (read(f"/proc/{self.pid}/task/{self.counting}/stack") or "").split("\n")[:4]
            dumper = []
            children = read(f"/proc/{self.dumper}/task/{self.dumper}/children") or ""
            for child in children.split():
                for tid in os.listdir(f"/proc/{child}/task") if os.path.isdir(f"/proc/{child}/task") else []:
                    st = task_state(child, tid)
                    if st:
                        comm = (read(f"/proc/{child}/task/{tid}/comm") or "").strip()
                        dumper.append((comm, tid, st[0], st[1], st[2]))
            self.samples.append((now, counting, stack, dumper))
            time.sleep(0.002)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--dumper", required=True)
    parser.add_argument("--target", required=True)
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--thp", default="always")
    parser.add_argument("--writer", action="store_true")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--dumper-b", help="a second dumper, alternated with the first run by run")
    parser.add_argument("--squeeze", action="store_true",
                        help="before each dump, read a sparse file of MemFree bytes into the page cache "
                             "(the memory the buffer needs must then be reclaimed and compacted, as on a "
                             "machine whose memory is all in use)")
    parser.add_argument("extra", nargs="*")
    args = parser.parse_args()
    command = [args.target, "--quiet-threads", "--fill", str(args.size), "--random", "--thp", args.thp]
    if args.writer:
        command += ["--writer", "100"]
    env = dict(os.environ, LTTNG_UST_REGISTER_TIMEOUT="0")
    target = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)

    def ask(line):
        target.stdin.write(line + "\n")
        target.stdin.flush()
        return target.stdout.readline().strip()

    ready = target.stdout.readline()
    pid = int(ready.split()[1])
    counting = thread_named(pid, "counting_time")
    print(f"# {args.size} MiB, THP {args.thp}, writer {args.writer}, options {args.extra}; "
          f"load {os.getloadavg()[0]:.2f}")
    time.sleep(1.0)
    core = f"/var/tmp/live-gaps-{os.getpid()}.core"
    try:
        for run in range(args.runs):
            if os.path.exists(core):
                os.unlink(core)
            # Gaps from before this dump are not its (drained here, and
            # those listed after it are taken from its start on).
            line = ask("gaps")
            while line != "end":
                line = target.stdout.readline().strip()
            binary = args.dumper_b if args.dumper_b and run % 2 else args.dumper
            if args.squeeze:
                squeeze()
            ask("reset")
            before = vmstat()
            psi_before = pressure()
            started = time.monotonic_ns()
            dumper = subprocess.Popen(
                [binary, str(pid), "-o", core, "--method", "stop-and-copy"] + args.extra,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            sampler = Sampler(pid, counting, dumper.pid)
            sampler.start()
            out, err = dumper.communicate()
            ended = time.monotonic_ns()
            time.sleep(0.5)
            sampler.stop = True
            sampler.join()
            after = vmstat()
            psi_after = pressure()
            if args.squeeze:
                os.unlink(SPARSE)
            if dumper.returncode != 0:
                raise RuntimeError(err + out)
            report = json.loads(next(l for l in reversed(out.splitlines()) if l.startswith("{")))["Ok"]
            max_gap = int(ask("stats").split("max_gap_ns=")[1]) / 1e6
            target.stdin.write("gaps\n")
            target.stdin.flush()
            gaps = []
            while True:
                line = target.stdout.readline().split()
                if line[0] == "end":
                    break
                a, b = int(line[1]), int(line[2])
                if b - a > 5_000_000 and b >= started:
                    gaps.append((a, b))
            p0, p1 = report["pause_begin_ns"], report["pause_end_ns"]
            w0, w1 = report["write_begin_ns"], report["write_end_ns"]
            ms = lambda ns: f"{ns / 1e6:+.1f}"
            print(f"\n## run {run + 1} ({os.path.basename(binary)}): our pause {report['pause_us'] / 1000:.1f} ms, largest gap seen from inside "
                  f"{max_gap:.1f} ms, stop nice {report.get('stop_nice')}, total {(ended - started) / 1e9:.2f} s, "
                  f"write-out {(w1 - w0) / 1e6:.0f} ms")
            print(f"times in ms from the pause's start: pause {ms(0)}..{ms(p1 - p0)}, write-out {ms(w0 - p0)}..{ms(w1 - p0)}, "
                  f"dumper started {ms(started - p0)}, ended {ms(ended - p0)}")
            largest = {}
            for a, b in gaps:
                where = ("pause" if a <= p1 and b >= p0 else
                         "write-out" if a <= w1 and b >= w0 else
                         "before the stop" if b < p0 else "after the write-out")
                largest[where] = max(largest.get(where, 0), (b - a) / 1e6)
                print(f"- gap {(b - a) / 1e6:.1f} ms at {ms(a - p0)}..{ms(b - p0)} ({where})")
                if where == "pause":
                    continue
                states = {}
                for now, c, stack, dumper_threads in sampler.samples:
                    if a < now < b and c:
                        key = c[0] + (" " + stack[0].strip() if stack and stack[0] else "")
                        states[key] = states.get(key, 0) + 1
                print(f"  counting thread sampled: {states}")
                seen = {}
                for now, c, stack, dumper_threads in sampler.samples:
                    if a < now < b:
                        for comm, tid, st, nice, cpu in dumper_threads:
                            k = f"{comm} {st} nice {nice}"
                            seen[k] = seen.get(k, 0) + 1
                print(f"  dumper threads sampled: {seen}")
            print(f"summary: {os.path.basename(binary)} our pause {report['pause_us'] / 1000:.0f} ms; largest gap "
                  f"{max_gap:.0f} ms; by place: " + ", ".join(f"{k} {v:.0f}" for k, v in largest.items())
                  + f"; before the stop {(p0 - started) / 1e9:.1f} s; total {(ended - started) / 1e9:.1f} s")
            print("pressure stalls over the dump (ms): " + ", ".join(
                f"{k} {(psi_after[k] - psi_before[k]) / 1000:.0f}" for k in psi_after if k in psi_before))
            print("vmstat over the dump: " + ", ".join(f"{k} {after[k] - before[k]}" for k in VMSTAT if k in after and after[k] != before[k]))
            time.sleep(1.0)
    finally:
        for leftover in (core, SPARSE):
            if os.path.exists(leftover):
                os.unlink(leftover)
        ask("exit")
        target.wait()


if __name__ == "__main__":
    main()
