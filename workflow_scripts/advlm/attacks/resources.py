"""Where an attack finds its offline resources, and their identity (checksums, not paths)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

from . import catalog


@dataclasses.dataclass(frozen=True)
class AttackResources:
    """Where an attack finds its offline resources.

    ``root`` holds ``nltk_data/`` (and receives TextAttack's cache); the embedding directory (written by the
    ``build_embeddings`` rule, with the sentence-encoder calibration) and the sentence encoder default to
    ``root/counterfitted`` and ``root/minilm``; ``masked_lm`` is a local directory or a Hub name.
    """

    root: Path
    counterfitted: Path | None = None
    sentence_encoder: Path | None = None
    masked_lm: str | None = None

    @classmethod
    def coerce(cls, value) -> AttackResources:
        return value if isinstance(value, cls) else cls(Path(value))

    @property
    def embedding_dir(self) -> Path:
        return Path(self.counterfitted) if self.counterfitted else Path(self.root) / "counterfitted"

    @property
    def encoder_dir(self) -> Path:
        return Path(self.sentence_encoder) if self.sentence_encoder else Path(self.root) / "minilm"

    def describe(self, attack: str) -> dict:
        """The identity (checksums, not paths) of the resources ``attack`` uses, recorded beside its results."""
        recipe, out = catalog.recipe(attack), {}
        if recipe.needs_counterfitted:
            out["counterfitted"] = manifest_digest(self.embedding_dir)
        if recipe.sentence_encoder:
            out["sentence_encoder"] = manifest_digest(self.encoder_dir)
        if recipe.masked_lm:
            out["masked_lm"] = masked_lm_identity(self.masked_lm)
        return out


def masked_lm_identity(source: str | None):
    """A masked LM's identity: a Hub name as it is; a directory's digest, and, where the workflow pre-trained it
    (pretrain_log.json beside it), the run's start model, corpus size, seed and held-out MLM losses, so that an
    attack's record says whose relative its masked LM is."""
    if not source or not Path(source).exists():
        return source
    identity = {"digest": manifest_digest(Path(source))}
    log = Path(source).parent / "pretrain_log.json"
    if log.exists():
        record = json.loads(log.read_text())
        identity["pretraining"] = {
            "run": "/".join(Path(source).parent.parts[-2:]),  # results/pretrain/<variant>/<run>
            "model_source": record["model_source"],
            "corpus_size": record["corpus_size"],
            "corpus_files": record.get("corpus_files"),  # records of older runs lack the corpus
            "corpus_sha256": record.get("corpus_sha256"),
            "seed": record["provenance"]["seed"],
            "heldout_loss_before": record["heldout_loss_before"],
            "heldout_loss_after": record["heldout_loss_after"],
        }
    return identity


def manifest_digest(directory: Path) -> str | None:
    """A resource's identity: sha256 of the file checksums its MANIFEST.json lists (not of the whole manifest,
    which may record the build's wall time: the same resource built twice must have the same identity), else of
    its weights file (a save_pretrained directory)."""
    from ..resources import sha256

    manifest = directory / "MANIFEST.json"
    if manifest.exists():
        files = json.dumps(json.loads(manifest.read_text())["files"], sort_keys=True)
        return f"MANIFEST.json files:{hashlib.sha256(files.encode()).hexdigest()}"
    for name in ("model.safetensors", "pytorch_model.bin"):
        if (directory / name).exists():
            return f"{name}:{sha256(directory / name)}"
    return None
