"""The live-core benchmark's harness (run by bench/live).

For each configuration (memory size, huge pages on or off, idle or with a
writer at 100 MiB/s) one target process is started, and every method dumps
it in turn, in an order rotated each run so that none always comes first:
our stop-and-copy, our copy-on-write, our pre-copy, and gdb's gcore. Measured for each
dump:

- pause: the largest gap between two of the target's own 100 us stamps
  during the dump (its counting thread's CLOCK_MONOTONIC), i.e. the pause
  seen from inside the process (scheduling delays included, as the process
  sees them);
- total: the wall time of the dumping command;
- written: bytes of the core on disk (allocated blocks: holes excluded);
- rss: the dumping command's peak RSS with its children's (GNU time's %M);
- ours: the pause our dumper reports (first stop to last thread let go);
- copy: copy-on-write, the memory the copy had to itself at the end
  (the pages the process wrote meanwhile, each copied once by the kernel):
  what the method cost in memory; pre-copy, the memory its final stop
  copied (the pages written since its last pass, the shared and the new
  mappings).

`pre-copy` is write-tracked pre-copy: a first brief stop (to get the
process's userfaultfd), passes while it runs, then a final stop for the
pages written since the last pass; the pause seen from inside is the
larger of the two stops, and so is `our pause ms` (the final stop's own is
in `stages ms`).

`pre-copy budgeted` is pre-copy as the crash store runs it (root's
`gcore` into the store, serve's live cores): its staging file given
(`--staging-in`, an unnamed file in the store's directory, here the
bench's) with a byte budget every write is checked against (here 4x the
memory: it never runs out).

`stop-and-copy>null` is stop-and-copy writing its core to /dev/null: the
pause of the copying alone, without what writing a file into the page
cache costs on the machine (a row apart, not a method).
`stop-and-copy unbuffered` is stop-and-copy with no buffer
(`--stop-buffer-mib 0`): the core written while the threads are stopped,
as before the memory was copied into the dumper's buffer during the stop;
the baseline the buffered pause is compared with, in the same run
(`x unbuf`). `buffer MiB`: the memory the buffer took (stop-and-copy).
`stop-and-copy plain` is stop-and-copy copying with one thread at the
dumper's own priority (`--copy-threads 1 --no-raise-priority`): the
baseline of the two things that shorten the stop (`x plain`).
`fork()` is no dump: the target forks a child that exits at once (its
`fork` command), the kernel's own fork of this very process, the baseline
of copy-on-write's pause (`our pause ms` there is the fork call's own
duration in the forking thread).
`pre-copy baseline` (with `--baseline DUMPER` only): pre-copy by another
build of the dumper (e.g. main's, to measure a change's cost in the same
run); the targets then give the ratio of pre-copy's final stop to the
baseline's.
`stages ms`: our dumper's pause stage by stage (`pause_stages`: stopping
every thread, reading their registers, the mappings and notes, the copy
or the fork, letting go), medians.

Prints one table per configuration (medians), then the targets of issue 22
checked against the figures of this run.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

METHODS = [
    "stop-and-copy",
    "stop-and-copy plain",
    "stop-and-copy unbuffered",
    "copy-on-write",
    "pre-copy",
    "pre-copy budgeted",
    "fork()",
    "gcore",
    "stop-and-copy>null",
]
# With --baseline DUMPER: pre-copy by that build too.
BASELINE = "pre-copy baseline"
# A row that is a method with options: the method, the dumper's options.
VARIANTS = {
    "stop-and-copy unbuffered": ("stop-and-copy", ["--stop-buffer-mib", "0"]),
    "stop-and-copy plain": ("stop-and-copy", ["--copy-threads", "1", "--no-raise-priority"]),
    BASELINE: ("pre-copy", []),
}
# Pre-copy as the crash store runs it (`gcore` into the store, serve's live
# cores): its staging file given (an unnamed file in the store's directory,
# here the bench's) with a byte budget, each write checked against it; the
# budget here (4x the memory) never runs out.
BUDGETED = "pre-copy budgeted"
WRITER_MIBPS = 100


class Target:
    """A running live_target, talked to through its stdin and stdout."""

    def __init__(self, program, size_mib, thp, writer):
        self.size_mib = size_mib
        args = [program, "--quiet-threads", "--fill", str(size_mib), "--random", "--thp", thp]
        if writer:
            args += ["--writer", str(WRITER_MIBPS)]
        env = dict(os.environ, LTTNG_UST_REGISTER_TIMEOUT="0")
        self.proc = subprocess.Popen(
            args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env
        )
        line = self.proc.stdout.readline()
        if not line.startswith("ready "):
            raise RuntimeError(f"the target printed {line!r}")
        self.pid = int(line.split()[1])

    def ask(self, command):
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return self.proc.stdout.readline().strip()

    def stats(self):
        fields = dict(w.split("=") for w in self.ask("stats").split()[1:])
        return {k: int(v) for k, v in fields.items()}

    def rss_mib(self):
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        return 0

    def close(self):
        try:
            self.ask("exit")
            self.proc.wait(timeout=30)
        except Exception:
            self.proc.kill()
            self.proc.wait()


def measure(args, target, method, directory):
    """One dump of `target` by `method`: its figures."""
    core = os.path.join(directory, f"{method.replace(' ', '-')}.core")
    base, extra = VARIANTS.get(method, (method.split(">")[0], []))
    if method == BUDGETED:
        base, extra = "pre-copy", [
            "--staging-in", directory,
            "--staging-budget-kib", str(4 * target.size_mib * 1024),
        ]
    for leftover in (core, f"{core}.{target.pid}"):
        if os.path.exists(leftover):
            os.unlink(leftover)
    if method == "gcore":
        command = ["gcore", "-o", core, str(target.pid)]
        written_path = f"{core}.{target.pid}"
    elif method.endswith(">null"):
        command = [args.dumper, str(target.pid), "--stdout", "--method", base] + extra
        written_path = None
    else:
        dumper = args.baseline if method == BASELINE else args.dumper
        command = [dumper, str(target.pid), "-o", core, "--method", base] + extra
        written_path = core
    target.ask("reset")
    if method == "fork()":
        started = time.monotonic()
        fork_ns = int(target.ask("fork").split("=")[1])
        total = time.monotonic() - started
        return {
            "pause_ms": target.stats()["max_gap_ns"] / 1e6,
            "total_s": total,
            "written_mib": None,
            "rss_mib": None,
            "ours_ms": fork_ns / 1e6,
            "memory_gib": None,
            "copy_mib": None,
            "buffer_mib": None,
            "stages": None,
        }
    started = time.monotonic()
    with open(os.devnull, "w") as null:
        out = subprocess.run(
            ["/usr/bin/time", "-f", "maxrss_kb=%M"] + command,
            stdout=null if written_path is None else subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    total = time.monotonic() - started
    if out.returncode != 0:
        raise RuntimeError(f"{command} failed: {out.stdout}{out.stderr}")
    pause_ns = target.stats()["max_gap_ns"]
    lines = out.stderr.strip().splitlines()
    rss_kb = int(next(l for l in reversed(lines) if l.startswith("maxrss_kb=")).split("=")[1])
    figures = {
        "pause_ms": pause_ns / 1e6,
        "total_s": total,
        "written_mib": None,
        "rss_mib": rss_kb / 1024,
        "ours_ms": None,
        "memory_gib": None,
        "copy_mib": None,
        "buffer_mib": None,
        "stages": None,
    }
    if written_path is not None:
        figures["written_mib"] = os.stat(written_path).st_blocks * 512 / 2**20
        os.unlink(written_path)
    if method != "gcore":
        answer = (lines if written_path is None else out.stdout.strip().splitlines())
        report = json.loads(next(l for l in reversed(answer) if l.startswith("{")))["Ok"]
        figures["ours_ms"] = report["pause_us"] / 1000
        # Each stage's own duration (the report gives when each ended).
        ends = [(name, us) for name, us in report.get("pause_stages", [])]
        figures["stages"] = {
            name: (us - (ends[i - 1][1] if i else 0)) / 1000 for i, (name, us) in enumerate(ends)
        }
        figures["memory_gib"] = report["memory_bytes"] / 2**30
        if report["method"] == "copy-on-write":
            figures["copy_mib"] = report["copy_private_bytes"] / 2**20
        elif report["method"] == "pre-copy":
            figures["copy_mib"] = report.get("final_copy_bytes", 0) / 2**20
            figures["ours_ms"] = max(report["pause_us"], report.get("track_pause_us", 0)) / 1000
        else:
            figures["buffer_mib"] = report.get("buffer_bytes", 0) / 2**20
        if report["method"] != base:
            raise RuntimeError(f"asked for {method}, got {report['method']}: {report['fallback']}")
    return figures


def median(values):
    values = [v for v in values if v is not None and not isinstance(v, dict)]
    return statistics.median(values) if values else None


def fmt(value, digits=1):
    if value is None:
        return "-"
    if value >= 100:
        return f"{value:.0f}"
    return f"{value:.{digits}f}"


def run_configuration(args, size, thp, writer, directory):
    target = Target(args.target, size, thp, writer)
    try:
        time.sleep(1.0)
        rss = target.rss_mib()
        runs = args.runs if args.runs else (5 if size <= 64 else (2 if size <= 1024 else 1))
        methods = METHODS + ([BASELINE] if args.baseline else [])
        results = {m: [] for m in methods}
        for run in range(runs):
            order = methods[run % len(methods):] + methods[: run % len(methods)]
            for method in order:
                results[method].append(measure(args, target, method, directory))
                time.sleep(0.5)
        errors = target.stats()["errors"]
    finally:
        target.close()
    summary = {}
    for m in methods:
        summary[m] = {k: median([r[k] for r in results[m]]) for k in results[m][0] if k != "stages"}
        stages = [r["stages"] for r in results[m] if r["stages"]]
        summary[m]["stages"] = (
            {name: median([st.get(name) for st in stages]) for name in stages[0]} if stages else None
        )
    return rss, runs, summary, errors


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--dumper", required=True)
    parser.add_argument("--target", required=True)
    parser.add_argument("--sizes", default="64,1024,4096")
    parser.add_argument("--runs", type=int, default=0)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--baseline", help="another build of the dumper: a pre-copy row by it too")
    args = parser.parse_args()
    sizes = [64] if args.quick else [int(s) for s in args.sizes.split(",")]
    if args.quick:
        args.runs = args.runs or 1
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    with open("/sys/kernel/mm/transparent_hugepage/enabled") as f:
        thp_mode = f.read().strip()
    started = time.monotonic()
    print(f"# live cores: {os.uname().nodename}, {os.cpu_count()} CPUs, kernel {os.uname().release}, THP {thp_mode}, commit {commit}")
    print(f"# {time.strftime('%Y-%m-%d %H:%M:%S')}; load average {os.getloadavg()[0]:.2f} at the start; medians; pause = the largest gap seen from inside")
    checks = []
    with tempfile.TemporaryDirectory(prefix="livebench-", dir="/var/tmp") as directory:
        for size in sizes:
            for thp in ["always", "never"]:
                for writer in [False, True]:
                    rss, runs, s, errors = run_configuration(args, size, thp, writer, directory)
                    load = f"writer {WRITER_MIBPS} MiB/s" if writer else "idle"
                    print()
                    print(f"## {size} MiB random, THP {'on' if thp == 'always' else 'off'}, {load} "
                          f"(target RSS {rss:.0f} MiB, {runs} run{'s' if runs > 1 else ''}, target errors {errors})")
                    print()
                    print("| method | pause ms | x gcore | x unbuf | x plain | our pause ms | stages ms | total s | x gcore | written MiB | dumper RSS MiB | copy MiB | buffer MiB |")
                    print("| --- | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
                    # (memory in the core: see the targets)
                    g = s["gcore"]
                    u = s["stop-and-copy unbuffered"]
                    p = s["stop-and-copy plain"]
                    for m in s:
                        f = s[m]
                        stages = ", ".join(f"{k} {fmt(v, 1)}" for k, v in (f["stages"] or {}).items()) or "-"
                        print(f"| {m} | {fmt(f['pause_ms'], 2)} | {fmt(f['pause_ms'] / g['pause_ms'], 3)} | "
                              f"{fmt(f['pause_ms'] / u['pause_ms'], 3)} | {fmt(f['pause_ms'] / p['pause_ms'], 3)} | "
                              f"{fmt(f['ours_ms'], 2)} | {stages} | {fmt(f['total_s'], 2)} | {fmt(f['total_s'] / g['total_s'], 2)} | "
                              f"{fmt(f['written_mib'])} | {fmt(f['rss_mib'])} | {fmt(f['copy_mib'])} | {fmt(f['buffer_mib'])} |")
                    a, b = s["stop-and-copy"], s["copy-on-write"]
                    name = f"{size} MiB THP {'on' if thp == 'always' else 'off'} {load}"
                    # Per GiB of memory in the core (the process's, with its
                    # libraries' data and the lttng-ust buffers it maps).
                    gib = a["memory_gib"]
                    checks.append((name, "(a) pause per GiB <= 0.5 s", a["pause_ms"] / 1000 / gib, a["pause_ms"] / 1000 / gib <= 0.5))
                    checks.append((name, "(a) stop-and-copy pause / plain (1 thread, nice 0), same run", a["pause_ms"] / p["pause_ms"], a["pause_ms"] < p["pause_ms"]))
                    if size == 1024:
                        k = s["fork()"]
                        checks.append((name, "(b) pause <= gcore/50", b["pause_ms"] / g["pause_ms"], b["pause_ms"] <= g["pause_ms"] / 50))
                        checks.append((name, "(b) pause <= 30 ms", b["pause_ms"], b["pause_ms"] <= 30))
                        checks.append((name, "(b) baseline: the process's own fork() call (ms) <= 30 ms", k["ours_ms"], k["ours_ms"] <= 30))
                        checks.append((name, "(b) baseline: our pause / its own fork() call", b["ours_ms"] / k["ours_ms"], None))
                        c = s["pre-copy"]
                        checks.append((name, "(c) pre-copy pause <= gcore/50", c["pause_ms"] / g["pause_ms"], c["pause_ms"] <= g["pause_ms"] / 50))
                        checks.append((name, "(c) pre-copy pause <= 30 ms", c["pause_ms"], c["pause_ms"] <= 30))
                        checks.append((name, "(c) pre-copy pause / copy-on-write pause, same run", c["pause_ms"] / b["pause_ms"], None))
                        d = s[BUDGETED]
                        checks.append((name, "(c) pre-copy as into the store (staging given, budgeted) pause <= gcore/50", d["pause_ms"] / g["pause_ms"], d["pause_ms"] <= g["pause_ms"] / 50))
                        checks.append((name, "(c) pre-copy budgeted, its longer stop (ours) / pre-copy's, same run", d["ours_ms"] / c["ours_ms"], None))
                        checks.append((name, "(c) pre-copy pause / the process's own fork() call", c["pause_ms"] / k["ours_ms"], None))
                    if args.baseline:
                        c, base = s["pre-copy"], s[BASELINE]
                        checks.append((name, "(c) pre-copy's final stop, its copy stage (ours) / the baseline's, same run", c["stages"]["copy"] / base["stages"]["copy"] if c["stages"] and base["stages"] else None, None))
                        checks.append((name, "(c) pre-copy's longer stop (ours) / the baseline's, same run", c["ours_ms"] / base["ours_ms"], None))
                        checks.append((name, "(c) pre-copy pause seen from inside / the baseline's, same run", c["pause_ms"] / base["pause_ms"], None))
                    null = s["stop-and-copy>null"]
                    gib = null["memory_gib"]
                    checks.append((name, "(a) copying alone (to /dev/null): pause per GiB <= 0.5 s", null["pause_ms"] / 1000 / gib, null["pause_ms"] / 1000 / gib <= 0.5))
                    checks.append((name, "(a) written during the stop (unbuffered): pause per GiB <= 0.5 s", u["pause_ms"] / 1000 / gib, u["pause_ms"] / 1000 / gib <= 0.5))
                    for m in ["stop-and-copy", "stop-and-copy plain", "stop-and-copy unbuffered", "copy-on-write", "pre-copy"]:
                        held = s[m]["buffer_mib"] or 0
                        checks.append((name, f"{m} dumper RSS <= 32 MiB + copy buffers (2 x 256 KiB) + the stop's buffer ({fmt(held)} MiB)", s[m]["rss_mib"], s[m]["rss_mib"] <= 32.5 + held))
                    sys.stdout.flush()
    print()
    print(f"# {(time.monotonic() - started) / 60:.1f} minutes; load average {os.getloadavg()[0]:.2f} at the end")
    print()
    print("## targets")
    print()
    print("| configuration | target | value | met |")
    print("| --- | --- | ---: | --- |")
    for name, what, value, ok in checks:
        print(f"| {name} | {what} | {fmt(value, 3)} | {'-' if ok is None else ('yes' if ok else 'NO')} |")


if __name__ == "__main__":
    main()
