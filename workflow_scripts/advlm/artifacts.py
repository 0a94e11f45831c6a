"""The plain files that pass between stages: examples (JSONL or Parquet), JSON records and line lists, written
atomically; and the model keys a per-model file's path holds (``model_of``)."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from pathlib import Path

import pandas as pd


def write_examples(frame: pd.DataFrame, path: str | Path) -> None:
    """Write examples (``id``, ``text``, ``label`` plus optional extra columns) as JSONL or Parquet."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    if path.suffix == ".parquet":
        frame.to_parquet(tmp, index=False)
    else:
        frame.to_json(tmp, orient="records", lines=True, force_ascii=False)
    os.replace(tmp, path)  # atomic: a crash never leaves a half-written artifact behind


def read_examples(path: str | Path) -> pd.DataFrame:
    path = Path(path)
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    return pd.read_json(path, orient="records", lines=True, dtype={"id": str, "text": str})


def write_json(obj, path: str | Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")
    os.replace(tmp, path)


def read_json(path: str | Path):
    return json.loads(Path(path).read_text())


def write_lines(lines: Iterable[str], path: str | Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{line}\n" for line in lines))


_MODEL_PATH = re.compile(r"(?P<dataset>[^/]+)/(?P<pretrain>[^/]+)/(?P<method>[^/]+)/seed(?P<seed>\d+)/(?P<leaf>[^/]+)$")


def model_of(path: str | Path) -> dict:
    """The model keys (and the file's stem as ``leaf``) of a per-model artifact path."""
    match = _MODEL_PATH.search(str(path))
    if match is None:
        raise ValueError(f"{path}: not a per-model path (…/<dataset>/<pretrain>/<method>/seed<n>/<file>)")
    keys = match.groupdict()
    keys["seed"] = int(keys["seed"])
    keys["leaf"] = Path(keys["leaf"]).stem
    return keys
