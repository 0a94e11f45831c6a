"""The robustness–generalization trade-off: for each dataset, generalization (in-domain and mean out-of-domain
accuracy) against robustness (accuracy under each attack), one curve per method through its points (the method as
configured and its finetune.sweep points), with error bars of one standard deviation over seeds.

A model no better than predicting the majority class is robust for a trivial reason (an attack cannot flip a
constant prediction): such points are flagged (``at_chance_seeds``) and drawn hollow."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from . import artifacts
from .convergence import above_majority_p
from .figures import DPI, FONT_PT

GENERALIZATION = {"in_domain": "in-domain accuracy", "ood_mean": "mean out-of-domain accuracy"}
KEYS = ["dataset", "pretrain", "method", "seed"]


def at_chance(predictions: pd.DataFrame, level: float = 0.05) -> bool:
    """Whether a model's accuracy on ``predictions`` (columns label, prediction) is not significantly above the
    majority-class rate (one-sided exact binomial test at ``level``, as a training record's convergence check)."""
    correct = int((predictions["label"] == predictions["prediction"]).sum())
    majority = predictions["label"].value_counts(normalize=True).max()
    return above_majority_p(correct, len(predictions), majority) >= level


def chance_table(prediction_paths) -> pd.DataFrame:
    """Per model, whether its in-domain test predictions are at chance (``at_chance``), from the evaluate rule's
    ``test.predictions.csv`` files among ``prediction_paths``."""
    rows = []
    for path in prediction_paths:
        keys = artifacts.model_of(path)
        if keys["leaf"] == "test.predictions":
            frame = pd.read_csv(path, usecols=["label", "prediction"])
            rows.append({**{key: keys[key] for key in KEYS}, "at_chance": at_chance(frame)})
    return pd.DataFrame(rows, columns=[*KEYS, "at_chance"])


def tradeoff_table(
    generalization: pd.DataFrame, robustness: pd.DataFrame, experiment: dict, chance: pd.DataFrame | None = None
) -> pd.DataFrame:
    """One row per model and attack: the model's in-domain accuracy, its mean accuracy over the dataset's
    out-of-domain sets (NaN without any) and its accuracy under the attack, with the point's method (``family``)
    and swept values (``experiment["points"]``, advlm.plan.targets: claims_experiment), and whether the model is at
    chance in domain (``chance``: chance_table; False where not given)."""
    accuracy = generalization.pivot_table(index=KEYS, columns="evalset", values="accuracy")
    rows = pd.DataFrame(index=accuracy.index)
    rows["in_domain"] = accuracy["test"]
    rows["ood_mean"] = [
        accuracy.loc[key, [s for s in experiment["ood"].get(key[0], []) if s in accuracy.columns]].mean()
        for key in accuracy.index
    ]
    table = robustness[[*KEYS, "attack", "accuracy_under_attack"]].merge(rows.reset_index(), on=KEYS)
    if chance is None:
        table["at_chance"] = False
    else:
        table = table.merge(chance, on=KEYS, how="left")
        table["at_chance"] = table["at_chance"].eq(True)  # a model without test predictions: not flagged
    points = experiment["points"]
    table["family"] = [points.get(method, {"method": method})["method"] for method in table["method"]]
    table["values"] = [_label(points.get(method, {}).get("values", {})) for method in table["method"]]
    return table.sort_values([*KEYS, "attack"]).reset_index(drop=True)


def _label(values: dict) -> str:
    return ", ".join(f"{name}={value}" for name, value in values.items())


def summarize(table: pd.DataFrame, experiment: dict) -> pd.DataFrame:
    """Mean and sd over seeds per point and attack; a curve's points in the order of their swept values."""
    by = ["dataset", "pretrain", "family", "method", "values", "attack"]
    measures = ["accuracy_under_attack", *GENERALIZATION]
    stats = table.groupby(by, sort=False)[measures].agg(["mean", "std"])
    stats.columns = [f"{measure}_{stat}" for measure, stat in stats.columns]
    stats["seeds"] = table.groupby(by, sort=False)["seed"].nunique()
    stats["at_chance_seeds"] = table.groupby(by, sort=False)["at_chance"].sum()
    stats = stats.reset_index()
    points = experiment["points"]
    order = [tuple(points.get(method, {}).get("values", {}).values()) for method in stats["method"]]
    stats["_order"] = order
    stats = stats.sort_values(["dataset", "pretrain", "family", "attack", "_order"], kind="stable")
    return stats.drop(columns="_order").reset_index(drop=True)


def plot_tradeoff(summary: pd.DataFrame, path: str | Path) -> dict:
    """One row of panels per dataset and generalization measure, one column per attack, one curve per (pre-training
    variant, method) through its points; returns what was drawn, {(dataset, measure, attack, curve): [(x, y)]}."""
    if summary.empty:  # no attacks: nothing to draw robustness from
        figure, axis = plt.subplots(figsize=(5, 2))
        axis.axis("off")
        axis.text(0.5, 0.5, "no attack was run (attack.recipes is empty)", ha="center", va="center")
        figure.savefig(path, dpi=DPI)
        plt.close(figure)
        return {}
    measures = [m for m in GENERALIZATION if summary[f"{m}_mean"].notna().any()]
    rows = [(dataset, measure) for dataset in sorted(summary["dataset"].unique()) for measure in measures]
    attacks = sorted(summary["attack"].unique())
    figure, axes = plt.subplots(
        len(rows),
        len(attacks),
        figsize=(2 + 3.6 * len(attacks), 1 + 3.2 * len(rows)),
        squeeze=False,
        layout="constrained",
    )
    drawn = {}
    for (dataset, measure), row in zip(rows, axes):
        for attack, axis in zip(attacks, row):
            panel = summary[(summary["dataset"] == dataset) & (summary["attack"] == attack)]
            for (pretrain, family), curve in panel.groupby(["pretrain", "family"], sort=True):
                x, y = curve["accuracy_under_attack_mean"], curve[f"{measure}_mean"]
                name = f"{pretrain} / {family}"
                line = axis.errorbar(
                    x,
                    y,
                    xerr=curve["accuracy_under_attack_std"].fillna(0),
                    yerr=curve[f"{measure}_std"].fillna(0),
                    marker="o",
                    capsize=2,
                    label=name,
                )
                trivial = curve["at_chance_seeds"] > 0  # hollow: robust because it predicts (nearly) one class
                axis.scatter(x[trivial], y[trivial], s=40, color="white", edgecolors=line[0].get_color(), zorder=3)
                if len(curve) > 1:
                    for xi, yi, label in zip(x, y, curve["values"]):
                        axis.annotate(label, (xi, yi), fontsize=FONT_PT - 1, xytext=(3, 3), textcoords="offset points")
                drawn[(dataset, measure, attack, name)] = list(zip(x, y))
            axis.set_xlabel(f"accuracy under {attack}", fontsize=FONT_PT)
            axis.set_ylabel(GENERALIZATION[measure], fontsize=FONT_PT)
            axis.tick_params(labelsize=FONT_PT)
            axis.set_title(dataset, fontsize=FONT_PT)
    handles, labels = axes[0][0].get_legend_handles_labels()
    figure.legend(
        handles,
        labels,
        loc="outside right center",
        fontsize=FONT_PT,
        title="pre-training / method",
        title_fontsize=FONT_PT,
    )
    figure.suptitle(
        "Robustness against generalization\n(mean ± sd over seeds; hollow: a seed at chance in domain)",
        fontsize=FONT_PT + 1,
    )
    figure.savefig(path, dpi=DPI)
    plt.close(figure)
    return drawn
