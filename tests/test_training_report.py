"""The report's training section (advlm/training_report.py): learning curves and the convergence table, from
training records written here by hand."""

import json

import pandas as pd
import pytest

from advlm import training_report


def record(accuracies, kept_epoch, converged=True, reason="", start=0.5, key="kept_epoch"):
    return {
        "history": [{"epoch": i + 1, "validation": {"accuracy": a}} for i, a in enumerate(accuracies)],
        key: kept_epoch,
        "start_validation": {"accuracy": start},
        "convergence": {"converged": converged, "reason": reason},
    }


@pytest.fixture
def run(tmp_path):
    """Two seeds of none/pgd after a one-epoch warm start; seed 2 did not converge. clean/base has no warm start,
    and its record is of the older kind, whose kept epoch was called best_epoch."""

    def write(path, content):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(content))
        return path

    models = tmp_path / "results" / "models" / "rt"
    train_logs = [
        write(models / "none/pgd/seed1/train_log.json", record([0.70, 0.74, 0.72], 2)),
        write(models / "none/pgd/seed2/train_log.json", record([0.51, 0.52], 2, False, "still improving")),
        write(models / "clean/base/seed1/train_log.json", record([0.66], 1, start=0.48, key="best_epoch")),
    ]
    warm = tmp_path / "results" / "warm_start" / "rt" / "none"
    warm_starts = [
        write(warm / "seed1/train_log.json", record([0.60], 1)),
        write(warm / "seed2/train_log.json", record([0.50], 1)),
    ]
    return train_logs, warm_starts


def test_curves_put_the_warm_start_first_and_mark_the_kept_epoch(run):
    curves = training_report.curves(*run)
    seed1 = curves[(curves["method"] == "pgd") & (curves["seed"] == 1)]
    assert list(seed1["phase"]) == ["warm start", "method", "method", "method"]
    assert list(seed1["epoch"]) == [1, 2, 3, 4]
    assert list(seed1["validation_accuracy"]) == [0.60, 0.70, 0.74, 0.72]
    assert list(seed1["kept"]) == [False, False, True, False]  # the method's epoch 2, the run's epoch 3
    base = curves[curves["method"] == "base"]
    assert list(base["phase"]) == ["start", "method"] and list(base["epoch"]) == [0, 1]
    assert not curves[curves["seed"] == 2]["converged"].any()


def test_the_convergence_table_is_the_docs_table(run):
    train_logs, warm_starts = run
    table = training_report.convergence_table(training_report.curves(train_logs, warm_starts), train_logs)
    assert list(table.columns) == training_report.TABLE_HEADER
    rows = table.set_index(["model", "seed"])
    assert rows.loc[("rt none/pgd", 1)].tolist() == ["0.600", "0.700 → **0.740** → 0.720", "yes"]
    assert rows.loc[("rt none/pgd", 2)].tolist() == ["0.500", "0.510 → **0.520**", "no: still improving"]
    assert rows.loc[("rt clean/base", 1)].tolist() == ["0.480", "**0.660**", "yes"]


def test_write_draws_the_figure_and_a_plain_csv(run, tmp_path):
    train_logs, warm_starts = run
    table = training_report.write(train_logs, warm_starts, tmp_path / "curves.png", tmp_path / "convergence.csv")
    assert (tmp_path / "curves.png").stat().st_size > 1000
    written = pd.read_csv(tmp_path / "convergence.csv", dtype=str)
    assert written.equals(table.astype(str))
    epochs = written["method's epochs (kept in brackets)"].tolist()
    assert epochs == ["[0.660]", "0.700 → [0.740] → 0.720", "0.510 → [0.520]"]
    assert not written.apply(lambda column: column.str.contains(r"\*\*")).any().any()
