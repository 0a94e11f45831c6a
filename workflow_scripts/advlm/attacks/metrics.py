"""Attack metrics over per-example results (``running.RESULT_COLUMNS``), as TextAttack's attack summary
defines them, and on the examples every model classifies correctly (the A2T protocol)."""

from __future__ import annotations

import pandas as pd

OUTCOMES = ("success", "failure", "skipped")


def _mean(values: pd.Series) -> float | None:
    return float(values.mean()) if len(values) else None  # None, not NaN: the summary is strict JSON


def summarize(per_example: pd.DataFrame, params: dict) -> dict:
    """Attack metrics as TextAttack's attack summary defines them, over the attacked sample."""
    unknown = set(per_example["outcome"]) - set(OUTCOMES)
    if unknown:
        raise ValueError(f"unknown outcomes {sorted(unknown)}")
    counts = per_example["outcome"].value_counts()
    n = len(per_example)
    successes, failures, skipped = (int(counts.get(outcome, 0)) for outcome in OUTCOMES)
    attacked = per_example[per_example["outcome"] != "skipped"]
    return {
        "n": n,
        "successes": successes,
        "failures": failures,
        "skipped": skipped,
        "clean_accuracy": 1 - skipped / n if n else None,
        "accuracy_under_attack": failures / n if n else None,
        "attack_success_rate": successes / (successes + failures) if successes + failures else None,
        "mean_perturbed_word_share": _mean(
            per_example.loc[per_example["outcome"] == "success", "perturbed_word_share"]
        ),
        "mean_num_queries": _mean(attacked["num_queries"]),
        "mean_seconds": _mean(per_example["seconds"]),
        "query_budget": params.get("query_budget"),
    }


def all_correct_summary(per_model_frames: dict[str, pd.DataFrame], params: dict) -> dict[str, dict]:
    """The A2T protocol: :func:`summarize` of each model on the examples that *every* model classifies correctly.

    ``per_model_frames`` maps a model name to its per-example results of one attack (``RESULT_COLUMNS``; at
    least ``id``, ``label``, ``original_prediction``, ``outcome``, ``perturbed_word_share``,
    ``num_queries``, ``seconds``). Each model's sample is its own prefix of one seeded order
    (``sharding.correct_prefix``), so the common subset is the examples that every model was attacked on and got
    right. On it no example is skipped, so ``clean_accuracy`` is 1 and ``accuracy_under_attack`` is
    ``1 - attack_success_rate``. Each summary also has ``all_correct_n`` (size of the subset) and
    ``sample_n`` (size of the model's sample).
    """
    correct = None
    for frame in per_model_frames.values():
        ids = set(frame.loc[frame["original_prediction"] == frame["label"], "id"].astype(str))
        correct = ids if correct is None else correct & ids
    out = {}
    for name, frame in per_model_frames.items():
        subset = frame[frame["id"].astype(str).isin(correct)]
        out[name] = {**summarize(subset, params), "all_correct_n": len(correct), "sample_n": len(frame)}
    return out
