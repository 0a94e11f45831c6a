"""The neuron analysis in the report: flat metrics for the tables and the specialization plots.

``probe_records`` maps a model variant's label (e.g. ``rotten_tomatoes / none / base``) to ``{seed: record}``,
each record a ``probe.json`` of :func:`advlm.neurons.analysis.analyze`. The start model without fine-tuning is
probed as each dataset's reference (method ``pretrained``, seed 0); its probe chose the regularization every other
probe of the dataset uses.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display on clusters and CI
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from ..figures import DPI, FONT_PT  # noqa: E402
from .specialization import SPECIALIZATION  # noqa: E402  (metric -> "lower"/"higher" = more specialized)

# The reference cell (pre-training variant, method) of every dataset: rules/common.smk's REFERENCE, which the
# workflow side keeps (it is not importable here).
REFERENCE_CELL = ("none", "pretrained")


def reference_variant(variant: str) -> str:
    """The label of the reference variant of the dataset of ``variant`` (labels: ``dataset / pretrain / method``)."""
    return " / ".join([variant.split(" / ")[0], *REFERENCE_CELL])


def neuron_metrics(record: dict) -> dict:
    """Probe and control accuracy, how many neurons carry the tags, how much tags share them, what zeroing costs.

    The columns named in :data:`SPECIALIZATION` are the specialization metrics, each with a stated direction;
    ``C`` and ``l1_ratio`` record the regularization, which is the same for every model of a dataset.
    """
    per_tag = record["top_neurons"]["per_tag"]
    minimal = record["minimal_subset"]
    best_layer = record["accuracy"]["best_layer"]
    causal = record.get("classifier_ablation")  # fine-tuned models only
    return {
        "C": record["hyperparameters"]["C"],
        "l1_ratio": record["hyperparameters"]["l1_ratio"],
        "probe_accuracy": record["accuracy"]["all_layers"]["test"],
        "best_layer": best_layer["layer"],  # chosen on validation
        "best_layer_accuracy": best_layer["test"],
        "control_accuracy": record["control_task"]["accuracy"]["all_layers"],
        **{name: record["specialization"][name]["value"] for name in SPECIALIZATION},
        "minimal_neurons": minimal["n"],
        "minimal_accuracy": minimal["test"],
        "minimal_share_refit_sd": minimal["share"]["refit_sd"],
        "minimal_share_variance": minimal["share"]["variance_of_mean"],
        "minimal_reached": float(np.mean(minimal["reached"])),  # share of refits whose probe reached the target
        "null_share": record["null"]["share"]["mean"],
        "top_k_overlap": record["stability"]["top_k_overlap"]["mean"],
        "minimal_selectivity": record["selectivity"]["minimal_subset"],
        "top_neurons": record["top_neurons"]["overall"],
        "mean_neurons_per_tag": sum(per_tag.values()) / len(per_tag),
        "probeless_neurons": record["probeless"]["n"],
        "ablation_top": record["ablation"]["top"]["accuracy"],
        "ablation_random": record["ablation"]["random"]["accuracy"],
        "ablation_n": record["ablation"]["n"],
        "test_specific_drop": causal["per_set"]["test"]["specific_drop"] if causal else np.nan,
        "ood_specific_drop": causal["ood_mean"]["specific_drop"] if causal else np.nan,  # CAUSAL
        "classifier_ood_accuracy": causal["ood_mean"]["none"] if causal else np.nan,
    }


def tag_layer_shares(record: dict) -> pd.DataFrame:
    """Tags x layers: the share of each tag's top neurons that lies in each layer (rows sum to 1)."""
    counts = pd.DataFrame(record["top_neurons"]["per_tag_layer"]).T
    return counts.div(counts.sum(axis=1), axis=0)


def plot_tag_layer_heatmap(probe_records: dict[str, dict], path: str | Path) -> None:
    """One panel per model variant: where each tag's top neurons lie, by layer (0 = embeddings), mean over seeds."""
    variants = sorted(probe_records)
    columns = min(3, len(variants))
    rows = -(-len(variants) // columns)
    num_tags = max(len(record["classes"]) for seeds in probe_records.values() for record in seeds.values())
    figure, axes = plt.subplots(
        rows, columns, figsize=(4 * columns, rows * (1.5 + 0.25 * num_tags)), squeeze=False, layout="constrained"
    )
    for axis, variant in zip(axes.flat, variants):
        # Every seed of a variant probes the same corpus and split, so the tags are the same.
        shares = sum(tag_layer_shares(record) for record in probe_records[variant].values())
        shares /= len(probe_records[variant])
        image = axis.imshow(shares.to_numpy(), vmin=0, vmax=1, cmap="viridis", aspect="auto")
        axis.set_yticks(range(len(shares)), shares.index, fontsize=FONT_PT)
        axis.set_xticks(range(shares.shape[1]))
        axis.tick_params(labelsize=FONT_PT)
        axis.set_xlabel("layer", fontsize=FONT_PT)
        axis.set_title(f"{variant} ({len(probe_records[variant])} seeds)", fontsize=FONT_PT)
    for axis in axes.flat[len(variants) :]:
        axis.axis("off")
    bar = figure.colorbar(image, ax=axes)
    bar.set_label("share of the tag's top neurons", fontsize=FONT_PT)
    bar.ax.tick_params(labelsize=FONT_PT)
    figure.savefig(path, dpi=DPI)
    plt.close(figure)


def plot_neurons_per_tag(probe_records: dict[str, dict], path: str | Path) -> None:
    """Grouped bars: the top neurons each tag needs, one bar per model variant, error bars = sd over seeds."""
    records = [(variant, record) for variant, seeds in probe_records.items() for record in seeds.values()]
    rows = [
        {"variant": variant, "tag": tag, "neurons": count}
        for variant, record in records
        for tag, count in record["top_neurons"]["per_tag"].items()
    ]
    stats = pd.DataFrame(rows).groupby(["variant", "tag"])["neurons"].agg(["mean", "std"])
    variants, tags = sorted(probe_records), sorted({row["tag"] for row in rows})
    mass_share = records[0][1]["top_neurons"]["mass_share"]
    width = 0.8 / len(variants)
    figure, axis = plt.subplots(
        figsize=(3 + max(4, 0.5 * len(tags) * max(1, len(variants) / 2)), 4.5), layout="constrained"
    )
    for i, variant in enumerate(variants):
        part = stats.loc[variant].reindex(tags)
        axis.bar(
            np.arange(len(tags)) + i * width, part["mean"], width, yerr=part["std"].fillna(0), capsize=2, label=variant
        )
    axis.set_xticks(np.arange(len(tags)) + width * (len(variants) - 1) / 2, tags, rotation=45, ha="right")
    axis.tick_params(labelsize=FONT_PT)
    axis.set_ylabel(f"neurons for {mass_share:.0%} of the tag's weight mass", fontsize=FONT_PT)
    axis.set_title("Neurons needed per tag", fontsize=FONT_PT + 1)
    figure.legend(
        loc="outside right upper", fontsize=FONT_PT, title="dataset / pre-training / method", title_fontsize=FONT_PT
    )
    figure.savefig(path, dpi=DPI)
    plt.close(figure)


def _seed_means(probe_records: dict[str, dict], value) -> pd.DataFrame:
    """Variants x layers: ``value(record)`` (one number per layer) averaged over each variant's seeds."""
    return pd.DataFrame(
        {
            variant: np.mean([value(record) for record in seeds.values()], axis=0)
            for variant, seeds in probe_records.items()
        }
    ).T


def plot_layer_changes(probe_records: dict[str, dict], reference_of: dict[str, str], path: str | Path) -> None:
    """Where each method changes the neurons, layer by layer (0 = embeddings), as the difference from its
    dataset's reference variant (``reference_of[variant]``, the start model without fine-tuning): the accuracy of a
    probe on that layer alone, and the share of the consensus top-k neurons (over refits) that lie in it. Mean
    over seeds."""
    accuracy = _seed_means(probe_records, lambda r: [layer["test"] for layer in r["accuracy"]["per_layer"]])
    top_k = _seed_means(
        probe_records,
        lambda r: (
            np.asarray(r["stability"]["top_k_layer_distribution"]) / sum(r["stability"]["top_k_layer_distribution"])
        ),
    )
    figure, axes = plt.subplots(1, 2, figsize=(10, 4), layout="constrained")
    for axis, values, label in (
        (axes[0], accuracy, "layer's probe accuracy"),
        (axes[1], top_k, "layer's share of the top-k"),
    ):
        for variant in values.index:
            if reference_of[variant] != variant:
                difference = values.loc[variant] - values.loc[reference_of[variant]]
                axis.plot(values.columns, difference, marker="o", label=variant)
        axis.axhline(0, color="grey", linewidth=0.8)
        axis.set_xlabel("layer (0 = embeddings)", fontsize=FONT_PT)
        axis.set_ylabel(f"{label} − reference", fontsize=FONT_PT)
        axis.tick_params(labelsize=FONT_PT)
    axes[0].set_title("Change from before fine-tuning", fontsize=FONT_PT + 1)
    figure.legend(*axes[0].get_legend_handles_labels(), loc="outside right upper", fontsize=FONT_PT)
    figure.savefig(path, dpi=DPI)
    plt.close(figure)


def specialization_vs_ood(probe_records: dict[str, dict], reference_of: dict[str, str]) -> dict:
    """Across the fine-tuned models, whether the minimal share predicts out-of-domain accuracy (the classifier's,
    on the causal test's examples): the slope of ``ood ~ minimal_share + group`` (a group: one seed of one dataset;
    its fixed effect compares only the models of a seed), its 95 % interval (statsmodels OLS) and the models. A
    negative slope: more specialized (fewer neurons), better out of domain. Association, not cause: the ablation
    is the causal arm."""
    import statsmodels.formula.api as smf

    rows = [
        {
            "variant": variant,
            "group": f"{reference_of[variant]} {seed}",
            "minimal_share": record["minimal_subset"]["share"]["mean"],
            "ood": record["classifier_ablation"]["ood_mean"]["none"],
        }
        for variant, seeds in probe_records.items()
        if reference_of[variant] != variant
        for seed, record in seeds.items()
        if "classifier_ablation" in record and np.isfinite(record["classifier_ablation"]["ood_mean"]["none"])
    ]
    frame = pd.DataFrame(rows)
    if len(frame) < 3 or frame["minimal_share"].nunique() < 2 or len(frame) <= frame["group"].nunique() + 1:
        return {"slope": np.nan, "ci_low": np.nan, "ci_high": np.nan, "n_models": len(frame), "models": frame}
    formula = "ood ~ minimal_share + C(group)" if frame["group"].nunique() > 1 else "ood ~ minimal_share"
    fit = smf.ols(formula, frame).fit()
    low, high = fit.conf_int().loc["minimal_share"]
    return {"slope": float(fit.params["minimal_share"]), "ci_low": float(low), "ci_high": float(high),
            "n_models": len(frame), "models": frame}  # fmt: skip


def plot_stability_null_ablation(
    probe_records: dict[str, dict], reference_of: dict[str, str], path: str | Path
) -> None:
    """Four panels per variant: the minimal share (each seed's refit mean, error bar its refit sd) beside the
    random-ordering null and the reference; the top-k overlap between refits beside chance; the classifier's
    accuracy drop from its top neurons beyond that from as many random ones, in domain and out of domain; and
    out-of-domain accuracy against the minimal share with the within-seed slope and its interval."""
    variants = sorted(probe_records)
    # One dataset: the tick labels drop its name, which every variant repeats.
    datasets = {variant.split(" / ")[0] for variant in variants}
    ticks = [variant.split(" / ", 1)[-1] if len(datasets) == 1 else variant for variant in variants]
    figure, axes = plt.subplots(2, 2, figsize=(12, 9), layout="constrained")
    positions = {variant: i for i, variant in enumerate(variants)}
    for variant, seeds in probe_records.items():
        x = positions[variant]
        for k, record in enumerate(seeds.values()):
            offset = x + 0.08 * (k - (len(seeds) - 1) / 2)
            share, null = record["minimal_subset"]["share"], record["null"]["share"]
            axes[0, 0].errorbar(offset, share["mean"], yerr=np.nan_to_num(share["refit_sd"]), fmt="o", color="C0")
            axes[0, 0].errorbar(offset, null["mean"], yerr=np.nan_to_num(null["refit_sd"]), fmt="x", color="C3")
            overlap = record["stability"]["top_k_overlap"]
            axes[0, 1].plot(offset, overlap["mean"], "o", color="C0")
            axes[0, 1].plot(offset, overlap["chance"], "_", color="C3", markersize=12)
            causal = record.get("classifier_ablation")
            if causal:
                axes[1, 0].plot(offset - 0.15, causal["per_set"]["test"]["specific_drop"], "o", color="C0")
                axes[1, 0].plot(offset + 0.15, causal["ood_mean"]["specific_drop"], "s", color="C1")
    axes[0, 0].set_ylabel("minimal share (o: ranked, x: random)", fontsize=FONT_PT)
    axes[0, 1].set_ylabel("top-k overlap of refits (-: chance)", fontsize=FONT_PT)
    axes[1, 0].set_ylabel("ablation: random − top (o: test, s: ood)", fontsize=FONT_PT)
    axes[1, 0].axhline(0, color="grey", linewidth=0.8)
    for axis in (axes[0, 0], axes[0, 1], axes[1, 0]):
        axis.set_xticks(range(len(variants)), ticks, rotation=90, fontsize=FONT_PT)
        axis.tick_params(labelsize=FONT_PT)
    trend = specialization_vs_ood(probe_records, reference_of)
    for variant, part in trend["models"].groupby("variant") if len(trend["models"]) else ():
        axes[1, 1].plot(part["minimal_share"], part["ood"], "o", color=f"C{positions[variant] % 10}")
    axes[1, 1].set_xlabel("minimal share (refit mean)", fontsize=FONT_PT)
    axes[1, 1].set_ylabel("out-of-domain accuracy", fontsize=FONT_PT)
    axes[1, 1].set_title(
        f"within-seed slope {trend['slope']:+.3f} [{trend['ci_low']:+.3f}, {trend['ci_high']:+.3f}], "
        f"{trend['n_models']} models",
        fontsize=FONT_PT,
    )
    axes[1, 1].tick_params(labelsize=FONT_PT)
    figure.savefig(path, dpi=DPI)
    plt.close(figure)
