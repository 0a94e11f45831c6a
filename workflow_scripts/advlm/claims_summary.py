"""The claims table for readers: the forest plot, the headline (one line per claim), the report's landing page
and the summary's Markdown."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .claims import NEITHER, NOT_TESTED, PRIMARY, SECONDARY
from .equivalence import NO_EFFECT
from .figures import DPI, FONT_PT
from .stats import format_effect, format_interval

ESTIMAND = (
    "Effect: the treatment group's outcome minus the control group's, averaged over training runs (seeds) and over "
    "the population of examples that the test set and attack sample are drawn from. Where outcomes are per example, "
    "the 95 % interval counts both sources of noise (a crossed seed × example model); for the scalar metrics (ECE, "
    "the neuron metrics: one value per model) it counts the seeds only, so it leaves the test set's example noise "
    "out; attack success is over the examples every model of the contrast classified correctly in that seed, a "
    "population that changes by seed (each row's estimand in ``claims.csv``)."
)
# How the primary endpoints decide: pre-specified, the same on the landing page and in the summary.
VERDICT_RULE = (
    "A claim has one primary endpoint per claim and dataset; its verdict on a dataset is that endpoint's, "
    "Holm-corrected across every claim's primary endpoints on every dataset, and no rule pools the datasets."
)


# --- the forest plot -------------------------------------------------------------------------------------


# Panels of the forest plot: one per claim and scale, so that an effect on a rate never shares an axis with one on
# a calibration error or a neuron share.
SCALES = {
    "accuracy": "difference in accuracy",
    "accuracy_under_attack": "difference in accuracy under attack / attack success",
    "attack_success_rate": "difference in accuracy under attack / attack success",
    "capped_accuracy_under_attack": "difference in accuracy under attack / attack success",
    "words_to_flip": "difference in words-to-flip (share of the cap)",
    "ece": "difference in expected calibration error",
}
VERDICT_COLOURS = {
    "supported": "tab:green",
    "contradicted": "tab:red",
    NO_EFFECT: "tab:blue",
    "inconclusive": "tab:gray",
    NOT_TESTED: "tab:purple",
    "not converged": "tab:orange",
    "not run": "lightgray",
}


def plot_forest(table: pd.DataFrame, path: str | Path) -> None:
    """Every row's effect with its 95 % interval (thick) and Holm-corrected interval (thin), coloured by verdict,
    one panel per claim and metric scale; metrics where lower is better are drawn negated, so right of 0 is always
    "treatment better". Rows without an effect (not run, not converged) are listed in their panel, unplotted."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    table = table.assign(scale=[SCALES.get(m, "difference in neuron specialization metric") for m in table["metric"]])
    panels = list(dict.fromkeys(zip(table["claim"], table["scale"]))) or [("(no claim)", "")]
    sizes = [max(1, int(((table["claim"] == c) & (table["scale"] == k)).sum())) for c, k in panels]
    figure = plt.figure(figsize=(10, 1.2 + sum(0.42 * n + 1.1 for n in sizes)), layout="constrained")
    axes = figure.subplots(len(panels), 1, squeeze=False, gridspec_kw={"height_ratios": [n + 2.6 for n in sizes]})
    for axis, (claim, scale) in zip(axes[:, 0], panels):
        _forest_panel(axis, table[(table["claim"] == claim) & (table["scale"] == scale)])
        axis.set_title(f"{claim}\n{scale}", fontsize=FONT_PT, loc="left")
        axis.set_xlabel("effect (> 0: the treatment is better)", fontsize=FONT_PT)
    handles = [Line2D([], [], color=colour, linewidth=4, label=v) for v, colour in VERDICT_COLOURS.items()]
    handles += [
        Line2D([], [], color="black", linewidth=4, alpha=0.4, label="95 % interval"),
        Line2D([], [], color="black", linewidth=1, alpha=0.4, label="Holm-corrected interval"),
    ]
    figure.legend(
        handles=handles,
        loc="outside upper center",
        ncols=4,
        fontsize=FONT_PT,
        frameon=False,
        title="The claims: treatment minus control, mean over seeds; metrics where lower is better are negated",
        title_fontsize=FONT_PT + 1,
    )
    figure.savefig(path, dpi=DPI)
    plt.close(figure)


def _forest_panel(axis, part: pd.DataFrame) -> None:
    sign = np.where(part["better"] == "lower", -1.0, 1.0)
    y = np.arange(len(part))[::-1]
    colours = [VERDICT_COLOURS.get(v, "tab:gray") for v in part["verdict"]]
    for low, high, width in (("corrected_low", "corrected_high", 1), ("ci_low", "ci_high", 5)):
        lows, highs = part[low].to_numpy(float) * sign, part[high].to_numpy(float) * sign
        axis.hlines(y, np.fmin(lows, highs), np.fmax(lows, highs), linewidth=width, colors=colours, alpha=0.7)
    axis.scatter(part["effect"].to_numpy(float) * sign, y, color="black", s=12, zorder=3)
    labels = [
        f"{r.contrast}\n{r.metric} {r.key}" + ("" if pd.notna(r.effect) else f"  [{r.verdict}]")
        for r in part.itertuples()
    ]
    axis.set_yticks(y, labels, fontsize=FONT_PT)
    axis.set_ylim(-0.7, len(part) - 0.3)
    axis.tick_params(axis="x", labelsize=FONT_PT)
    axis.axvline(0, color="black", linewidth=0.8)


# --- the summary -----------------------------------------------------------------------------------------


def headline_rows(table: pd.DataFrame) -> pd.DataFrame:
    """The primary endpoints: the rows that decide the claims' verdicts."""
    return table[table["endpoint"] == PRIMARY]


def headline(table: pd.DataFrame) -> pd.DataFrame:
    """One line per claim (and dataset): its primary endpoint's contrast, metric and key (with which group's
    training saw the attack), the effect with its 95 % interval, the verdict (Holm across the claims) and n; the
    README and the report lead with it."""
    part = headline_rows(table)
    return pd.DataFrame(
        {
            "claim": part["claim"],
            "contrast": part["contrast"],
            "primary endpoint": [_endpoint_name(r) for r in part.itertuples()],
            "effect [95 % interval]": [
                f"{format_effect(r.effect)} {format_interval(r.ci_low, r.ci_high)}".strip() for r in part.itertuples()
            ],
            "verdict": [_headline_verdict(v, note) for v, note in zip(part["verdict"], part["note"].fillna(""))],
            "n": [_n(r.n_seeds, r.n_examples) for r in part.itertuples()],
        }
    )


def landing_rst(table: pd.DataFrame) -> str:
    """The report's landing-page headline (reStructuredText): each claim's verdict on its primary endpoint, or why
    there is none, with the effect and its interval; Jinja markup in it is left as text."""
    lines = [
        "The answer",
        "----------",
        "",
        f"{ESTIMAND} {VERDICT_RULE} Every row: ``claims.csv``, the summary and the forest plot.",
        "",
    ]
    for row in headline_rows(table).itertuples():
        note = row.note if isinstance(row.note, str) else ""
        effect = f"{format_effect(row.effect)} {_interval_with_noise(row)}".strip()
        lines.append(
            f"- **{row.claim}** ({row.dataset}): **{_headline_verdict(row.verdict, note)}**. {_endpoint_name(row)}, "
            f"{row.contrast}: {effect} ({_n(row.n_seeds, row.n_examples)})."
        )
    return "{% raw %}\n" + "\n".join(lines) + "\n{% endraw %}\n"


def _interval_with_noise(row) -> str:
    """The interval, marked where it counts the seeds' noise only (a scalar metric: the row's estimand)."""
    interval = format_interval(row.ci_low, row.ci_high)
    seeds_only = interval and isinstance(row.estimand, str) and row.estimand.startswith("seeds only")
    return f"{interval} (over seeds only)" if seeds_only else interval


def _endpoint_name(row) -> str:
    name = row.metric if row.key == "all" else f"{row.metric} ({row.key})"
    return f"{name}; {row.exposure}" if isinstance(row.exposure, str) and row.exposure else name


def _headline_verdict(verdict: str, note: str) -> str:
    """The verdict, with the reason where there is none (not converged, not run); power notes stay in the full
    table."""
    if verdict == "not converged":
        return note
    return f"{verdict} ({note})" if verdict in ("not run", NOT_TESTED) and note else verdict


def markdown(table: pd.DataFrame, settings: dict) -> str:
    """The claims for ``summary.md``: per claim its statement, its verdict (the primary endpoint's), and its
    secondary rows, one line each with the effect, its 95 % interval, the Holm-corrected p (within the claim), the
    verdict, n and what an inconclusive row needs. A claim's verdict is its primary endpoint's, never a count."""
    lines = []
    primaries = table[table["endpoint"] == PRIMARY]
    family = _primary_family(primaries)
    for claim, part in table.groupby("claim", sort=False):
        text = settings["statements"][claim].get("text")
        lines += [f"### {claim}", "", f"*{text}*" if text else "", ""]
        for row in primaries[primaries["claim"] == claim].itertuples():
            p_holm = "" if pd.isna(row.p_holm) else f", Holm-adjusted p {row.p_holm:.3g} across {family}"
            lines += [
                f"**Verdict: {_headline_verdict(row.verdict, row.note if isinstance(row.note, str) else '')}** "
                f"(primary endpoint: {_endpoint_name(row)}, {row.contrast}, {row.dataset}: "
                f"{format_effect(row.effect)} {_interval_with_noise(row)}{p_holm}).",
                "",
            ]
        secondary = part[part["endpoint"] == SECONDARY]
        if secondary.empty:
            continue
        shown = secondary.assign(
            effect=secondary["effect"].map(format_effect),
            interval=[format_interval(r.ci_low, r.ci_high) for r in secondary.itertuples()],
            p_holm=secondary["p_holm"].map(lambda p: "" if pd.isna(p) else f"{p:.3g}"),
            n=[_n(r.n_seeds, r.n_examples) for r in secondary.itertuples()],
            note=secondary["note"].fillna(""),
        )
        columns = ["dataset", "contrast", "metric", "key", "effect", "interval", "p_holm", "verdict", "n", "note"]
        lines += ["Secondary rows (Holm within the claim; they do not decide its verdict):", ""]
        if not secondary["exposure"].any():
            lines += [shown[columns].to_markdown(index=False), ""]
            continue
        # Robustness: one table per exposure (which group trained on the attack's transformation), unseen last.
        order = sorted(secondary["exposure"].unique(), key=lambda value: (value == NEITHER, value))
        for value in order:
            rows = shown[secondary["exposure"] == value]
            lines += [
                f"Attacks: {value}",
                "",
                rows[[*columns[:4], "exposure", *columns[4:]]].to_markdown(index=False),
                "",
            ]
    return "\n".join(lines)


def _n(seeds, examples) -> str:
    seeds = 0 if pd.isna(seeds) else int(seeds)
    return f"{seeds} seeds" + ("" if examples is None or pd.isna(examples) else f" × {int(examples)} ex.")


def _primary_family(primaries: pd.DataFrame) -> str:
    """Holm's family of the primary endpoints, counted as what it is: tested endpoints (the claims not run or not
    tested are not in it), with the claims and datasets they come from where there are several datasets."""
    tested = primaries[primaries["p_holm"].notna()]
    text = f"{len(tested)} tested primary endpoint{'s' if len(tested) > 1 else ''}"
    claims, datasets = tested["claim"].nunique(), tested["dataset"].nunique()
    if datasets < 2:
        return text
    by = "×" if len(tested) == claims * datasets else "over"
    return text + f" ({claims} claim{'s' if claims > 1 else ''} {by} {datasets} datasets)"
