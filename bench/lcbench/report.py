"""The one table the benchmark prints (Markdown, so it pastes into
BENCHMARKS.md as is): each measure's median and spread for every handler,
the ratios of ours to each baseline measured in the same run, and whether
each target of issue 5 is met."""

import statistics

BASELINES = ("cat", "kernel", "seed")
# Our handler's variants; --extra-ours adds builds to compare.
OURS = ["ours", "zstd"]
COLUMNS = ["cat", "kernel", "seed", "ours", "zstd"]
LABELS = {"cat": "cat", "kernel": "kernel", "seed": "seed", "ours": "ours", "zstd": "ours zstd"}


def add_variant_of_ours(key, label):
    OURS.append(key)
    COLUMNS.append(key)
    LABELS[key] = label


def add_baseline_column(key, label):
    """A column measured like a baseline but not ratioed in every row (the
    table is wide enough): `crash_rows` gives ours in socket mode a row of
    ratios to it."""
    COLUMNS.insert(COLUMNS.index("seed") + 1, key)
    LABELS[key] = label


def no_ratios():
    return ["—"] * (len(OURS) * len(BASELINES))

MIB = 1 << 20
RSS_TARGET_MIB = 16
# Issue 20: the handler's process tree with the crash report (its analysis
# child counts) at most this.
RSS_REPORT_TARGET_MIB = 32
SNAPSHOT_TARGET_MS = 10
REAP_TARGET_RATIO = 1.1


def num(x):
    """A figure with about three significant digits."""
    if x is None:
        return "—"
    if isinstance(x, int) or (isinstance(x, float) and x.is_integer() and (x == 0 or abs(x) >= 100)):
        return f"{int(x)}"
    a = abs(x)
    if a >= 100:
        return f"{x:.0f}"
    if a >= 10:
        return f"{x:.1f}"
    if a >= 1:
        return f"{x:.2f}"
    return f"{x:.3f}"


def median(values):
    return statistics.median(values) if values else None


def cell(values, failed=0):
    """median [min–max], and how many runs failed, if any."""
    if not values:
        text = "—" if not failed else "failed"
    elif len(values) == 1:
        text = num(values[0])
    else:
        text = f"{num(median(values))} [{num(min(values))}–{num(max(values))}]"
    if failed:
        text += f" ({failed} failed)"
    return text


def ratio(ours, base):
    m_o, m_b = median(ours), median(base)
    if m_o is None or m_b is None or m_b == 0:
        return "—"
    return f"{m_o / m_b:.2f}x"


def size_label(fill, size_mb, core_mib=None):
    text = f"{size_mb} MiB {fill} memory"
    if core_mib is not None:
        text += f" (core {num(core_mib)} MiB)"
    return text


class Table:
    def __init__(self):
        self.rows = []

    def add(self, measure, case, cells, ratios, target):
        self.rows.append([measure, case, *[cells.get(k, "—") for k in COLUMNS], *ratios, target])

    def markdown(self):
        head = ["measure", "case", *[LABELS[k] for k in COLUMNS]]
        head += [f"{LABELS[o]} ÷ {b}" for o in OURS for b in BASELINES]
        head.append("target")
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(row) + " |" for row in self.rows]
        return "\n".join(lines)


def _ratios(series):
    return [ratio(series.get(o, []), series.get(b, [])) for o in OURS for b in BASELINES]


def _met(ok):
    return "met" if ok else "MISSED"


def _per_variant(series, check):
    """'ours met; ours zstd MISSED' for the variants that ran."""
    parts = []
    for o in OURS:
        if series.get(o):
            parts.append(f"{LABELS[o]} {_met(check(series[o]))}")
    return "; ".join(parts) if parts else "not measured"


def crash_rows(table, crash, runs_of, floors=None):
    keys = sorted(crash, key=lambda k: (k[0] != "random", k[1]))

    def gather(key, attr, scale=1.0):
        results, failures = crash[key]
        series = {h: [getattr(r, attr) * scale for r in rs if getattr(r, attr) is not None] for h, rs in results.items()}
        failed = {h: len(f) for h, f in failures.items()}
        return series, failed

    def core_mib(key):
        sizes, _ = gather(key, "core_bytes", 1 / MIB)
        return median(sizes.get("cat", []) or sizes.get("kernel", []))

    for key in keys:
        series, failed = gather(key, "reap_ms")
        cells = {h: cell(series.get(h, []), failed.get(h, 0)) for h in COLUMNS if h in series or h in failed}

        def reap_ok(values, series=series):
            m = median(values)
            return (
                m is not None
                and median(series.get("cat", [])) is not None
                and median(series.get("seed", [])) is not None
                and m <= REAP_TARGET_RATIO * median(series["cat"])
                and m < median(series["seed"])
            )

        target = f"≤{REAP_TARGET_RATIO}x cat and < seed: " + _per_variant(series, reap_ok)
        table.add("crash-to-reap (ms)", f"{size_label(*key, core_mib(key))}, n={runs_of(key[1])}", cells, _ratios(series), target)

    for key in keys:
        series, _ = gather(key, "reap_ms")
        if not series.get("scat"):
            continue
        cells = {
            h: f"{ratio(series[h], series['scat'])} ({num(median(series[h]))} ms)"
            for h in OURS
            if h.startswith("sock") and series.get(h)
        }
        cells["cat"] = f"{ratio(series['cat'], series['scat'])} ({num(median(series['cat']))} ms)" if series.get("cat") else "—"
        table.add(
            "crash-to-reap ÷ socket cat (a plain reader of the socket: the kernel's socket transport is in both)",
            f"{size_label(*key)}; socket cat {num(median(series['scat']))} ms",
            cells,
            no_ratios(),
            "—",
        )

    for key in keys:
        series, failed = gather(key, "snapshot_ms")
        for h, rs in crash[key][0].items():
            failed[h] = failed.get(h, 0) + sum(1 for r in rs if r.snapshot_error)
        cells = {h: cell(series.get(h, []), failed.get(h, 0)) for h in ("seed", *OURS) if h in series or h in failed}
        target = f"median < {SNAPSHOT_TARGET_MS} ms: " + _per_variant(series, lambda v: median(v) < SNAPSHOT_TARGET_MS)
        table.add("crash-to-snapshot (ms)", size_label(*key), cells, _ratios(series), target)

    for key in keys:
        floor = (floors or {}).get(key)
        if not floor:
            continue
        series, _ = gather(key, "snapshot_ms")
        cells = {h: f"{ratio(series[h], floor)} ({num(median(series[h]))} ms)" for h in OURS if series.get(h)}
        table.add(
            "crash-to-snapshot ÷ LTTng's own snapshot (the floor: lttng_snapshot_record of the same session, in a loop in one "
            "process, after each round)",
            f"{size_label(*key)}; floor {cell(floor)} ms, n={len(floor)}",
            cells,
            no_ratios(),
            "—",
        )

    for key in keys:
        series, failed = gather(key, "handler_start_ms")
        cells = {h: cell(series.get(h, []), failed.get(h, 0)) for h in COLUMNS if series.get(h)}
        table.add("crash to handler start (ms; the kernel's share, for reading the rows above)", size_label(*key), cells, _ratios(series), "—")

    for attr, what in (
        ("stage_startup_ms", "ours' own stage: from its start to its snapshots (ms: exec, libraries, configuration, /proc)"),
        (
            "stage_from_crash_ms",
            "ours socket: from the crash to its snapshots (ms: the kernel's connection, the service's accept, the "
            "crash's process, configuration, /proc)",
        ),
        ("stage_snapshots_ms", "ours' own stage: recording the snapshots (ms, from its record)"),
        ("stage_core_ms", "ours' own stage: reading and storing the core (ms, from its record)"),
        ("stage_core_trace_ms", "ours' own stage: the core trace check, after the reap (ms, from its record)"),
        ("stage_report_ms", "ours' own stage: the crash report, after the reap (ms, from its record)"),
    ):
        for key in keys:
            series, failed = gather(key, attr)
            cells = {h: cell(series[h]) for h in COLUMNS if series.get(h)}
            table.add(what, size_label(*key), cells, no_ratios(), "—")

    # The steps after the reap, each turned off in a variant of ours
    # measured in the same rounds: crash-to-reap with it on ÷ off.
    for variant, step, off_label in (
        ("nocheck", "core trace check", "the check"),
        ("noreport", "crash report", "the report"),
    ):
        for key in keys:
            series, failed = gather(key, "reap_ms")
            on, off = series.get("ours", []), series.get(variant, [])
            if not on or not off:
                continue
            within = median(on) <= max(off)
            table.add(
                f"crash-to-reap, {step} on ÷ off (ours ÷ {LABELS[variant]}, same rounds)",
                f"{size_label(*key)}, n={runs_of(key[1])}",
                {"ours": f"{ratio(on, off)} ({cell(on)} ms ÷ {cell(off)} ms)"},
                no_ratios(),
                f"within the noise (ours' median ≤ the slowest run with {off_label} off): " + _met(within),
            )

    for key in keys:
        series, failed = gather(key, "rss_kb", 1 / 1024)
        cells = {h: cell(series.get(h, []), failed.get(h, 0)) for h in COLUMNS if series.get(h)}
        # Without the report (issue 5) and with it (issue 20).
        without = {h: v for h, v in series.items() if h == "noreport"}
        with_report = {h: v for h, v in series.items() if h != "noreport"}
        target = (
            f"max < {RSS_TARGET_MIB} MiB without the report: "
            + _per_variant(without, lambda v: max(v) < RSS_TARGET_MIB)
            + f"; max ≤ {RSS_REPORT_TARGET_MIB} MiB with it: "
            + _per_variant(with_report, lambda v: max(v) <= RSS_REPORT_TARGET_MIB)
        )
        table.add("handler peak RSS (MiB)", size_label(*key), cells, _ratios(series), target)

    for key in keys:
        series, failed = gather(key, "core_disk_bytes", 1 / MIB)
        core = core_mib(key)
        cells = {}
        for h in COLUMNS:
            if series.get(h):
                pct = f" ({100 * median(series[h]) / core:.0f}%)" if core else ""
                cells[h] = num(median(series[h])) + pct
        table.add("core on disk (MiB, % of core)", size_label(*key, core), cells, _ratios(series), "—")


def retention_row(table, retention):
    if retention is None:
        return
    kept = retention["kept"]
    failures = retention["failures"]
    cells = {}
    for h in kept.keys() | failures.keys():
        values = kept.get(h, [])
        all_kept = sum(1 for v in values if v == 1000)
        text = f"all 1000 in {all_kept}/{len(values)} runs; kept {cell(values)}"
        if failures.get(h):
            text += f" ({len(failures[h])} failed)"
        cells[h] = text
    seed = kept.get("seed", [])
    checks = []
    for o in OURS:
        if kept.get(o):
            ok = all(v == 1000 for v in kept[o]) and not failures.get(o)
            checks.append(f"{LABELS[o]} {_met(ok)}")
    if seed:
        checks.append(f"seed keeps none: {'yes' if all(v == 0 for v in seed) else 'NO'}")
    case = (
        f"{retention['size_mb']} MiB random memory under {num(retention['load_rate'] / 1e6)} M events/s, "
        f"n={retention['runs']}"
    )
    table.add(
        "retention (of the crasher's last 1000 events)",
        case,
        cells,
        no_ratios(),
        "all 1000 in every run: " + ("; ".join(checks) or "not measured"),
    )


def fire_rows(table, fire):
    if fire is None:
        return
    if isinstance(fire, str):
        table.add("fire: lttng_trigger() (ours) vs `lttng snapshot record` per session (seed)", "—", {}, no_ratios(), fire)
        return
    for n, series in sorted(fire.items()):
        cells = {"ours": cell(series["api"], series["api_failed"]), "seed": cell(series["cli"], series["cli_failed"])}
        ratios = no_ratios()
        ratios[OURS.index("ours") * len(BASELINES) + BASELINES.index("seed")] = ratio(series["api"], series["cli"])
        table.add(
            "fire (ms): lttng_trigger() in ours, `lttng snapshot record` per session in seed",
            f"{n} trigger{'s' if n > 1 else ''}, n={len(series['api'])}",
            cells,
            ratios,
            "—",
        )


def recover_row(table, recovered):
    if recovered is None:
        return
    measure = "recover: a core's LTTng buffers back into a trace (GB/s, page cache)"
    if isinstance(recovered, str):
        table.add(measure, "—", {}, no_ratios(), recovered)
        return
    size = recovered["size"]
    rates = [size / s / 1e9 for s in recovered["seconds"]]
    ms = [s * 1000 for s in recovered["seconds"]]
    ok = bool(rates) and median(rates) >= 1.0
    table.add(
        measure,
        f"{size / (1 << 20):.0f} MiB core (kernel-written), n={len(rates)}, exit status "
        + "/".join(str(x) for x in recovered["statuses"])
        + " (3: the bench session has no snapshot, so no metadata)",
        {"ours": f"{cell(rates)} GB/s; {cell(ms)} ms"},
        no_ratios(),
        f">= 1 GB/s: {_met(ok)}",
    )
    zstd_rates = [size / s / 1e9 for s in recovered.get("zstd_seconds", [])]
    if zstd_rates:
        table.add(
            measure.replace("page cache", "page cache, zstd core"),
            f"the same core compressed (zstd -3), n={len(zstd_rates)}",
            {"zstd": f"{cell(zstd_rates)} GB/s (uncompressed bytes); "
             f"{cell([s * 1000 for s in recovered['zstd_seconds']])} ms"},
            no_ratios(),
            "—",
        )


def render(notes, crash, runs_of, retention, fire, recovered=None, floors=None):
    table = Table()
    crash_rows(table, crash, runs_of, floors)
    retention_row(table, retention)
    recover_row(table, recovered)
    fire_rows(table, fire)
    return "\n".join(notes) + "\n\n" + table.markdown() + "\n"
