"""Every report figure is readable at its saved size: rendered from synthetic tables at the smallest and the largest
shapes the tests use, each figure, when saved, has every text inside its canvas, no text below 8 pt, and no two
texts (labels, ticks, titles, legend entries) overlapping, nor a legend over an axis and its labels."""

import itertools

import matplotlib

matplotlib.use("Agg")
import matplotlib.figure  # noqa: E402
import matplotlib.text  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from advlm import claims_summary, report, tradeoff  # noqa: E402
from advlm.neurons import report as neuron_report  # noqa: E402

MIN_PT = 8
METHODS = ["base", "advaug", "a2t", "pgd", "freelb", "lds"]
ATTACKS = ["pwws", "deepwordbug", "textfooler", "a2t", "bae", "bert-attack"]
TAGS = ["ADJ", "ADP", "ADV", "AUX", "CCONJ", "DET", "INTJ", "NOUN", "NUM", "PART", "PRON", "PROPN", "PUNCT", "SCONJ"]


def problems(figure) -> list[str]:
    """What makes ``figure`` hard to read, as it would be saved."""
    renderer = figure.canvas.get_renderer()
    canvas = figure.bbox
    found, boxes = [], []
    undrawn = {id(label) for axis in figure.axes for label in _ticks_out_of_view(axis)}
    for text in figure.findobj(matplotlib.text.Text):
        if not text.get_visible() or not text.get_text().strip() or id(text) in undrawn:
            continue
        box = text.get_window_extent(renderer)
        name = repr(text.get_text()[:40])
        if text.get_fontsize() < MIN_PT:
            found.append(f"{name}: {text.get_fontsize()} pt")
        if box.x0 < canvas.x0 - 1 or box.y0 < canvas.y0 - 1 or box.x1 > canvas.x1 + 1 or box.y1 > canvas.y1 + 1:
            found.append(f"{name}: outside the canvas {box.bounds} of {canvas.bounds}")
        boxes.append((name, box))
    for (first, a), (second, b) in itertools.combinations(boxes, 2):
        if a.overlaps(b) and _overlap_area(a, b) > 2:  # more than a shared edge of a pixel or two
            found.append(f"{first} overlaps {second}")
    for legend in figure.legends:
        box = legend.get_window_extent(renderer)
        for axis in figure.axes:
            if axis.get_visible() and axis.axison and _overlap_area(box, axis.get_tightbbox(renderer)) > 2:
                found.append(f"a legend covers an axis: {box.bounds} over {axis.get_tightbbox(renderer).bounds}")
    return found


def _ticks_out_of_view(axis) -> list:
    """Tick labels matplotlib keeps but does not draw: those at locations outside the axis' view limits."""
    hidden = []
    for labels, (low, high), coordinate in (
        (axis.get_xticklabels(), sorted(axis.get_xlim()), 0),
        (axis.get_yticklabels(), sorted(axis.get_ylim()), 1),
    ):
        span = high - low
        hidden += [t for t in labels if not low - 1e-9 * span <= t.get_position()[coordinate] <= high + 1e-9 * span]
    return hidden


def _overlap_area(a, b) -> float:
    width = min(a.x1, b.x1) - max(a.x0, b.x0)
    height = min(a.y1, b.y1) - max(a.y0, b.y0)
    return max(0.0, width) * max(0.0, height)


@pytest.fixture
def checked(monkeypatch):
    """Every figure saved in the test is checked first; the problems of each are collected by file name."""
    found = {}
    save = matplotlib.figure.Figure.savefig

    def checking_save(figure, path, *args, **kwargs):
        figure.canvas.draw()
        found[str(path).rsplit("/", 1)[-1]] = problems(figure)
        return save(figure, path, *args, **kwargs)

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", checking_save)
    return found


def claims_table(claim_count: int, contrast_count: int, attacks: list[str]) -> pd.DataFrame:
    rng = np.random.default_rng(claim_count)
    rows = []
    families = ["robustness", "generalization", "neurons"]
    for c in range(claim_count):
        family = families[c % 3]
        metrics = {
            "robustness": [("accuracy_under_attack", "higher"), ("attack_success_rate", "lower")],
            "generalization": [("accuracy", "higher"), ("ece", "lower")],
            "neurons": [("minimal_share", "lower"), ("selectivity", "higher")],
        }[family]
        keys = {"robustness": attacks, "generalization": ["test", "ood_mean"], "neurons": ["all"]}[family]
        for k in range(contrast_count):
            treatment = " + ".join(f"none/{m}" for m in METHODS[3 : 3 + 1 + k % 3])
            contrast = f"{treatment} vs none/base + none/advaug"
            for (metric, better), key in itertools.product(metrics, keys):
                effect = rng.normal(0, 0.05)
                verdict = ["supported", "contradicted", "inconclusive", "not converged", "not run"][len(rows) % 5]
                tested = verdict not in ("not converged", "not run")
                rows.append(
                    {
                        "claim": f"claim_{c}_{family}_with_a_long_name",
                        "contrast": contrast,
                        "metric": metric,
                        "key": key,
                        "better": better,
                        "effect": effect if tested else np.nan,
                        "ci_low": effect - 0.03 if tested else np.nan,
                        "ci_high": effect + 0.03 if tested else np.nan,
                        "corrected_low": effect - 0.05 if tested else np.nan,
                        "corrected_high": effect + 0.05 if tested else np.nan,
                        "verdict": verdict,
                    }
                )
    return pd.DataFrame(rows)


def generalization_and_robustness(methods: list[str], attacks: list[str], ood: list[str]):
    rng = np.random.default_rng(len(methods))
    generalization, robustness = [], []
    for method, seed in itertools.product(methods, (1, 2, 3)):
        model = {"dataset": "rotten_tomatoes", "pretrain": "none", "method": method, "seed": seed}
        for evalset in ["test", *ood]:
            generalization.append({**model, "evalset": evalset, "accuracy": rng.uniform(0.6, 0.8)})
        for attack in attacks:
            robustness.append({**model, "attack": attack, "accuracy_under_attack": rng.uniform(0.05, 0.5)})
    return pd.DataFrame(generalization), pd.DataFrame(robustness)


def probe_records(variants: list[str], tags: list[str], layers: int = 7) -> dict:
    rng = np.random.default_rng(len(variants))

    def spread():
        values = rng.uniform(0.02, 0.2, 3)
        return {"values": values.tolist(), "mean": values.mean(), "refit_sd": values.std(ddof=1)}

    def record():
        per_tag_layer = {tag: rng.integers(0, 5, layers).tolist() for tag in tags}
        ood = {key: rng.uniform(0.5, 0.8) for key in ("none", "specific_drop")}
        return {
            "classes": tags,
            "top_neurons": {
                "per_tag_layer": per_tag_layer,
                "per_tag": {tag: int(sum(counts)) for tag, counts in per_tag_layer.items()},
                "mass_share": 0.5,
            },
            "accuracy": {"per_layer": [{"test": rng.uniform(0.5, 0.9)} for _ in range(layers)]},
            "minimal_subset": {"share": spread()},
            "null": {"share": spread()},
            "stability": {
                "top_k_layer_distribution": rng.integers(0, 10, layers).tolist(),
                "top_k_overlap": {"mean": rng.uniform(0.1, 0.6), "chance": 50 / 2688},
            },
            "classifier_ablation": {"per_set": {"test": {"specific_drop": rng.normal(0, 0.02)}}, "ood_mean": ood},
        }

    return {variant: {seed: record() for seed in (1, 2)} for variant in variants}


SHAPES = {  # the smallest and the largest of the tests' and the default experiment's shapes
    "small": {"claims": (1, 1), "methods": ["base"], "attacks": ["deepwordbug"], "ood": [], "tags": TAGS[:3]},
    "large": {"claims": (6, 2), "methods": METHODS, "attacks": ATTACKS, "ood": ["imdb", "amazon", "tweets", "nyt"]},
}
SHAPES["large"]["tags"] = TAGS


@pytest.mark.parametrize("shape", SHAPES)
def test_every_report_figure_is_readable_at_its_saved_size(shape, checked, tmp_path):
    sizes = SHAPES[shape]
    claims_summary.plot_forest(claims_table(*sizes["claims"], sizes["attacks"]), tmp_path / "claims.png")
    generalization, robustness = generalization_and_robustness(sizes["methods"], sizes["attacks"], sizes["ood"])
    experiment = {
        "ood": {"rotten_tomatoes": sizes["ood"]},
        "points": {m: {"method": m, "values": {}} for m in sizes["methods"]},
    }
    summary = tradeoff.summarize(tradeoff.tradeoff_table(generalization, robustness, experiment), experiment)
    tradeoff.plot_tradeoff(summary, tmp_path / "tradeoff.png")
    report.plot_bars(generalization, "evalset", "accuracy", "Accuracy in and out of domain", tmp_path / "bars.png")
    variants = [f"rotten_tomatoes / none / {m}" for m in [*sizes["methods"], "pretrained"]]
    records = probe_records(variants, sizes["tags"])
    neuron_report.plot_tag_layer_heatmap(records, tmp_path / "heatmap.png")
    neuron_report.plot_neurons_per_tag(records, tmp_path / "per_tag.png")
    reference_of = {variant: neuron_report.reference_variant(variant) for variant in variants}
    neuron_report.plot_layer_changes(records, reference_of, tmp_path / "layers.png")
    neuron_report.plot_stability_null_ablation(records, reference_of, tmp_path / "stability.png")
    figures = {"claims.png", "tradeoff.png", "bars.png", "heatmap.png", "per_tag.png", "layers.png", "stability.png"}
    assert set(checked) == figures
    assert {name: found for name, found in checked.items() if found} == {}


def test_the_check_catches_an_unreadable_figure(checked, tmp_path):
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(2, 1.5))
    axis.set_xlabel("a label far too long for a figure this narrow, in small type", fontsize=6)
    axis.plot([0, 1], [0, 1], label="line")
    axis.legend(loc="center")
    figure.savefig(tmp_path / "bad.png")
    plt.close(figure)
    found = checked["bad.png"]
    assert any("6" in f and "pt" in f for f in found) and any("outside the canvas" in f for f in found)
