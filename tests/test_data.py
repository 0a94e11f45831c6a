import json

import pandas as pd
import pytest

from advlm import artifacts, data

SETTINGS = {
    "labels": [0, 1],
    "seed": 13,
    "split": {"validation": 0.2, "test": 0.2},
    "max_examples": {"train": None, "validation": None, "test": None},
}


def _frame(n=50):
    return pd.DataFrame(
        {
            "id": [f"x-{i}" for i in range(n)],
            "text": [f"text number {i}" for i in range(n)],
            "label": [i % 2 for i in range(n)],
        }
    )


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
    frame = pd.DataFrame(
        {"id": ["a", "b", "c"], "text": ["good<br /><br />film", "good  film", "bad"], "label": [1, 1, 0]}
    )
    cleaned, dropped = data.clean_texts(frame)
    assert cleaned["text"].tolist() == ["good film", "bad"] and dropped == 1


@pytest.mark.parametrize(
    "bad, message",
    [
        (pd.DataFrame({"id": ["a"], "label": [1]}), "missing column 'text'"),
        (pd.DataFrame({"id": ["a", "b"], "text": ["ok", "  "], "label": [1, 0]}), "row 2: empty"),
        (pd.DataFrame({"id": ["a", "b"], "text": ["ok", "fine"], "label": [1, 2]}), "row 2: label 2 is outside"),
        (pd.DataFrame({"id": ["a", "a"], "text": ["ok", "fine"], "label": [1, 0]}), "row 2: duplicate id"),
    ],
)
def test_malformed_data_names_file_row_and_problem(bad, message):
    with pytest.raises(data.DataError, match=message) as error:
        data.validate_examples(bad, [0, 1], "some/file.csv")
    assert "some/file.csv" in str(error.value)


def _csv(extra: str = "", rows: int = 40) -> bytes:
    """A valid CSV of ``rows`` balanced examples (lines 2..rows+1), then ``extra`` lines."""
    return ("text,label\n" + "".join(f"review {i},{i % 2}\n" for i in range(rows)) + extra).encode()


def _jsonl(extra: str = "", rows: int = 40) -> bytes:
    return ("".join(f'{{"text": "review {i}", "label": {i % 2}}}\n' for i in range(rows)) + extra).encode()


BAD_FILES = [  # (suffix, content, what the message must say besides the file name)
    (".jsonl", _jsonl('{"text": "cut short", "label": 1\n'), "line 41: not valid JSON"),
    (".jsonl", _jsonl('["a list", 1]\n'), "line 41: a JSON list, not an object"),
    (".jsonl", _jsonl('{"text": "", "label": 1}\n'), "row 41 (line 41): empty or non-text 'text'"),
    (".jsonl", _jsonl('{"text": "no label"}\n'), "row 41 (line 41): empty label"),
    (".jsonl", _jsonl('{"text": "a word label", "label": "pos"}\n'), "row 41 (line 41): label 'pos' is outside"),
    (".jsonl", _jsonl('{"text": "a bool", "label": true}\n'), "row 41 (line 41): label True is outside"),
    (".csv", _csv("an empty label,\n"), "row 41 (line 42): empty label"),
    (".csv", _csv("a label too many,2\n"), "row 41 (line 42): label 2 is outside the declared label set [0, 1]"),
    (".csv", _csv("half a label,0.5\n"), "row 41 (line 42): label 0.5 is outside"),
    (".csv", _csv('"a text over\ntwo lines",1\nbad,7\n'), "row 42 (line 44): label 7 is outside"),
    (".csv", _csv() + b"caf\xe9 au lait,1\n", "line 42: bytes that are not UTF-8"),
    (".csv", _csv('"an open quote,1\n'), "not a readable CSV file"),
    (".csv", b"text,label\n", "no example has label [0, 1]"),
    (".csv", _csv().replace(b",0\n", b",1\n"), "no example has label [0]"),
    (
        ".csv",
        _csv(rows=14),
        "label 0 has 7 examples (after dropping duplicate texts); a stratified split with "
        "validation 0.1 and test 0.1 needs at least 10 of each label",
    ),
    (".csv", b"review,label\ngood,1\n", "missing column 'text'"),
    (".parquet", b"PAR1 not really parquet", "not a readable Parquet file"),
    (".txt", b"text,label\n", "unsupported file type '.txt'"),
]


@pytest.mark.parametrize("suffix, content, message", BAD_FILES)
def test_bad_data_files_stop_prepare_dataset_naming_file_row_and_problem(tmp_path, suffix, content, message):
    path = tmp_path / f"reviews{suffix}"
    path.write_bytes(content)
    settings = {**SETTINGS, "split": {"validation": 0.1, "test": 0.1}}
    with pytest.raises(data.DataError) as error:
        data.prepare_dataset("mine", {"kind": "file", "path": str(path)}, settings, tmp_path / "out")
    assert str(error.value).startswith(str(path)) and message in str(error.value), str(error.value)
    assert not (tmp_path / "out").exists()  # nothing left behind


def test_local_csv_source_with_other_column_names(tmp_path):
    path = tmp_path / "reviews.csv"
    pd.DataFrame({"review": ["great", "awful", "fine"], "stars": [1, 0, 1]}).to_csv(path, index=False)
    frame, origin = data.load_source(
        {"kind": "file", "path": str(path), "text_column": "review", "label_column": "stars"}
    )
    assert frame["text"].tolist() == ["great", "awful", "fine"] and origin["sha256"]
    with pytest.raises(data.DataError, match="missing column 'text'"):
        data.load_source({"kind": "file", "path": str(path)})


def test_prepare_dataset_from_movie_reviews(tmp_path):
    settings = {**SETTINGS, "max_examples": {"train": 30, "validation": 10, "test": 10}}
    meta = data.prepare_dataset(
        "rotten_tomatoes", {"kind": "movie_reviews", "name": "rotten_tomatoes"}, settings, tmp_path
    )
    assert meta["source_rows"] == 8530 and meta["sizes"] == {"train": 30, "validation": 10, "test": 10}
    test = artifacts.read_examples(tmp_path / "test.jsonl")
    assert list(test.columns) == ["id", "text", "label"] and set(test["label"]) == {0, 1}
    assert json.loads((tmp_path / "meta.json").read_text())["label_counts"]["test"] == {"0": 5, "1": 5}


def test_vader_binarisation_drops_the_ambiguous_band(tmp_path):
    path = tmp_path / "set.tsv"
    path.write_text("1\t2.5\tlovely\n2\t0.3\tmeh\n3\t-1.0\tbad\n4\t-0.5\tborderline\n")
    frame, dropped = data.load_vader(path, threshold=0.5)
    assert frame["text"].tolist() == ["lovely", "bad"] and frame["label"].tolist() == [1, 0] and dropped == 2
    path.write_text("1\t2.5\tlovely\n2\tgood\tmeh\n")
    with pytest.raises(data.DataError, match=f"{path}: line 2: rating 'good' is not a number"):
        data.load_vader(path, threshold=0.5)


def test_vader_sets_from_the_archive(resources_dir, tmp_path):
    meta = data.prepare_vader_set(
        "tweets",
        resources_dir / "vader",
        {"threshold": 0.5, "max_examples": None, "seed": 1},
        tmp_path / "tweets.jsonl",
    )
    # 4,200 rated tweets; 838 within ±0.5 (../shared/research/offline-resources.md §2.2)
    assert meta["dropped_ambiguous"] == 838 and meta["size"] + meta["duplicates_dropped"] == 4200 - 838
    frame = artifacts.read_examples(tmp_path / "tweets.jsonl")
    assert ((frame["rating"] > 0.5) == (frame["label"] == 1)).all()
