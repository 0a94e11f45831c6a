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


def neuron_metrics(record: dict) -> dict:
    """Probe and control accuracy, how many neurons carry the tags, how much tags share them, what zeroing costs.

    The columns named in :data:`SPECIALIZATION` are the specialization metrics, each with a stated direction;
    ``C`` and ``l1_ratio`` record the regularization, which is the same for every model of a dataset.
    """
    per_tag = record["top_neurons"]["per_tag"]
    minimal = record["minimal_subset"]
    best_layer = record["accuracy"]["best_layer"]
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
        "minimal_selectivity": record["selectivity"]["minimal_subset"],
        "top_neurons": record["top_neurons"]["overall"],
        "mean_neurons_per_tag": sum(per_tag.values()) / len(per_tag),
        "probeless_neurons": record["probeless"]["n"],
        "ablation_top": record["ablation"]["top"]["accuracy"],
        "ablation_random": record["ablation"]["random"]["accuracy"],
        "ablation_n": record["ablation"]["n"],
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
