#!/usr/bin/env python3
"""The test tiers of scripts/test, from tests/tiers and the workspace's targets.

    tiers.py runs TIER          the cargo test invocations of TIER, one a line
                                (shell words: cargo's arguments, then `--`
                                and the test binaries' own)
    tiers.py check TIER LIST LOG
                                every test LIST names (the `-- --list` output
                                of TIER's invocations) printed `test NAME ...
                                ok` in LOG (their output) and none was
                                ignored; for the system tier, every unit
                                test tests/tiers names was listed; exit
                                status 1 otherwise

By default a unit test (src/) is of the hermetic tier and an integration
test target (tests/) of the system tier; tests/tiers names the exceptions.
A name there that the workspace does not have is an error, so the list
cannot go stale (nor hide a test: a skipped unit test is one the system
tier runs by its exact name).
"""

import collections
import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

TIERS = ("hermetic", "system", "machine")
ROOT = Path(__file__).resolve().parent.parent.parent


def fail(message):
    print(f"tiers: {message}", file=sys.stderr)
    sys.exit(1)


def manifest():
    """(tier of each named integration target, [(package, test)] of the
    unit tests of the system tier)."""
    targets, unit = {}, []
    for number, line in enumerate((ROOT / "tests/tiers").read_text().splitlines(), 1):
        words = line.split("#", 1)[0].split()
        if not words:
            continue
        if words[0] in ("hermetic", "machine") and len(words) == 2:
            targets[words[1]] = words[0]
        elif words[0] == "system" and len(words) == 3:
            unit.append((words[1], words[2]))
        else:
            fail(f"tests/tiers:{number}: not `hermetic|machine TARGET` or `system PACKAGE TEST`: {line}")
    return targets, unit


def workspace():
    """{package: [integration test target names]}, from cargo metadata."""
    out = subprocess.run(
        ["cargo", "metadata", "--no-deps", "--format-version", "1", "--offline"],
        cwd=ROOT, check=True, capture_output=True, text=True,
    ).stdout
    packages = {}
    for package in json.loads(out)["packages"]:
        packages[package["name"]] = [
            t["name"] for t in package["targets"] if t["kind"] == ["test"] and t.get("test", True)
        ]
    return packages


def runs(tier):
    targets, unit = manifest()
    packages = workspace()
    every_target = {t for tests in packages.values() for t in tests}
    for name in targets:
        if name not in every_target:
            fail(f"tests/tiers names {name}, which is no integration test target of the workspace")
    for package, _ in unit:
        if package not in packages:
            fail(f"tests/tiers names package {package}, which is not in the workspace")
    tier_of = {t: targets.get(t, "system") for t in sorted(every_target)}
    tests = [f"--test={t}" for t, of in tier_of.items() if of == tier]
    lines = []
    if tier == "hermetic":
        skips = [word for _, test in unit for word in ("--skip", test)]
        lines.append(["--workspace", "--lib", "--bins", *tests, "--", "--exact", *skips])
        lines.append(["--workspace", "--doc", "--"])
    elif tier == "system":
        if tests:
            lines.append(["--workspace", *tests, "--"])
        if unit:
            chosen = sorted({package for package, _ in unit})
            by_name = [test for _, test in unit]
            lines.append([*(f"--package={p}" for p in chosen), "--lib", "--", "--exact", *by_name])
    elif tests:
        lines.append(["--workspace", *tests, "--"])
    for line in lines:
        print(shlex.join(line))


def check(tier, list_path, log_path):
    """The multiset of listed tests against those that printed ok."""
    listed = collections.Counter()
    for line in Path(list_path).read_text(errors="replace").splitlines():
        if line.endswith(": test"):
            listed[line[: -len(": test")]] += 1
    problems = []
    if tier == "system":
        for package, test in manifest()[1]:
            if test not in listed:
                problems.append(f"tests/tiers names {test} of {package}, which its unit tests do not have")
    log = Path(log_path).read_text(errors="replace").splitlines()
    passed = collections.Counter()
    for line in log:
        found = re.fullmatch(r"test (.*) \.\.\. (ok|ignored|FAILED)(, .*)?", line)
        if not found:
            continue
        name, verdict = found.group(1), found.group(2)
        # A doc test is listed as "FILE - ITEM (line N)", run as "... - compile".
        name = re.sub(r" - compile( fail)?$", "", name) if name not in listed else name
        if verdict == "ok":
            passed[name] += 1
        elif verdict == "ignored":
            problems.append(f"ignored (every test must run): {name}")
    for name, count in sorted((listed - passed).items()):
        problems.append(f"listed but did not pass{f' ({count} times)' if count > 1 else ''}: {name}")
    for name, count in sorted((passed - listed).items()):
        problems.append(f"passed but was not listed: {name}")
    if not listed:
        problems.append("no test listed")
    for problem in problems:
        print(f"tiers: {problem}", file=sys.stderr)
    print(f"tiers: {tier}: {sum(listed.values())} tests listed, {sum(passed.values())} passed")
    sys.exit(1 if problems else 0)


def main(argv):
    if len(argv) == 2 and argv[0] == "runs" and argv[1] in TIERS:
        runs(argv[1])
    elif len(argv) == 4 and argv[0] == "check" and argv[1] in TIERS:
        check(argv[1], argv[2], argv[3])
    else:
        fail(f"usage: tiers.py runs {'|'.join(TIERS)} | tiers.py check TIER LIST LOG")


if __name__ == "__main__":
    main(sys.argv[1:])
