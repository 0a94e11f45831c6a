"""Learning curves of a run (not a test): validation accuracy after every epoch of every model and seed, from the
training records under results/, with the shared warm start's epochs first, the kept epoch marked and the
convergence check's verdict.

    .venv/bin/python benchmarks/learning_curves.py            # results/ of this checkout
    .venv/bin/python benchmarks/learning_curves.py other/results
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def curve(record: dict) -> list[str]:
    """Validation accuracy per epoch, the kept one in bold."""
    return [
        f"**{e['validation']['accuracy']:.3f}**"
        if e["epoch"] == record["kept_epoch"]
        else f"{e['validation']['accuracy']:.3f}"
        for e in record["history"]
    ]


def rows(results: Path) -> list[tuple[str, int, str, str, str]]:
    out = []
    for path in sorted(results.glob("models/*/*/*/seed*/train_log.json")):
        dataset, pretrain, method, seed = path.parts[-5:-1]
        record = json.loads(path.read_text())
        warm = results / "warm_start" / dataset / pretrain / seed / "train_log.json"
        warm_curve = (
            [f"{e['validation']['accuracy']:.3f}" for e in json.loads(warm.read_text())["history"]]
            if warm.exists()
            else []
        )
        start = f"{record['start_validation']['accuracy']:.3f}" if not warm_curve else "↳"
        status = "yes" if record["convergence"]["converged"] else f"**no**: {record['convergence']['reason']}"
        out.append(
            (
                f"{dataset} {pretrain}/{method}",
                int(seed.removeprefix("seed")),
                " → ".join(warm_curve) or start,
                " → ".join(curve(record)),
                status,
            )
        )
    return sorted(out, key=lambda row: (row[0], row[1]))


def main() -> None:
    results = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "results"
    print("| model | seed | warm start (clean) | method's epochs (kept in bold) | converged |")
    print("|---|---|---|---|---|")
    for row in rows(results):
        print("| " + " | ".join(map(str, row)) + " |")


if __name__ == "__main__":
    main()
