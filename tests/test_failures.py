"""A job that fails says why in its own log file, which --show-failed-logs (the default profile) prints."""

from smk import run, write_overlay


def test_a_failing_job_logs_its_traceback_and_leaves_nothing(tmp_path, tiny_bert):
    bad = tmp_path / "mine.csv"
    bad.write_text("text,label\n" + "".join(f"review {i},{i % 2}\n" for i in range(40)) + "a third class,2\n")
    overlay = write_overlay(
        tmp_path,
        model={"name": str(tiny_bert), "max_length": 32},
        data={"sources": {"mine": {"kind": "file", "path": str(bad)}}},
    )
    result = run(tmp_path, "results/data/mine/train.jsonl", configfiles=[overlay], check=False)
    assert result.returncode != 0
    problem = f"{bad}: row 41 (line 42): label 2 is outside the declared label set [0, 1]"
    log = (tmp_path / "results/logs/prepare_dataset/mine.log").read_text()
    assert "Traceback (most recent call last)" in log and f"DataError: {problem}" in log
    assert problem in result.stdout + result.stderr  # the log, shown by --show-failed-logs
    assert not list((tmp_path / "results" / "data").rglob("*.*"))  # nothing left behind
