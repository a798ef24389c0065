"""bench/run's entry point: builds the programs, owns the session and (a
round at a time, under the tests' lock) core_pattern, runs every measure
with the handlers interleaved run by run, and prints the table."""

import argparse
import datetime
import os
import platform
import shutil
import sys
import time

from . import report
from .crash import crash_once
from .handlers import CORE_PIPE_LIMIT, make_handlers
from .service import kernel_has_socket_mode, storm
from .retention import CRASHER_EVENTS, LoadGenerator, read_snapshot
from .system import (
    DATA_DIR,
    Profile,
    RSS_DIR,
    RUN_DIR,
    SAVED_FILE,
    BenchError,
    CorePatternOwner,
    SnapshotSession,
    build_programs,
    ensure_sessiond,
    exit_on_signals,
    run,
    single_bench_instance,
)
from . import ours as ours_build
from . import fire as fire_bench
from .recover import run_recover

LOAD_RATE = 1_200_000
# LTTng's own snapshots (bench-snapshot-floor) after each round of crashes.
FLOOR_PER_ROUND = 3
# How long --self-check (the test suite's) waits for a benchmark already
# running on the machine to end.
SELF_CHECK_WAIT = 1800
# Simultaneous crashes of the service's storm.
STORM = 20

MODES = {
    # sizes (MiB) and runs per handler at each size
    "full": dict(
        fills=("random", "zero"),
        runs={1: 11, 64: 9, 512: 7, 2048: 7},
        retention_mb=2048,
        retention_runs=10,
        fire_triggers=(1, 10, 50),
        fire_runs=10,
        recover_mb=2048,
        recover_runs=5,
    ),
    "quick": dict(
        fills=("random", "zero"),
        runs={1: 7, 64: 5},
        retention_mb=512,
        retention_runs=3,
        fire_triggers=(1, 10),
        fire_runs=5,
        recover_mb=512,
        recover_runs=3,
    ),
    "self-check": dict(
        fills=("random",),
        runs={1: 2},
        retention_mb=16,
        retention_runs=2,
        fire_triggers=(1,),
        fire_runs=2,
        recover_mb=16,
        recover_runs=2,
    ),
}


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def snapshot_floor(programs, session, tag):
    """What LTTng itself takes to record one snapshot of the bench session
    as it is now (its buffers as the round's crashes left them), to our
    snapshot's output, under a name, as our handler records: ms, one per
    record of FLOOR_PER_ROUND in a loop in one process."""
    out = run([programs["floor"], session.name, tag, str(FLOOR_PER_ROUND)]).stdout
    session.clear_snapshots()
    return [int(line.split("=", 1)[1]) / 1e6 for line in out.split()]


def run_crashes(mode, handlers, programs, session):
    """Measures 1, 2, 4 and 5: every size, each round crashing once under
    every handler in turn (A B C D E A B C D E ...); after each round,
    LTTng's own snapshot cost (the floor of crash-to-snapshot)."""
    crash = {}
    floors = {}
    for fill in mode["fills"]:
        for size_mb, runs in mode["runs"].items():
            results = {h.key: [] for h in handlers}
            failures = {h.key: [] for h in handlers}
            floor = floors.setdefault((fill, size_mb), [])
            for r in range(runs):
                with CorePatternOwner() as owner:
                    for h in handlers:
                        owner.set(h.pattern, CORE_PIPE_LIMIT)
                        tag = f"{os.getpid()}-{fill}-{size_mb}-{r}-{h.key}"
                        try:
                            result = crash_once(h, programs, session, tag, CRASHER_EVENTS, size_mb, fill)
                            results[h.key].append(result)
                            if result.snapshot_error:
                                log(f"no snapshot time: {result.snapshot_error}")
                        except BenchError as e:
                            failures[h.key].append(str(e))
                            log(f"FAILED {h.label} {fill} {size_mb} MiB: {e}")
                        finally:
                            session.clear_snapshots()
                try:
                    floor.extend(snapshot_floor(programs, session, f"floor-{os.getpid()}-{r}"))
                except BenchError as e:
                    log(f"FAILED the snapshot floor: {e}")
                log(
                    f"{fill} {size_mb} MiB round {r + 1}/{runs}: "
                    + " ".join(
                        f"{h.key}={results[h.key][-1].reap_ms:.1f}ms" for h in handlers if len(results[h.key]) > r
                    )
                )
            crash[(fill, size_mb)] = (results, {k: v for k, v in failures.items() if v})
    return crash, floors


def run_retention(mode, handlers, programs, session):
    """Measure 3, with the handlers that take snapshots, interleaved."""
    subjects = [h for h in handlers if h.snapshots and h.retention]
    kept = {h.key: [] for h in subjects}
    failures = {h.key: [] for h in subjects}
    trace_rates = []
    size_mb = mode["retention_mb"]
    with LoadGenerator(programs["loadgen"], LOAD_RATE) as load:
        for r in range(mode["retention_runs"]):
            with CorePatternOwner() as owner:
                for h in subjects:
                    owner.set(h.pattern, CORE_PIPE_LIMIT)
                    tag = f"{os.getpid()}-retention-{r}-{h.key}"
                    try:
                        result = crash_once(h, programs, session, tag, CRASHER_EVENTS, size_mb, "random")
                        if not result.snapshot_dirs:
                            raise BenchError(result.snapshot_error or f"{h.label}: no snapshot")
                        seqs, rate = read_snapshot(result.snapshot_dirs, tag)
                        kept[h.key].append(len(seqs))
                        trace_rates.append(rate)
                    except BenchError as e:
                        failures[h.key].append(str(e))
                        log(f"FAILED retention {h.label}: {e}")
                    finally:
                        session.clear_snapshots()
            log(f"retention round {r + 1}: " + " ".join(f"{k}={v[-1]}" for k, v in kept.items() if v))
    stats = load.stats or {}
    return dict(
        kept={k: v for k, v in kept.items()},
        failures={k: v for k, v in failures.items() if v},
        size_mb=size_mb,
        runs=mode["retention_runs"],
        load_rate=float(stats.get("rate", 0)),
        load_min_1s=float(stats.get("min_1s_rate", 0)),
        trace_rate=report.median(trace_rates),
    )


def machine_line():
    cpu = "?"
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / (1 << 30)
    lttng = run(["lttng", "--version"]).stdout.strip()
    return f"{os.cpu_count()} x {cpu}, {mem_gib:.0f} GiB RAM, Linux {platform.release()}, {lttng}"


def other_builds(parser, option, specs, prefix):
    """`option`'s LABEL=BINARY values as (key, label, binary), each key
    `prefix` and its rank."""
    builds = []
    for i, spec in enumerate(specs):
        label, sep, binary = spec.partition("=")
        if not sep or not label or not os.access(binary, os.X_OK):
            parser.error(f"{option} {spec!r}: want LABEL=BINARY, an executable")
        builds.append((f"{prefix}{i}", label, binary))
    return builds


def main():
    parser = argparse.ArgumentParser(prog="bench/run", description=__doc__)
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--quick", action="store_true", help="small sizes, few runs (under two minutes)")
    group.add_argument("--self-check", action="store_true", help="one 1 MiB crash per handler: checks the harness works")
    parser.add_argument(
        "--extra-ours",
        action="append",
        default=[],
        metavar="LABEL=BINARY",
        help="also measure another build of lttng-coredump (default configuration), e.g. a candidate fix",
    )
    parser.add_argument(
        "--extra-serve",
        action="append",
        default=[],
        metavar="LABEL=BINARY",
        help="also measure another build's `serve` in socket mode (ours socket's configuration), e.g. the build "
        "before a change",
    )
    parser.add_argument(
        "--sizes",
        metavar="MIB,...",
        help="measure these memory sizes (MiB) instead of the mode's (5 runs for a size the mode lacks)",
    )
    args = parser.parse_args()
    extra_ours = other_builds(parser, "--extra-ours", args.extra_ours, "x")
    for key, label, _binary in extra_ours:
        report.add_variant_of_ours(key, label)
    extra_serve = other_builds(parser, "--extra-serve", args.extra_serve, "sockx")
    mode_name = "quick" if args.quick else "self-check" if args.self_check else "full"
    mode = dict(MODES[mode_name])
    if args.sizes:
        try:
            sizes = [int(x) for x in args.sizes.split(",")]
        except ValueError:
            parser.error(f"--sizes {args.sizes!r}: want MiB values separated by commas")
        mode["runs"] = {size: mode["runs"].get(size, 5) for size in sizes}

    if os.geteuid() != 0:
        sys.exit("bench/run needs root (it sets core_pattern)")
    # The self-check runs inside the test suite: it measures the debug build
    # the suite has just made instead of building a release one.
    Profile.release = not args.self_check
    exit_on_signals()
    single_bench_instance(wait_seconds=SELF_CHECK_WAIT if args.self_check else 0)
    started = time.monotonic()
    load_start = os.getloadavg()

    RUN_DIR.mkdir(mode=0o755, parents=True, exist_ok=True)
    RSS_DIR.mkdir(parents=True, exist_ok=True)
    DATA_DIR.mkdir(mode=0o755, parents=True, exist_ok=True)
    log("building the benchmark programs and our handler")
    programs = build_programs()
    ours_binary, ours_missing = ours_build.handler_binary()
    if ours_missing:
        log(f"ours is not measured: {ours_missing}")
    if ours_binary is not None:
        report.add_variant_of_ours("nocheck", "ours check off")
        report.add_variant_of_ours("noreport", "ours report off")
    socket_mode = ours_binary is not None and kernel_has_socket_mode()
    if socket_mode:
        report.add_baseline_column("scat", "socket cat")
        report.add_variant_of_ours("sock", "ours socket")
        report.add_variant_of_ours("sockz", "ours socket zstd")
        for key, label, _binary in extra_serve:
            report.add_variant_of_ours(key, label)
    started_sessiond = ensure_sessiond()
    if started_sessiond:
        log("started a root session daemon (lttng-sessiond --daemonize --no-kernel)")

    session_name = f"bench-{os.getpid()}"
    services = []
    socket_cats = []
    service_notes = []
    try:
        with SnapshotSession(session_name, DATA_DIR / "snapshots" / session_name) as session:
            handlers, services, socket_cats = make_handlers(
                programs, session_name, ours_binary, extra_ours, extra_serve if socket_mode else ()
            )
            at_rest = [s.rss_kib() for s in services]
            log("handlers: " + ", ".join(h.label for h in handlers) + f"; mode {mode_name}")
            crash, floors = run_crashes(mode, handlers, programs, session)
            retention = run_retention(mode, handlers, programs, session)
            for service, rest, handler in zip(services, at_rest, [h for h in handlers if h.key in ("sock", "sockz")]):
                over_run = service.peak_rss_kib()
                after_run = service.rss_kib()
                handler.clear()
                with CorePatternOwner() as owner:
                    owner.set(handler.pattern, CORE_PIPE_LIMIT)
                    in_storm = storm(service, programs["crasher"], handler.core_dir, STORM, f"{os.getpid()}-storm-{handler.key}", 1)
                after_storm = service.rss_kib()
                children = service.children_rss_kib()
                handler.clear()
                session.clear_snapshots()
                service_notes.append(
                    f"{handler.label} service RSS: {rest / 1024:.1f} MiB at rest, peak {over_run / 1024:.1f} MiB over the "
                    f"run's crashes and {after_run / 1024:.1f} MiB after them, peak {in_storm / 1024:.1f} MiB over a storm "
                    f"of {STORM} simultaneous 1 MiB crashes and {after_storm / 1024:.1f} MiB after it (VmHWM, VmRSS); "
                    f"its resident children after the storm: {len(children)}, "
                    f"{' + '.join(f'{c / 1024:.1f}' for c in children) or '0'} MiB (VmRSS, pages shared with the "
                    "service counted in each)."
                )
                log(service_notes[-1])
            recovered = run_recover(mode["recover_mb"], mode["recover_runs"], programs, session, ours_binary, log)
        fire = fire_bench.run_fire(mode["fire_triggers"], mode["fire_runs"], programs, log)
    finally:
        for service in services:
            service.stop()
        for socket_cat in socket_cats:
            socket_cat.stop()
        shutil.rmtree(DATA_DIR, ignore_errors=True)
        # Every round has restored core_pattern by now, unless restoring
        # failed: then bench/run needs the values saved in RUN_DIR.
        if not SAVED_FILE.exists():
            shutil.rmtree(RUN_DIR, ignore_errors=True)

    elapsed = time.monotonic() - started
    load_end = os.getloadavg()
    notes = [
        f"lttng-coredump benchmark, mode {mode_name} (`bench/run{''.join(' ' + a for a in sys.argv[1:])}`), "
        f"{datetime.datetime.now().strftime('%Y-%m-%d %H:%M')}, {elapsed / 60:.1f} min",
        f"machine: {machine_line()}; load average {load_start[0]:.2f} at the start, {load_end[0]:.2f} at the end "
        "(other work on the machine shows up as spread)",
        "cells: median [min–max] over n runs per handler; handlers interleaved run by run; ratios are of medians.",
        "cat = `|sh: cat > core` pipe; kernel = core_pattern is a path; seed = our sh script from seed 000: cat the core, "
        "then `lttng snapshot record`; ours = `lttng-coredump handle`, default configuration (core_dir and the "
        "bench session named); ours zstd = the same with compression = \"zstd\".",
        f"core_pipe_limit = {CORE_PIPE_LIMIT} for every pipe handler; every pipe handler runs under "
        "bench-rusage-wrap (peak RSS = wait4 ru_maxrss of the handler's process tree).",
        "crash instant = CLOCK_MONOTONIC/REALTIME read by the crasher just before it faults; "
        "reap = its parent's waitpid() returning; snapshot = `lttng snapshot record` returned (seed) or the "
        "end of the snapshot stage in the crash record, stages.snapshots.ended_unix_us (ours).",
    ]
    if socket_mode:
        notes.append(
            "ours socket = `lttng-coredump serve`, the resident service, with core_pattern `@@SOCKET` (the kernel's "
            "request protocol; each crash handled by a process of its own, `serve --crash-on-stdin`, started before "
            "the crash comes and handed its connection; the session daemons are asked by resident children the "
            "service keeps, one per identity), same configuration as ours; ours socket zstd = the same "
            "with compression = \"zstd\" (stored raw, compressed after the process is let go). No wrapper: no "
            "handler RSS per crash; the service's RSS is below. socket cat = bench-socket-cat on `@@SOCKET2`: "
            "acknowledges the request, then read()s the core into a file 64 KiB at a time, nothing else (the floor of "
            "a socket-mode service that saves the core)."
        )
        notes.extend(service_notes)
    if ours_binary is not None:
        notes.append(
            "ours check off = ours with check_core_trace = false: ours scans the saved core for the LTTng-UST "
            "buffers it holds once the process is let go (the bench session traces the crasher, so its cores hold "
            "them); the row \"crash-to-reap, core trace check on ÷ off\" compares the two, measured in the same "
            "rounds, and the stage row gives the check's own time (after the reap)."
        )
        notes.append(
            "ours report off = ours with report = false: ours analyzes the saved core (every thread's backtrace, "
            "libdwfl, in a child acting as the crashing user) once the process is let go; the row \"crash-to-reap, "
            "report on ÷ off\" compares the two in the same rounds, the stage row gives the report's own time."
        )
    if ours_missing:
        notes.append(f"ours not measured: {ours_missing}")
    for _key, label, binary in extra_serve if socket_mode else ():
        notes.append(f"{label} = another build's `serve`, {binary}, on a socket of its own, configured as ours socket.")
    for _key, label, binary in extra_ours:
        notes.append(f"{label} = another build of ours, {binary}, with the default configuration (as ours).")
    if retention:
        notes.append(
            f"load generator: asked {LOAD_RATE / 1e6:.1f} M events/s; kept {report.num(retention['load_rate'] / 1e6)} M/s "
            f"on average, slowest second {report.num(retention['load_min_1s'] / 1e6)} M/s; the snapshots show "
            f"{report.num((retention['trace_rate'] or 0) / 1e6)} M/s (median); session: snapshot mode, "
            "per-uid buffers, 4 x 512 KiB sub-buffers per CPU (defaults)."
        )
    print(report.render(notes, crash, lambda size: mode["runs"][size], retention, fire, recovered, floors))
    if args.self_check:
        problems = self_check_problems(crash, retention, fire, ours_missing, recovered)
        if problems:
            sys.exit("bench/run --self-check: the harness did not measure everything:\n  " + "\n  ".join(problems))
        print("self-check: every handler measured every measure")


def self_check_problems(crash, retention, fire, ours_missing, recovered=None):
    """What a working harness should have measured and did not: every
    handler, at least once, in every measure (a single failed run is the
    handler's business and is in the table; none at all is the harness's)."""
    problems = [ours_missing] if ours_missing else []
    for key, (results, failures) in crash.items():
        for handler, rs in results.items():
            errors = failures.get(handler, [])
            if not rs:
                problems.append(f"{handler} {key}: no run succeeded: {errors}")
            elif any(r.snapshot_error for r in rs) and all(r.snapshot_ms is None for r in rs):
                problems.append(f"{handler} {key}: no snapshot time: {[r.snapshot_error for r in rs]}")
    for handler, kept in retention["kept"].items():
        if not kept:
            problems.append(f"retention {handler}: no run succeeded: {retention['failures'].get(handler)}")
    if isinstance(recovered, str) or not (recovered or {}).get("seconds"):
        problems.append(f"recover: not measured: {recovered}")
    if isinstance(fire, str):
        problems.append(fire)
    else:
        for n, series in fire.items():
            if not series["api"] or not series["cli"]:
                problems.append(f"fire {n}: no successful run")
    return problems


if __name__ == "__main__":
    try:
        main()
    except BenchError as e:
        sys.exit(f"bench/run: {e}")
