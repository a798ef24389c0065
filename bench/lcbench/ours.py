"""Our handler, built in release mode (as users install it) from this
checkout, or the reason it cannot be measured yet."""

from .system import REPO, BenchError, cargo_build, run

HANDLER_EXE = REPO / "target" / "release" / "lttng-coredump"


def handler_binary():
    """(path, None) when the handler builds and has its `handle`
    subcommand, else (None, why)."""
    try:
        cargo_build("lttng-coredump-handler", "--bin", "lttng-coredump")
    except BenchError as e:
        return None, f"the handler does not build: {e}"
    # `--help` only: `handle` itself would wait for a core on stdin.
    out = run([str(HANDLER_EXE), "--help"], check=False)
    if "handle" not in out.stdout + out.stderr:
        return None, "the lttng-coredump binary of this checkout has no `handle` subcommand yet"
    return HANDLER_EXE, None
