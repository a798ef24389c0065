"""The handlers compared, each as a core_pattern line, the directory its
cores go to, and how to read back what it did for one crash: the core file
and the moment its snapshot was recorded.

Every pipe handler runs under bench-rusage-wrap (installed as RUN_DIR/w),
which measures its peak RSS; the wrapper's cost is the same for all of them.
"""

import json
import os
from dataclasses import dataclass
from pathlib import Path

from .service import Service, SocketCat, kernel_has_socket_mode
from .system import DATA_DIR, RUN_DIR, BenchError, install_file, root_records

# The same for every pipe handler: non-zero, so that the kernel waits for
# the handler to finish before it reaps the crashed process (and with it
# the process's /proc entries, which a handler reads).
CORE_PIPE_LIMIT = 16

# Where our handler's crash record times its stages (wall clock, in
# microseconds since the epoch): `stages.snapshots.ended_unix_us` is when
# the snapshots were done.
STAGES_FIELD = "stages"

# What our handler's line passes it (see handler/src/crash/context.rs).
OURS_SPECIFIERS = "P=%P u=%u g=%g s=%s t=%t c=%c d=%d F=%F h=%h e=%e E=%E"


@dataclass
class Handler:
    key: str
    label: str
    pattern: str
    core_dir: Path
    piped: bool
    snapshots: bool
    # Measured in the retention rounds too (a variant that only differs
    # after the process is let go tells nothing new there).
    retention: bool = True

    def prepare(self):
        self.core_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.core_dir, 0o755)

    def clear(self):
        for p in self.core_dir.iterdir():
            if p.is_dir():
                raise BenchError(f"unexpected directory {p} in {self.core_dir}")
            p.unlink()

    def core_files(self):
        """The core(s) this crash left (a handler may name them its way)."""
        return [
            p
            for p in self.core_dir.iterdir()
            # Not the handler's hidden bookkeeping (its ledger) nor records.
            if p.is_file()
            and not p.name.startswith((".", "snapshot-done."))
            and p.suffix != ".json"
        ]

    def snapshot_done_real_ns(self, pid):
        """When the snapshot was recorded; None when the handler takes none."""
        if not self.snapshots:
            return None
        if self.key == "seed":
            done = self.core_dir / f"snapshot-done.{pid}"
            if not done.exists():
                raise BenchError(f"seed handler left no {done.name}")
            ns, status = done.read_text().split()
            if status != "0":
                raise BenchError(f"seed handler: lttng snapshot record exited {status}")
            return int(ns)
        return self.stages()["snapshots"][1] * 1000

    def stages(self):
        """Our handler's stages for the crash just done, from its record:
        {name: (started_unix_us, ended_unix_us)}."""
        record, path = self.crash_record()
        stages = record.get(STAGES_FIELD)
        try:
            return {
                name: (int(times["started_unix_us"]), int(times["ended_unix_us"]))
                for name, times in stages.items()
            }
        except (AttributeError, KeyError, TypeError, ValueError):
            raise BenchError(f"{self.label}: the crash record {path} has no readable {STAGES_FIELD}") from None

    def crash_record(self):
        """Our handler's crash record for the crash just done, and its path."""
        # Root's record, not a crashing user's copy (.user.json) nor the report.
        records = root_records(self.core_dir)
        if len(records) != 1:
            raise BenchError(f"{self.label}: expected one crash record in {self.core_dir}, found {len(records)}")
        return json.loads(records[0].read_text()), records[0]

    def why_no_snapshot(self):
        """What our handler's record says went wrong (for the log)."""
        if self.key != "seed":
            try:
                record, _ = self.crash_record()
                return "; the record's errors: " + " | ".join(record.get("errors", []))[:600]
            except (BenchError, ValueError) as e:
                return f"; no readable record: {e}"
        return ""


def write_ours_config(name, core_dir, session, compression, extra=()):
    """Our handler's configuration: the defaults, but for where cores go,
    the session to snapshot (the seed's script names its session too; and
    naming it keeps other engineers' sessions on this machine out of the
    measurement) and, for some variants, compression or `extra` lines."""
    lines = [
        f'core_dir = "{core_dir}"',
        f'snapshot_sessions = ["{session}"]',
    ]
    if compression:
        lines.append(f'compression = "{compression}"')
    lines.extend(extra)
    path = RUN_DIR / name
    path.write_text("\n".join(lines) + "\n")
    os.chmod(path, 0o644)
    return path


def make_handlers(programs, session, ours_binary, extra_ours=(), extra_serve=()):
    """The handlers (the five, ours in socket mode when the kernel has it,
    and any extra builds of ours given as (key, label, binary), in pipe
    mode, and of `serve` in socket mode, `extra_serve`) in the order
    they run in each round, and the crash services started for socket mode
    (the caller stops them)."""
    wrap = install_file(programs["wrap"], "w")
    cat = install_file(Path(__file__).resolve().parents[1] / "cat-handler.sh", "c")
    seed = install_file(Path(__file__).resolve().parents[1] / "seed-handler.sh", "s")
    cores = DATA_DIR / "cores"
    handlers = [
        Handler("cat", "cat", f"|{wrap} {cat} {cores}/cat %p", cores / "cat", True, False),
        Handler("kernel", "kernel", f"{cores}/kernel/core.%p", cores / "kernel", False, False),
        Handler(
            "seed", "seed", f"|{wrap} {seed} {cores}/seed {session} %p", cores / "seed", True, True
        ),
    ]
    if ours_binary is not None:
        ours = install_file(ours_binary, "h")
        for key, label, config_name, compression in (
            ("ours", "ours", "d.toml", None),
            ("zstd", "ours zstd", "z.toml", "zstd"),
        ):
            core_dir = cores / key
            config = write_ours_config(config_name, core_dir, session, compression)
            pattern = f"|{wrap} {ours} handle --config {config} {OURS_SPECIFIERS}"
            handlers.append(Handler(key, label, pattern, core_dir, True, True))
        # The check of the trace a core holds (check_core_trace, on by
        # default) turned off: crash-to-reap with it on (ours) and off.
        core_dir = cores / "nocheck"
        config = write_ours_config("n.toml", core_dir, session, None, ["check_core_trace = false"])
        pattern = f"|{wrap} {ours} handle --config {config} {OURS_SPECIFIERS}"
        handlers.append(Handler("nocheck", "ours check off", pattern, core_dir, True, True, retention=False))
        # The crash report (report, on by default) turned off: crash-to-reap
        # with it on (ours) and off; the report runs after the reap.
        core_dir = cores / "noreport"
        config = write_ours_config("r.toml", core_dir, session, None, ["report = false"])
        pattern = f"|{wrap} {ours} handle --config {config} {OURS_SPECIFIERS}"
        handlers.append(Handler("noreport", "ours report off", pattern, core_dir, True, True, retention=False))
    services = []
    socket_cats = []
    if ours_binary is not None and kernel_has_socket_mode():
        # The floor of a socket-mode service: a plain reader of the core.
        core_dir = cores / "scat"
        socket_path = RUN_DIR / "scat.d" / "s"
        socket_cats.append(SocketCat(programs["socket_cat"], socket_path, core_dir))
        handlers.append(Handler("scat", "socket cat", f"@@{socket_path}", core_dir, False, False))
        # The service is measured in socket mode (`@@`), each variant with
        # its own service and socket.
        for key, label, config_name, compression in (
            ("sock", "ours socket", "sd.toml", None),
            ("sockz", "ours socket zstd", "sz.toml", "zstd"),
        ):
            core_dir = cores / key
            config = write_ours_config(config_name, core_dir, session, compression)
            socket_path = RUN_DIR / f"{key}.d" / "s"
            service = Service(ours, socket_path, config, RUN_DIR / f"{key}.log", RUN_DIR / "no.bkp")
            services.append(service)
            handlers.append(Handler(key, label, f"@@{socket_path}", core_dir, False, True))
        for key, label, binary in extra_serve:
            exe = install_file(binary, key)
            core_dir = cores / key
            config = write_ours_config(f"{key}.toml", core_dir, session, None)
            socket_path = RUN_DIR / f"{key}.d" / "s"
            services.append(Service(exe, socket_path, config, RUN_DIR / f"{key}.log", RUN_DIR / "no.bkp"))
            handlers.append(Handler(key, label, f"@@{socket_path}", core_dir, False, True, retention=False))
    for key, label, binary in extra_ours:
        exe = install_file(binary, key)
        core_dir = cores / key
        config = write_ours_config(f"{key}.toml", core_dir, session, None)
        pattern = f"|{wrap} {exe} handle --config {config} {OURS_SPECIFIERS}"
        handlers.append(Handler(key, label, pattern, core_dir, True, True))
    for h in handlers:
        h.prepare()
    return handlers, services, socket_cats
