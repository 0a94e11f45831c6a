"""Learning curves of a run (not a test): validation accuracy after every epoch of every model and seed, from the
training records under results/, with the shared warm start's epochs first, the kept epoch marked and the
convergence check's verdict, as a Markdown table (the HTML report's convergence table, advlm/training_report.py).

    .venv/bin/python benchmarks/learning_curves.py            # results/ of this checkout
    .venv/bin/python benchmarks/learning_curves.py other/results
"""

from __future__ import annotations

import sys
from pathlib import Path

from advlm import training_report

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    results = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "results"
    train_logs = sorted(results.glob("models/*/*/*/seed*/train_log.json"))
    warm_starts = sorted(results.glob("warm_start/*/*/seed*/train_log.json"))
    table = training_report.convergence_table(training_report.curves(train_logs, warm_starts), train_logs)
    print("| " + " | ".join(training_report.TABLE_HEADER) + " |")
    print("|" + "---|" * len(training_report.TABLE_HEADER))
    for row in table.itertuples(index=False):
        print("| " + " | ".join(map(str, row)) + " |")


if __name__ == "__main__":
    main()
