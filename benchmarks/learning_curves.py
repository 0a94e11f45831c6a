"""Learning curves of a run (not a test): validation accuracy after every epoch of every model and seed, from the
training records under results/, with the shared warm start's epochs first, the kept epoch marked and the
convergence check's verdict, as a Markdown table (the HTML report's convergence table, advlm/training_report.py);
then, from the run's training table (results/report/training.csv), the models' footing: what each trained on, seed
by seed (docs/protocol.md's equal-footing table).

    .venv/bin/python benchmarks/learning_curves.py            # results/ of this checkout
    .venv/bin/python benchmarks/learning_curves.py other/results
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from advlm import training_report

ROOT = Path(__file__).resolve().parents[1]
# training table column(s) -> the footing table's header; two columns are shown as "a / b" within a seed
FOOTING = {
    "epochs run": ["epochs_run"],
    "kept epoch": ["kept_epoch"],
    "kept ε": ["kept_epsilon"],
    "steps": ["steps"],
    "examples seen": ["examples_seen"],
    "adversarial examples (distinct, seen)": ["adversarial_examples", "adversarial_seen"],
    "forward, backward per step": ["forward_per_step", "backward_per_step"],
    "attack passes": ["attack_forward"],
    "seconds": ["train_seconds"],
}


def _cell(value) -> str:
    if isinstance(value, float):
        return "–" if pd.isna(value) else f"{value:.3g}" if value != int(value) else f"{value:.0f}"
    return str(value)


def equal_footing(training: pd.DataFrame) -> list[str]:
    """Markdown rows of the footing table: one row per model, each cell the seeds' values in seed order joined by
    ' / ' (a pair of columns as 'a, b' within a seed)."""
    lines = ["| model | " + " | ".join(FOOTING) + " |", "|---|" + "---|" * len(FOOTING)]
    for (dataset, pretrain, method), rows in training.sort_values("seed").groupby(["dataset", "pretrain", "method"]):
        cells = [
            " / ".join(", ".join(_cell(row[c]) for c in columns) for _, row in rows.iterrows())
            for columns in FOOTING.values()
        ]
        lines.append(f"| {dataset} {pretrain}/{method} | " + " | ".join(cells) + " |")
    return lines


def main() -> None:
    results = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "results"
    train_logs = sorted(results.glob("models/*/*/*/seed*/train_log.json"))
    warm_starts = sorted(results.glob("warm_start/*/*/seed*/train_log.json"))
    table = training_report.convergence_table(training_report.curves(train_logs, warm_starts), train_logs)
    print("| " + " | ".join(training_report.TABLE_HEADER) + " |")
    print("|" + "---|" * len(training_report.TABLE_HEADER))
    for row in table.itertuples(index=False):
        print("| " + " | ".join(map(str, row)) + " |")
    if (results / "report" / "training.csv").exists():
        training = pd.read_csv(results / "report" / "training.csv")
        seeds = ", ".join(map(str, sorted(training["seed"].unique())))
        print(f"\nFooting per model, seeds {seeds} in order:\n")
        print("\n".join(equal_footing(training)))


if __name__ == "__main__":
    main()
