"""Two runs' results compared file by file (not a test): byte for byte, and where bytes differ, without what is
timing (wall seconds, job times, provenance, logs, Snakemake's benchmark files), so that a refactor can show that
it changed no result (issue 33: the tiny end-to-end run before and after a change).

    .venv/bin/python benchmarks/compare_runs.py BEFORE_FOLDER AFTER_FOLDER   # each holding results/

Prints how many files are identical byte for byte, how many differ only in timing, and every file that differs
beyond timing; exits 1 if any does or if a file is in one run only.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd

# JSON keys and CSV columns that hold timing or the machine, not results
TIMING_KEYS = {"seconds", "provenance"}  # and every key ending in _seconds (is_timing)
TIMING_FILES = (".log", ".tsv")  # job logs and Snakemake's benchmark files
# caches that libraries write into the results folder (matplotlib's font list: its order varies)
CACHES = ("resources/textattack_cache/matplotlib/",)


def is_timing(key: str) -> bool:
    return key in TIMING_KEYS or key.endswith("_seconds")


def without_timing(value):
    if isinstance(value, dict):
        return {k: without_timing(v) for k, v in value.items() if not is_timing(k)}
    if isinstance(value, list):
        return [without_timing(v) for v in value]
    return value


def same_but_timing(before: Path, after: Path) -> bool:
    if before.suffix in TIMING_FILES:
        return True
    if before.suffix == ".json":
        return without_timing(json.loads(before.read_text())) == without_timing(json.loads(after.read_text()))
    if before.suffix == ".csv":
        first, second = pd.read_csv(before), pd.read_csv(after)
        kept = [c for c in first.columns if not is_timing(c)]
        return list(first.columns) == list(second.columns) and first[kept].equals(second[kept])
    if before.suffix == ".md":
        return markdown_without_timing(before) == markdown_without_timing(after)
    return False


def markdown_without_timing(path: Path) -> list[list[str]]:
    """The file's lines; in a Markdown table, each row without the cells of the columns whose header names seconds."""
    lines, header, timing_columns = [], None, set()
    for line in path.read_text().splitlines():
        if not line.startswith("|"):
            header, timing_columns = None, set()
            lines.append([line])
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if header is None:  # a table's first row is its header
            header = cells
            timing_columns = {i for i, cell in enumerate(cells) if is_timing(cell)}
        lines.append([cell for i, cell in enumerate(cells) if i not in timing_columns])
    return lines


def main() -> int:
    before, after = (Path(folder) / "results" for folder in sys.argv[1:3])
    files = {side: {p.relative_to(side) for p in side.rglob("*") if p.is_file()} for side in (before, after)}
    alone = files[before] ^ files[after]
    identical, timing, differ = 0, 0, []
    for relative in sorted(files[before] & files[after]):
        first, second = before / relative, after / relative
        if first.read_bytes() == second.read_bytes():
            identical += 1
        elif same_but_timing(first, second) or str(relative).startswith(CACHES):
            timing += 1
        else:
            differ.append(relative)
    print(f"{identical} files identical byte for byte, {timing} differ only in timing (or a library's cache)")
    for relative in sorted(alone):
        print(f"in one run only: {relative}")
    for relative in differ:
        print(f"differs beyond timing: {relative}")
    return 1 if differ or alone else 0


if __name__ == "__main__":
    sys.exit(main())
