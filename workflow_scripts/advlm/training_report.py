"""The report's training section: every model's learning curve (validation accuracy after each epoch of the shared
warm start and of its method, the kept epoch marked) as a figure, and the convergence table, one row per model,
from the training records (``train_log.json``) of the models and of their warm starts."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display (as advlm.report)
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from . import artifacts  # noqa: E402
from .figures import DPI, FONT_PT  # noqa: E402
from .report import MODEL_KEYS, model_of  # noqa: E402

CURVE_COLUMNS = [*MODEL_KEYS, "phase", "epoch", "validation_accuracy", "kept", "converged"]
# benchmarks/learning_curves.py prints this table; docs/protocol.md and docs/workflow.md quote it
TABLE_HEADER = ["model", "seed", "warm start (clean)", "method's epochs (kept in bold)", "converged"]


def _warm_start_key(path: str | Path) -> tuple[str, str, int]:
    """(dataset, pretrain, seed) of a warm start's record: results/warm_start/<dataset>/<pretrain>/seed<k>/…"""
    dataset, pretrain, seed = Path(path).parts[-4:-1]
    return dataset, pretrain, int(seed.removeprefix("seed"))


def kept_epoch(record: dict) -> int:
    """The epoch whose weights a model kept; records written before the training protocol of issue 30 call it
    ``best_epoch`` (the README's evidence may come from such a run)."""
    return record["kept_epoch"] if "kept_epoch" in record else record["best_epoch"]


def curves(train_logs, warm_starts=()) -> pd.DataFrame:
    """One row per model and epoch: the warm start's epochs (phase ``warm start``, numbered from 1), then the
    method's (phase ``method``, numbered on from there); a model without a warm start has its start model's
    accuracy as epoch 0. ``kept`` marks the epoch whose weights the model kept; ``converged`` is the model's
    convergence check."""
    warm = {_warm_start_key(path): artifacts.read_json(path)["history"] for path in warm_starts}
    rows = []
    for path in train_logs:
        keys = {key: model_of(path)[key] for key in MODEL_KEYS}
        record = artifacts.read_json(path)
        converged = bool(record["convergence"]["converged"])
        kept = kept_epoch(record)
        history = warm.get((keys["dataset"], keys["pretrain"], keys["seed"]))
        if history is None:
            start = [{"epoch": 0, "validation": record["start_validation"]}]
            phases = [("start", start, 0)]
        else:
            phases = [("warm start", history, 0)]
        offset = len(history or [])
        phases.append(("method", record["history"], offset))
        for phase, epochs, shift in phases:
            for epoch in epochs:
                rows.append(
                    {
                        **keys,
                        "phase": phase,
                        "epoch": epoch["epoch"] + shift,
                        "validation_accuracy": epoch["validation"]["accuracy"],
                        "kept": phase == "method" and epoch["epoch"] == kept,
                        "converged": converged,
                    }
                )
    return pd.DataFrame(rows, columns=CURVE_COLUMNS).sort_values([*MODEL_KEYS, "epoch"], ignore_index=True)


def convergence_table(curve_table: pd.DataFrame, train_logs, kept: str = "**{}**") -> pd.DataFrame:
    """One row per model: its warm start's and its method's validation accuracies, epoch by epoch (the kept one
    written as ``kept``: bold in Markdown), and its convergence check's verdict with the reason where it failed."""
    reasons = {}
    for path in train_logs:
        keys = model_of(path)
        check = artifacts.read_json(path)["convergence"]
        reasons[tuple(keys[key] for key in MODEL_KEYS)] = "yes" if check["converged"] else f"no: {check['reason']}"
    rows = []
    for keys, model in curve_table.groupby(MODEL_KEYS, sort=True):
        before = model[model["phase"] != "method"]
        method = model[model["phase"] == "method"]
        warm = [f"{accuracy:.3f}" for accuracy in before["validation_accuracy"]]  # or the start model's
        accuracies = zip(method["validation_accuracy"], method["kept"])
        epochs = [kept.format(f"{value:.3f}") if is_kept else f"{value:.3f}" for value, is_kept in accuracies]
        rows.append(
            {
                "model": f"{keys[0]} {keys[1]}/{keys[2]}",
                "seed": keys[3],
                "warm start (clean)": " → ".join(warm),
                "method's epochs (kept in bold)": " → ".join(epochs),
                "converged": reasons[keys],
            }
        )
    return pd.DataFrame(rows, columns=TABLE_HEADER)


def plot_learning_curves(curve_table: pd.DataFrame, path: str | Path) -> None:
    """One panel per (dataset, pre-training variant, method), one line per seed through the warm start's and the
    method's epochs, the kept epoch a filled star; a model that failed its convergence check is dashed. The shaded
    band is the shared warm start."""
    panels = list(curve_table.groupby(["dataset", "pretrain", "method"], sort=True))
    columns = min(4, max(1, len(panels)))
    rows = -(-len(panels) // columns)
    figure, axes = plt.subplots(
        rows, columns, figsize=(3.2 * columns, 2.6 * rows), sharey=True, squeeze=False, layout="constrained"
    )
    for axis, ((dataset, pretrain, method), panel) in zip(axes.flat, panels):
        warm = panel[panel["phase"] == "warm start"]
        if len(warm):
            axis.axvspan(0.5, warm["epoch"].max() + 0.5, color="0.92", zorder=0)
        for seed, line in panel.groupby("seed", sort=True):
            style = "-" if line["converged"].all() else "--"
            (drawn,) = axis.plot(line["epoch"], line["validation_accuracy"], style, marker=".", label=f"seed {seed}")
            kept = line[line["kept"]]
            axis.plot(kept["epoch"], kept["validation_accuracy"], "*", color=drawn.get_color(), markersize=10)
        axis.set_title(f"{dataset} {pretrain}/{method}", fontsize=FONT_PT)
        axis.set_xlabel("epoch (shaded: shared warm start)", fontsize=FONT_PT)
        axis.tick_params(labelsize=FONT_PT)
        axis.grid(alpha=0.3)
    for axis in axes[:, 0]:
        axis.set_ylabel("validation accuracy", fontsize=FONT_PT)
    for axis in list(axes.flat)[len(panels) :]:
        axis.set_visible(False)
    if panels:
        axes.flat[0].legend(fontsize=FONT_PT - 1, title="★ kept epoch", title_fontsize=FONT_PT - 1)
    figure.savefig(path, dpi=DPI)
    plt.close(figure)


def write(train_logs, warm_starts, curves_plot: str | Path, table_path: str | Path) -> pd.DataFrame:
    """The learning-curve figure and the convergence table (CSV) of one run; returns the table."""
    curve_table = curves(train_logs, warm_starts)
    plot_learning_curves(curve_table, curves_plot)
    table = convergence_table(curve_table, train_logs, kept="[{}]")  # a CSV cell: no Markdown
    table = table.rename(columns={TABLE_HEADER[3]: "method's epochs (kept in brackets)"})
    table.to_csv(table_path, index=False)
    return table
