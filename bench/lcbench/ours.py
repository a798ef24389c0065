"""Our handler, built from this checkout (in release mode, as users
install it, but for the self-check), or the reason it cannot be measured."""

from .system import BenchError, Profile, cargo_build, run


def handler_binary():
    """(path, None) when the handler builds and has its `handle`
    subcommand, else (None, why)."""
    try:
        cargo_build("lttng-coredump", "--bin", "lttng-coredump")
    except BenchError as e:
        return None, f"the handler does not build: {e}"
    exe = Profile.dir() / "lttng-coredump"
    # `--help` only: `handle` itself would wait for a core on stdin.
    out = run([str(exe), "--help"], check=False)
    if "handle" not in out.stdout + out.stderr:
        return None, "the lttng-coredump binary of this checkout has no `handle` subcommand yet"
    return exe, None
