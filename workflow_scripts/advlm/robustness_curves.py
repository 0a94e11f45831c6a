"""The report's robustness figure: accuracy under attack as a function of the word budget and of the query budget,
one curve per (pre-training variant, method) group, from the gathered attack rows (``advlm.attacks.budget``: exact
for the greedy searches).

Each curve is the mean over seeds of the models' accuracy under the attack capped at each budget, with its 95 %
interval over seeds (t, S - 1 df: the seeds' noise and the examples' that differs between them; the examples'
noise every seed shares is left out, as it is from any one group's level). The word budget is a share of the
visible words (``ceil(share x words)``, as TextDefender caps); TextDefender's 30 % is marked. The query axis ends at
the most queries the attack's models logged (at most its query budget).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from . import artifacts
from .attacks import budget
from .figures import DPI, FONT_PT

WORD_SHARES = tuple(np.round(np.arange(0, 0.51, 0.05), 2))


def curve_table(attack_csvs) -> pd.DataFrame:
    """One row per model, attack, axis (``words``: share of visible words; ``queries``) and budget: the model's
    accuracy under the attack capped there (columns: dataset, pretrain, method, seed, attack, axis, budget,
    accuracy). The query budgets are one grid per attack, up to the most queries any of its models logged."""
    frames = {}
    for path in attack_csvs:
        model = artifacts.model_of(path)
        keys = {key: model[key] for key in ("dataset", "pretrain", "method", "seed")} | {"attack": model["leaf"]}
        frames[tuple(keys.items())] = pd.read_csv(path, dtype={"id": str}, usecols=list(budget.REQUIRED))
    top = {}
    for keys, frame in frames.items():
        attack = dict(keys)["attack"]
        top[attack] = max(top.get(attack, 1), int(frame["num_queries"].max()))
    rows = []
    for keys, frame in frames.items():
        keys = dict(keys)
        queries = np.unique(np.round(np.geomspace(1, top[keys["attack"]], 12)).astype(int))
        for axis, robust in (
            ("words", budget.robust_within_share(frame, WORD_SHARES)),
            ("queries", budget.robust_within_queries(frame, queries)),
        ):
            for value, accuracy in robust.mean().items():
                rows.append({**keys, "axis": axis, "budget": float(value), "accuracy": float(accuracy)})
    return pd.DataFrame(rows)


def group_curves(table: pd.DataFrame) -> pd.DataFrame:
    """Mean over seeds per group, attack, axis and budget, with the 95 % t interval over seeds (NaN for one seed)."""
    from scipy import stats

    grouped = table.groupby(["dataset", "attack", "axis", "pretrain", "method", "budget"])["accuracy"]
    out = grouped.agg(mean="mean", sd="std", seeds="count").reset_index()
    half = stats.t.ppf(0.975, (out["seeds"] - 1).clip(lower=1)) * out["sd"] / np.sqrt(out["seeds"])
    return out.assign(low=out["mean"] - half, high=out["mean"] + half)


def plot_curves(attack_csvs, path: str | Path) -> None:
    """Rows: dataset x attack; columns: the word budget and the query budget; a curve and band per group."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    table = curve_table(attack_csvs)
    panels = sorted(set(zip(table["dataset"], table["attack"]))) if len(table) else []
    figure, axes = plt.subplots(
        max(1, len(panels)), 2, figsize=(10, 1.5 + 3.0 * max(1, len(panels))), squeeze=False, layout="constrained"
    )
    if not panels:
        axes[0, 0].text(0.5, 0.5, "no attack results", ha="center", fontsize=FONT_PT)
    curves = group_curves(table) if len(table) else table
    for row, (dataset, attack) in enumerate(panels):
        for column, (axis_name, label) in enumerate(
            (("words", "word budget (share of visible words)"), ("queries", "query budget"))
        ):
            axis = axes[row, column]
            part = curves[(curves["dataset"] == dataset) & (curves["attack"] == attack) & (curves["axis"] == axis_name)]
            for (pretrain, method), group in part.groupby(["pretrain", "method"]):
                line = axis.plot(group["budget"], group["mean"], marker=".", label=f"{pretrain} / {method}")[0]
                axis.fill_between(group["budget"], group["low"], group["high"], color=line.get_color(), alpha=0.15)
            if axis_name == "words":
                axis.axvline(budget.WORD_CAPS["textdefender"].rate, color="black", linewidth=0.8, linestyle="--")
            else:
                axis.set_xscale("symlog", linthresh=1)
            axis.set_ylim(0, 1)
            axis.set_xlabel(label, fontsize=FONT_PT)
            axis.set_ylabel("accuracy under attack", fontsize=FONT_PT)
            axis.set_title(f"{dataset}, {attack}", fontsize=FONT_PT, loc="left")
            axis.tick_params(labelsize=FONT_PT)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    if handles:
        figure.legend(
            handles,
            labels,
            loc="outside right upper",
            fontsize=FONT_PT,
            title="pre-training / method\n(band: 95 % over seeds;\ndashed: TextDefender's 30 %)",
            title_fontsize=FONT_PT,
        )
    figure.savefig(path, dpi=DPI)
    plt.close(figure)
