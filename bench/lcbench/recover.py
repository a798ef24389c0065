"""`lttng-coredump recover` on a large core: the kernel writes the core of a
traced crasher (its buffers are in it), then recover reads it back into a
trace, from the page cache (the core is read once before), several times.
Throughput = the core's size over recover's wall time: it reads only each
segment's first bytes and the buffers, so it may exceed the disk's rate.
The same core compressed with zstd (as the handler can store it) is
measured too: recover decodes it whole."""

import shutil
import time

from .handlers import CORE_PIPE_LIMIT
from .system import DATA_DIR, BenchError, CorePatternOwner, run

EVENTS = 1000


def _warm(path):
    with open(path, "rb") as f:
        while f.read(16 << 20):
            pass


def run_recover(size_mb, runs, programs, session, ours_binary, log):
    """The recover measures, or a string saying why there are none."""
    if ours_binary is None:
        return "ours not built"
    work = DATA_DIR / "recover"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(mode=0o755, parents=True)
    cores = work / "cores"
    cores.mkdir(mode=0o755)
    tag = f"recover-{size_mb}"
    with CorePatternOwner() as owner:
        owner.set(f"{cores}/core.%p", CORE_PIPE_LIMIT)
        proc = run(
            [programs["reap"], programs["crasher"], "--stamp-fd", "3", tag, str(EVENTS), "segv", str(size_mb), "random"],
            timeout=600,
        )
    files = list(cores.iterdir())
    if len(files) != 1:
        raise BenchError(f"recover: expected one core in {cores}, found {[f.name for f in files]}: {proc.stdout}")
    core = files[0]
    size = core.stat().st_size
    _warm(core)
    statuses = set()

    def measure(path, trace_prefix, variant):
        """Runs recover on `path` `runs` times; returns each run's wall time
        in seconds. `variant` names the core's form in the messages
        ("zstd"), or is empty for the plain core."""
        seconds = []
        for r in range(runs):
            out = work / f"{trace_prefix}-{r}"
            started = time.monotonic()
            result = run(
                [str(ours_binary), "recover", str(path), "-o", str(out), "--search", str(session.output_dir)],
                check=False,
                timeout=600,
            )
            elapsed = time.monotonic() - started
            statuses.add(result.returncode)
            if result.returncode not in (0, 3):
                what = f"recover ({variant})" if variant else "recover"
                raise BenchError(f"{what} exited {result.returncode}: {result.stdout}{result.stderr}")
            seconds.append(elapsed)
            shutil.rmtree(out, ignore_errors=True)
            form = f", {variant}," if variant else ""
            log(f"recover {size / (1 << 20):.0f} MiB core{form} run {r + 1}/{runs}: {elapsed * 1000:.0f} ms")
        return seconds

    seconds = measure(core, "trace", "")
    # The same core compressed as the handler stores it (zstd, level 3):
    # recover then decodes it whole, forward only.
    zst = work / "core.zst"
    run(["zstd", "-q", "-3", "-T0", str(core), "-o", str(zst)], timeout=600)
    _warm(zst)
    zstd_seconds = measure(zst, "trace-zst", "zstd")
    shutil.rmtree(work, ignore_errors=True)
    return dict(size=size, seconds=seconds, zstd_seconds=zstd_seconds, statuses=sorted(statuses))
