#!/usr/bin/env python3
"""Writes a package's debian/copyright (machine-readable, DEP-5) from the
workspace: lttng-coredump's own licence, then one paragraph for each Rust
crate linked into the package's binaries (cargo tree: normal dependencies,
no build scripts, no proc-macros), with the copyright lines of the crate's
own licence files and its licence expression, then the text of each
licence named (a pointer to /usr/share/common-licenses where Debian has
it, else the text shipped with a crate that uses it).

    copyright.py WORKSPACE CARGO_PACKAGE...   (the text on standard output)
"""

import json
import os
import re
import subprocess
import sys

COMMON = {
    "Apache-2.0": ("Apache License 2.0", "Apache-2.0"),
    "LGPL-2.1": ("GNU Lesser General Public License version 2.1", "LGPL-2.1"),
    "GPL-2": ("GNU General Public License version 2", "GPL-2"),
    "MPL-2.0": ("Mozilla Public License 2.0", "MPL-2.0"),
}
# SPDX identifiers as DEP-5 short names.
SHORT = {
    "LGPL-2.1-only": "LGPL-2.1",
    "LGPL-2.1-or-later": "LGPL-2.1+",
    "GPL-2.0-only": "GPL-2",
    "BSD-3-Clause": "BSD-3-clause",
    "BSD-2-Clause": "BSD-2-clause",
}
# Where a crate keeps the text of a licence Debian does not ship.
TEXT_FILES = {
    "MIT": ["LICENSE-MIT", "LICENSE-MIT.md", "LICENSE.md", "LICENSE"],
    "Unlicense": ["UNLICENSE"],
    "Unicode-3.0": ["LICENSE-UNICODE"],
    "BSD-3-clause": ["LICENSE", "LICENSE.md", "LICENSE-BSD"],
    "BSD-2-clause": ["LICENSE", "LICENSE.md"],
    "ISC": ["LICENSE", "LICENSE-ISC"],
    "Zlib": ["LICENSE", "LICENSE-ZLIB"],
    "CDLA-Permissive-2.0": ["LICENSE"],
}


def dep5_expression(spdx):
    """An SPDX licence expression in DEP-5's words."""
    text = spdx.replace("/", " OR ")
    text = re.sub(r"\bWITH LLVM-exception\b", "with LLVM exception", text)
    words = []
    for word in re.split(r"(\s+|\(|\))", text):
        if word == "OR":
            words.append("or")
        elif word == "AND":
            words.append("and")
        else:
            words.append(SHORT.get(word, word))
    return "".join(words)


def short_names(expression):
    names = re.findall(r"[A-Za-z0-9.+-]+", expression)
    return [n for n in names if n not in ("or", "and", "with", "LLVM", "exception")]


def continuation(text):
    lines = []
    for line in text.strip("\n").splitlines():
        line = line.rstrip()
        lines.append(" " + line if line.strip() else " .")
    return "\n".join(lines)


def main():
    workspace, packages = sys.argv[1], sys.argv[2:]
    metadata = json.loads(
        subprocess.check_output(
            ["cargo", "metadata", "--format-version", "1", "--locked"], cwd=workspace
        )
    )
    by_key = {(p["name"], p["version"]): p for p in metadata["packages"]}
    crates = set()
    for package in packages:
        tree = subprocess.check_output(
            ["cargo", "tree", "--locked", "-p", package, "-e", "normal,no-proc-macro",
             "--prefix", "none", "-f", "{p}"],
            cwd=workspace, text=True,
        )
        for line in tree.splitlines():
            parts = line.split()
            if len(parts) >= 2 and parts[1].startswith("v"):
                crates.add((parts[0], parts[1][1:]))
    ours = {p["name"] for p in metadata["packages"] if p.get("source") is None}
    out = [
        "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/",
        "Upstream-Name: lttng-coredump",
        "Comment: The Rust crates listed below are compiled into this package's",
        " binaries (statically linked); each paragraph names the crate and version.",
        "",
        "Files: *",
        "Copyright: lttng-coredump developers",
        "License: LGPL-2.1",
        "",
    ]
    used = {"LGPL-2.1"}
    text_of = {}
    for name, version in sorted(crates):
        if name in ours:
            continue
        package = by_key[(name, version)]
        directory = os.path.dirname(package["manifest_path"])
        holders = []
        for file in sorted(os.listdir(directory)):
            if not re.match(r"(LICEN[CS]E|COPYING|UNLICENSE|COPYRIGHT)", file, re.I):
                continue
            path = os.path.join(directory, file)
            if not os.path.isfile(path):
                continue
            with open(path, errors="replace") as handle:
                for line in handle:
                    line = line.strip()
                    if re.match(r"copyright\s+(\(c\)|©|\d)", line, re.I):
                        holder = re.sub(r"^copyright\s+((\(c\)|©)\s*)?", "", line, flags=re.I)
                        if holder and holder not in holders:
                            holders.append(holder)
        if not holders:
            authors = [re.sub(r"\s*<.*>", "", a) for a in package.get("authors") or []]
            holders = [", ".join(authors) if authors else f"the {name} developers"]
        spdx = package.get("license") or "unknown"
        expression = dep5_expression(spdx)
        for short in short_names(expression):
            used.add(short)
            if short in TEXT_FILES and short not in text_of:
                for candidate in TEXT_FILES[short]:
                    path = os.path.join(directory, candidate)
                    if os.path.isfile(path):
                        with open(path, errors="replace") as handle:
                            body = [
                                l for l in handle.read().splitlines()
                                if not re.match(r"\s*copyright\s+(\(c\)|©|\d)", l, re.I)
                            ]
                        text_of[short] = "\n".join(body)
                        break
        extra = ""
        if name == "zstd-sys":
            extra = "\nComment: includes the zstd library (libzstd), BSD-3-clause or GPL-2."
        out += [
            f"Files: rust-crates/{name}-{version}/*",
            "Copyright: " + "\n ".join(holders[:4]),
            f"License: {expression}{extra}",
            "",
        ]
    for short in sorted(used):
        if short in COMMON:
            title, file = COMMON[short]
            out += [
                f"License: {short}",
                f" On Debian systems, the full text of the {title} is in",
                f" /usr/share/common-licenses/{file}.",
                "",
            ]
        elif short in text_of:
            out += [f"License: {short}", continuation(text_of[short]), ""]
        else:
            sys.exit(f"copyright.py: no text for the licence {short}")
    print("\n".join(out).rstrip("\n"))


if __name__ == "__main__":
    main()
