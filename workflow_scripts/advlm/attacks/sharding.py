"""Which examples a model attacks, which of them a shard attacks, and joining the shards again."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd


def attack_sample(test: pd.DataFrame, size: int, seed: int) -> pd.DataFrame:
    """A seeded sample of ``size`` test examples (all of them if fewer), sorted by id.

    It depends only on the test file, ``size`` and ``seed``, so every model is attacked on the same examples.
    """
    sample = test.sample(n=min(size, len(test)), random_state=seed)
    return sample.sort_values("id", kind="stable").reset_index(drop=True)


def correct_prefix(test: pd.DataFrame, size: int, seed: int, predict, chunk: int = 256) -> pd.DataFrame:
    """The attack sample of one model: the test split in a seeded order (the order :func:`attack_sample` draws
    from), cut after the ``size``-th example that ``predict`` (texts -> labels) gets right; sorted by id.

    A2T's protocol compares models on the examples that all of them classify correctly. Cutting each model's
    sample at its own ``size`` correct examples grows that common subset at the cost of ``size`` attacks per
    model, and a model's sample depends on that model alone, so adding a model reruns no other's attacks.
    The misclassified examples of the prefix stay in the sample (skipped by the attack: one query each), so
    accuracy under attack keeps its meaning.
    """
    order = test.sample(frac=1.0, random_state=seed)
    found, end = 0, len(order)
    for start in range(0, len(order), chunk):
        batch = order.iloc[start : start + chunk]
        correct = np.cumsum(np.asarray(predict(batch["text"].tolist())) == batch["label"].to_numpy())
        if found + correct[-1] >= size:
            end = start + int(np.searchsorted(correct, size - found)) + 1
            break
        found += int(correct[-1])
    return order.iloc[:end].sort_values("id", kind="stable").reset_index(drop=True)


def shard_indices(n: int, shard: int, num_shards: int) -> np.ndarray:
    """Positions in the sample of shard ``shard``: contiguous ranges, so shards concatenate in sample order."""
    if not 0 <= shard < num_shards:
        raise ValueError(f"shard {shard} is outside 0..{num_shards - 1}")
    return np.array_split(np.arange(n), num_shards)[shard]


def shard_record_path(csv_path: str | Path) -> Path:
    """Where the attack rule records, beside a shard's CSV, the attack it ran (read back by gather_attack)."""
    return Path(csv_path).with_suffix(".json")


def gather(shard_frames: list[pd.DataFrame], sample_size: int) -> pd.DataFrame:
    """All shards in sample order; fails if an example is missing or attacked twice."""
    frame = pd.concat(shard_frames, ignore_index=True).sort_values("sample_index", kind="stable")
    if frame["sample_index"].tolist() != list(range(sample_size)) or frame["id"].duplicated().any():
        missing = sorted(set(range(sample_size)) - set(frame["sample_index"]))
        duplicated = sorted(frame.loc[frame["sample_index"].duplicated(), "sample_index"])
        raise ValueError(
            f"shards do not cover the sample of {sample_size} exactly once: "
            f"missing positions {missing[:10]}, duplicated {duplicated[:10]}"
        )
    return frame.reset_index(drop=True)
