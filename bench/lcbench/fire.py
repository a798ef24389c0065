"""Measure 6: the fire latency of lttng_trigger() (our C API, in
liblttng_coredump) with 1, 10 and 50 registered OnAnyCoreDump triggers,
against the CLI equivalent, `lttng snapshot record` once per session, both
timed by bench-fire, alternating run by run."""

from .system import REPO, BenchError, cargo_build, run

LIBRARY = REPO / "target" / "release" / "liblttng_coredump.so"


def library_reason():
    """None when liblttng_coredump exports lttng_trigger(), else why not."""
    try:
        cargo_build("lttng-coredump", "--lib")
    except BenchError as e:
        return f"liblttng_coredump does not build: {e}"
    if not LIBRARY.exists():
        return f"{LIBRARY} was not built"
    symbols = run(["nm", "-D", "--defined-only", str(LIBRARY)]).stdout.split()
    if "lttng_trigger" not in symbols or "lttng_trigger_set" not in symbols:
        return "not measured: liblttng_coredump exports no lttng_trigger()/lttng_trigger_set() yet"
    return None


def run_fire(trigger_counts, runs, programs, log):
    reason = library_reason()
    if reason:
        log(reason)
        return reason
    raise BenchError("bench-fire is not written yet")
