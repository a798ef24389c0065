"""Measure 6: the fire latency of lttng_trigger() (our C API, in
liblttng_coredump) with 1, 10 and 50 registered OnAnyCoreDump triggers,
against the CLI equivalent, `lttng snapshot record` once per session, both
timed by bench-fire, alternating run by run."""

import os
import shutil

from .retention import LoadGenerator
from .system import (
    BUILD_DIR,
    DATA_DIR,
    REPO,
    ROOT_TRIGGERS_LOCK,
    TARGET_DIR,
    BenchError,
    Profile,
    build_c,
    cargo_build,
    hold_flock,
    run,
)

# The C library as users get it (`make -C capi install`: the SONAME'd
# library and the header), staged under the benchmark's build directory.
STAGE = BUILD_DIR / "capi-stage"
STAGED_PREFIX = "/usr"

# A traced program must be registered for the sessions to have buffers to
# snapshot; a light load keeps them from being empty without turning the
# fire into a disk benchmark.
IDLE_LOAD_RATE = 10_000


def library_reason():
    """None when liblttng_coredump exports lttng_trigger(), else why not."""
    try:
        cargo_build("lttng-coredump-capi", "--lib")
    except BenchError as e:
        return f"liblttng_coredump does not build: {e}"
    library = Profile.dir() / "liblttng_coredump.so"
    if not library.exists():
        return f"{library} was not built"
    symbols = run(["nm", "-D", "--defined-only", str(library)]).stdout.split()
    if "lttng_trigger" not in symbols or "lttng_trigger_set" not in symbols:
        return "not measured: liblttng_coredump exports no lttng_trigger()/lttng_trigger_set() yet"
    return None


def build_fire():
    shutil.rmtree(STAGE, ignore_errors=True)
    run(
        [
            "make",
            "-s",
            "-C",
            REPO / "capi",
            "install",
            f"DESTDIR={STAGE}",
            f"PREFIX={STAGED_PREFIX}",
            # Not the multiarch default: the program below looks in <prefix>/lib.
            f"LIBDIR={STAGED_PREFIX}/lib",
            f"PROFILE={Profile.make_profile()}",
            f"TARGET_DIR={TARGET_DIR}",
        ]
    )
    prefix = STAGE / STAGED_PREFIX.lstrip("/")
    return build_c(
        "bench-fire",
        ["fire.c"],
        [
            f"-I{prefix / 'include'}",
            f"-L{prefix / 'lib'}",
            f"-Wl,-rpath,{prefix / 'lib'}",
            "-llttng-coredump",
            "-llttng-ctl",
        ],
    )


def run_fire(trigger_counts, runs, programs, log):
    """{n: {"api": [ms], "cli": [ms], "api_failed": k, "cli_failed": k}},
    or the reason it could not be measured."""
    reason = library_reason()
    if reason:
        log(reason)
        return reason
    exe = build_fire()
    out_dir = DATA_DIR / "fire"
    results = {}
    # lttng_trigger() fires every OnAnyCoreDump trigger of the root daemon:
    # the tests' triggers stay out while we hold their lock.
    triggers_fd = hold_flock(ROOT_TRIGGERS_LOCK)
    try:
        with LoadGenerator(programs["loadgen"], IDLE_LOAD_RATE):
            for n in trigger_counts:
                prefix = f"bench-fire-{os.getpid()}-{n}"
                proc = run([exe, str(n), str(runs), prefix, out_dir], check=False, timeout=1800)
                series = {"api": [], "cli": [], "api_failed": 0, "cli_failed": 0}
                for line in proc.stdout.splitlines():
                    kind, ns, rc, snapshots = line.split()
                    # A fire counts only if every one of the n sessions got
                    # its snapshot.
                    if rc == "0" and int(snapshots) == n:
                        series[kind].append(int(ns) / 1e6)
                    else:
                        series[f"{kind}_failed"] += 1
                        log(f"fire {n} {kind}: returned {rc}, {snapshots}/{n} snapshots")
                if proc.returncode != 0:
                    raise BenchError(f"bench-fire {n}: {proc.stderr.strip()}")
                results[n] = series
                log(f"fire {n} triggers: api {series['api']} cli {series['cli']}")
    finally:
        os.close(triggers_fd)
        shutil.rmtree(out_dir, ignore_errors=True)
    return results
