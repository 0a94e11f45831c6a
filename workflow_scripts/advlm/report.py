"""Aggregation: per-run records → tidy CSV tables, Markdown summaries (mean ± sd over seeds) and plots."""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display on clusters and CI
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from . import artifacts, claims, claims_summary, robustness_curves, tradeoff  # noqa: E402
from .artifacts import model_of  # noqa: E402
from .figures import DPI, FONT_PT  # noqa: E402
from .neurons.report import (  # noqa: E402
    neuron_metrics,
    plot_layer_changes,
    plot_neurons_per_tag,
    plot_stability_null_ablation,
    plot_tag_layer_heatmap,
    reference_variant,
)

MODEL_KEYS = ["dataset", "pretrain", "method", "seed"]


def attack_metrics(record: dict) -> dict:
    keys = (
        "clean_accuracy",
        "accuracy_under_attack",
        "attack_success_rate",
        "mean_perturbed_word_share",
        "mean_num_queries",
        "mean_seconds",
        "n",
        "query_budget",
    )
    return {key: record[key] for key in keys}


def eval_metrics(record: dict) -> dict:
    return {key: record[key] for key in ("accuracy", "macro_f1", "ece", "n")}


def collect(paths, leaf_name: str, metrics, records=None) -> pd.DataFrame:
    """One row per JSON file: its model keys, its file stem under ``leaf_name`` and ``metrics(record)``
    (``records``: the files' contents when the caller has read them already)."""
    records = records if records is not None else [artifacts.read_json(path) for path in paths]
    rows = []
    for path, record in zip(paths, records):
        keys = model_of(path)
        rows.append({**{k: keys[k] for k in MODEL_KEYS}, leaf_name: keys["leaf"], **metrics(record)})
    return pd.DataFrame(rows)


ALL_CORRECT_METRICS = (
    "accuracy_under_attack",
    "attack_success_rate",
    "mean_perturbed_word_share",
    "mean_num_queries",
    "mean_seconds",
)


def all_correct_table(attack_paths) -> pd.DataFrame:
    """Attack metrics of every model on the examples that every model of its dataset classifies correctly
    (``attacks.metrics.all_correct_summary``), one row per attack summary in ``attack_paths``; the per-example CSV
    lies beside each summary JSON."""
    from .attacks.metrics import all_correct_summary

    groups: dict[tuple, list] = {}
    for path in attack_paths:
        keys = model_of(path)
        groups.setdefault((keys["dataset"], keys["leaf"]), []).append((keys, path))
    rows = []
    for (_, attack), members in sorted(groups.items()):
        frames = {
            index: pd.read_csv(Path(path).with_suffix(".csv"), dtype={"id": str}, keep_default_na=False)
            for index, (_, path) in enumerate(members)
        }
        summaries = all_correct_summary(
            frames, {"query_budget": artifacts.read_json(members[0][1]).get("query_budget")}
        )
        for index, (keys, _) in enumerate(members):
            summary = summaries[index]
            rows.append(
                {
                    **{k: keys[k] for k in MODEL_KEYS},
                    "attack": attack,
                    "n": summary["all_correct_n"],
                    **{metric: summary[metric] for metric in ALL_CORRECT_METRICS},
                }
            )
    return pd.DataFrame(rows, columns=[*MODEL_KEYS, "attack", "n", *ALL_CORRECT_METRICS])


def perturbation_sizes(record: dict) -> dict:
    """Realised perturbation size over training (embedding-space methods), in the norm the budget bounds and as the
    update used it (FreeLB: every pass; mean over passes): relative to the text's word-embedding norm, mean (over
    examples) and maximum; absolute mean; the share of examples at the epsilon bound."""
    epochs = [epoch["perturbation"] for epoch in record["history"] if epoch.get("perturbation")]
    if not epochs:
        return {}
    examples = sum(epoch["examples"] for epoch in epochs)
    mean = sum(epoch["relative_mean"] * epoch["examples"] for epoch in epochs) / examples
    out = {
        "perturbation_norm": epochs[-1].get("norm", "l2"),  # older records measured L2 only
        "perturbation_passes": epochs[-1].get("passes", 1),
        "perturbation_relative_mean": mean,
        "perturbation_relative_max": max(e["relative_max"] for e in epochs),
        "perturbation_mean": sum(e["mean"] * e["examples"] for e in epochs) / examples,
    }
    if all("at_bound" in epoch for epoch in epochs):
        out["perturbation_at_bound"] = sum(e["at_bound"] * e["examples"] for e in epochs) / examples
    return out


_WARM_START_PATH = re.compile(r"warm_start/(?P<dataset>[^/]+)/(?P<pretrain>[^/]+)/seed(?P<seed>\d+)/train_log\.json$")


def warm_start_table(paths) -> pd.DataFrame:
    """Per (dataset, pre-training variant, seed): the shared warm start's steps, examples, passes and time."""
    rows = []
    for path in paths:
        keys = _WARM_START_PATH.search(str(path)).groupdict()
        record = artifacts.read_json(path)
        rows.append(
            {
                **keys,
                "seed": int(keys["seed"]),
                "warm_start_steps": record["steps"],
                "warm_start_examples_seen": record["examples_seen"],
                "warm_start_seconds": record["train_seconds"],
                "warm_start_validation_accuracy": record["history"][-1]["validation"]["accuracy"],
            }
        )
    return pd.DataFrame(rows, columns=["dataset", "pretrain", "seed", *WARM_START_COLUMNS])


WARM_START_COLUMNS = [
    "warm_start_steps",
    "warm_start_examples_seen",
    "warm_start_seconds",
    "warm_start_validation_accuracy",
]


def training_table(paths, warm_starts=()) -> pd.DataFrame:
    """One row per model: convergence (the check's figures: the gain per epoch over its window and its upper bound,
    whether the training loss levels off), the kept epoch and its strength (the budget scale, epsilon and share of
    its steps at full strength), the equal-footing figures (optimizer steps, examples seen, forward and backward
    passes per step, the input-space methods' attack passes and adversarial examples, wall time) of the method's own
    epochs, and those of the shared warm start it continued from (``warm_starts``: its records), if any."""
    rows = []
    for path in paths:
        record = artifacts.read_json(path)
        kept = record["history"][record["kept_epoch"] - 1]
        rows.append(
            {
                **{k: model_of(path)[k] for k in MODEL_KEYS},
                "converged": record["convergence"]["converged"],
                "not_converged_because": record["convergence"]["reason"],
                **perturbation_sizes(record),
                "kept_epoch": record["kept_epoch"],
                "epochs_run": record["epochs_run"],
                "kept_budget_scale": record["kept_strength"]["budget_scale"],
                "kept_epsilon": record["kept_strength"]["epsilon"],
                "kept_full_strength_share": record["kept_strength"]["full_strength_share"],
                "validation_accuracy": kept["validation"]["accuracy"],
                "gain_per_epoch": record["convergence"]["gain_per_epoch"],
                "gain_upper": record["convergence"]["gain_upper"],
                "loss_levelling": record["convergence"]["loss_levelling"],
                "train_seconds": record["train_seconds"],
                "steps": record["steps"],
                "examples_seen": record["examples_seen"],
                "forward_per_step": record["passes_per_step"]["forward"],
                "backward_per_step": record["passes_per_step"]["backward"],
                "attack_forward": record["passes"]["examples"]["forward"],
                "adversarial_examples": record["adversarial"]["examples"],
                "adversarial_seen": record["adversarial"]["seen"],
                "kept_saw_adversarial": record["adversarial"]["examples"] > 0,
            }
        )
    table = pd.DataFrame(rows)
    if len(warm_starts):
        table = table.merge(warm_start_table(warm_starts), on=["dataset", "pretrain", "seed"], how="left")
    return table


def mean_sd(frame: pd.DataFrame, by: list[str], metrics: list[str]) -> pd.DataFrame:
    """Mean ± standard deviation over seeds, formatted for Markdown (sd omitted with a single seed); the
    seeds, and the examples per seed (``n``, a range where seeds differ) where the table has them."""
    grouped = frame.groupby(by, sort=True)
    mean, sd, count = grouped[metrics].mean(), grouped[metrics].std(ddof=1), grouped[metrics].count()
    cells = mean.copy().astype(object)
    for column in metrics:
        cells[column] = [
            "n/a" if pd.isna(m) else f"{m:.3f}" if n < 2 or pd.isna(s) else f"{m:.3f} ± {s:.3f}"
            for m, s, n in zip(mean[column], sd[column], count[column])
        ]
    cells["seeds"] = count[metrics[0]]
    if "n" in frame.columns:
        low, high = grouped["n"].min(), grouped["n"].max()
        cells["n"] = [f"{a}" if a == b else f"{a}–{b}" for a, b in zip(low, high)]
    return cells.reset_index()


def plot_bars(frame: pd.DataFrame, x: str, value: str, title: str, path: str | Path) -> None:
    """Grouped bars: one group per ``x`` value, one bar per (pretrain, method), error bars = sd over seeds."""
    frame = frame.assign(variant=frame["pretrain"] + " / " + frame["method"])
    stats = frame.groupby([x, "variant"])[value].agg(["mean", "std"]).reset_index()
    groups, variants = sorted(stats[x].unique()), sorted(stats["variant"].unique())
    width = 0.8 / len(variants)
    figure, axis = plt.subplots(
        figsize=(3 + max(4, 1.4 * len(groups) * max(1, len(variants) / 3)), 4), layout="constrained"
    )
    for i, variant in enumerate(variants):
        part = stats[stats["variant"] == variant].set_index(x).reindex(groups)
        axis.bar(
            [g + i * width for g in range(len(groups))],
            part["mean"],
            width,
            yerr=part["std"].fillna(0),
            capsize=2,
            label=variant,
        )
    axis.set_xticks([g + width * (len(variants) - 1) / 2 for g in range(len(groups))], groups, fontsize=FONT_PT)
    axis.tick_params(labelsize=FONT_PT)
    axis.set_ylabel(value.replace("_", " "), fontsize=FONT_PT)
    axis.set_ylim(0, 1)
    axis.set_title(title, fontsize=FONT_PT + 1)
    figure.legend(loc="outside right upper", fontsize=FONT_PT, title="pre-training / method", title_fontsize=FONT_PT)
    figure.savefig(path, dpi=DPI)
    plt.close(figure)


def write_report(
    inputs: dict, out_dir: str | Path, claims_settings: dict, experiment: dict, description: str | Path | None = None
) -> dict[str, pd.DataFrame]:
    """Write the tables (CSV), ``summary.md`` and the plots from the per-run records in ``inputs``; the claims
    (``claims_settings``: the config's ``claims``; ``experiment``: what was run) lead. ``description``: the HTML
    report's landing page (report/workflow.rst), written to ``landing.rst`` with the claims' verdicts after it."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    neuron_records = [artifacts.read_json(path) for path in inputs["probes"]]
    outcomes = claims.load_outcomes(
        inputs["predictions"], inputs["eval"], inputs["attack_examples"], inputs["probes"], claims_settings["word_cap"]
    )
    unconverged = claims.unconverged_models(inputs["train_logs"]) if claims_settings["require_converged"] else set()
    claims_table = claims.claims_table(outcomes, claims_settings, experiment, unconverged)
    claims_table.to_csv(out_dir / "claims.csv", index=False)
    claims_summary.plot_forest(claims_table, out_dir / "claims.png")
    claims_summary.plot_forest(claims_summary.headline_rows(claims_table), out_dir / "claims_headline.png")
    if description is not None:
        landing = Path(description).read_text().rstrip("\n") + "\n\n" + claims_summary.landing_rst(claims_table)
        (out_dir / "landing.rst").write_text(landing)
    tables = {
        "training": training_table(inputs["train_logs"], inputs.get("warm_starts", [])),
        "generalization": collect(inputs["eval"], "evalset", eval_metrics),
        "robustness": collect(inputs["attacks"], "attack", attack_metrics),
        "robustness_all_correct": all_correct_table(inputs["attacks"]),
        "neurons": collect(inputs["probes"], "probe", neuron_metrics, neuron_records),
    }
    for name, table in tables.items():
        table.sort_values(MODEL_KEYS).to_csv(out_dir / f"{name}.csv", index=False)
    chance = tradeoff.chance_table(inputs["predictions"])
    tradeoffs = tradeoff.summarize(
        tradeoff.tradeoff_table(tables["generalization"], tables["robustness"], experiment, chance), experiment
    )
    tradeoffs.to_csv(out_dir / "tradeoff.csv", index=False)
    tradeoff.plot_tradeoff(tradeoffs, out_dir / "tradeoff.png")
    variant = ["dataset", "pretrain", "method"]
    sections = {
        "Generalization (accuracy, macro-F1, ECE; in-domain test and out-of-domain sets)": _summary(
            tables["generalization"], [*variant, "evalset"]
        ),
        "Robustness (on the seeded attack sample)": _summary(tables["robustness"], [*variant, "attack"]),
        "Robustness on the examples every model of the dataset classifies correctly (A2T protocol)": _summary(
            tables["robustness_all_correct"], [*variant, "attack"]
        ),
        "Neurons (linguistic correlation analysis, POS probe)": _summary(tables["neurons"], [*variant, "probe"]),
        "Training": _summary(tables["training"], variant),
    }
    markdown = [
        "# Results",
        "",
        "## Claims (seed-paired contrasts)",
        "",
        f"{claims_summary.ESTIMAND} {claims_summary.VERDICT_RULE} Every other row is secondary, Holm-corrected "
        "within its claim (below, with what an inconclusive row needs).",
        "",
        claims_summary.headline(claims_table).to_markdown(index=False),
        "",
        claims_summary.markdown(claims_table, claims_settings),
        "",
    ]
    for title, table in sections.items():
        markdown += [f"## {title}", "", table.to_markdown(index=False), ""]
    (out_dir / "summary.md").write_text("\n".join(markdown))
    plot_bars(
        tables["generalization"], "evalset", "accuracy", "Accuracy in and out of domain", out_dir / "generalization.png"
    )
    robustness_curves.plot_curves(inputs["attack_examples"], out_dir / "robustness.png")
    probes = {}  # {variant: {seed: probe record}}, from the records the neuron table already read
    for path, record in zip(inputs["probes"], neuron_records):
        keys = model_of(path)
        probes.setdefault(" / ".join(keys[k] for k in variant), {})[keys["seed"]] = record
    plot_tag_layer_heatmap(probes, out_dir / "neurons_tag_layer.png")
    plot_neurons_per_tag(probes, out_dir / "neurons_per_tag.png")
    reference_of = {label: reference_variant(label) for label in probes}
    plot_layer_changes(probes, reference_of, out_dir / "neurons_layers.png")
    plot_stability_null_ablation(probes, reference_of, out_dir / "neurons_stability.png")
    return tables


def _summary(table: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """Mean ± sd over seeds of every metric column; sizes and budgets are settings, not outcomes."""
    settings = {"seed", "n", "query_budget", "ablation_n"}
    outcomes = table.select_dtypes(include=["number", "bool"]).columns  # text columns (reasons) stay in the CSV
    return mean_sd(table, by, [c for c in outcomes if c not in {*by, *settings}])
