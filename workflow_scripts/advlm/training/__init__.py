"""Fine-tuning: one training loop; each method is a small class holding its own math.

The package's modules:

* ``loop``: ``finetune``, the training loop (length-grouped batches, pass counts, early stopping, checkpoints);
* ``registry``: the methods by name and how one is built from its hyperparameters (``build_method``);
* ``base``: the method interface (``BaseMethod``, which is also plain fine-tuning) and what every method shares;
* ``input_space``: a2t and advaug, which add adversarial examples to an epoch's data;
* ``embedding_space``: pgd, freelb, lds and infobert, which perturb the word embeddings;
* ``synonym_hull``: ascc and dne, which move each word's embedding within the convex hull of its synonyms' embeddings;
* ``geometry``: the embedding-space methods' perturbations: norms, ball and ascent step, KL divergence, sizes.

A new method is one ``BaseMethod`` subclass with a ``name`` of its own in its family's module, plus its
``finetune.method_params`` entry in schemas/config.schema.yaml: the registry finds the class in the module.
The names below are the package's interface; a job's library stamp covers every module (``advlm.plan.imports``
follows these imports).
"""

from .base import BaseMethod, _cross_entropy
from .embedding_space import LDS, PGD, FreeLB, InfoBERT
from .geometry import Perturbation, _logits, _word_embeddings, kl_divergence, realised_size
from .input_space import A2T, A2TContext, AdvAug
from .loop import finetune, length_grouped
from .registry import METHODS, build_method, method_defaults, method_hyperparameters
from .synonym_hull import ASCC, DNE

__all__ = [
    "A2T",
    "ASCC",
    "DNE",
    "LDS",
    "METHODS",
    "PGD",
    "A2TContext",
    "AdvAug",
    "BaseMethod",
    "FreeLB",
    "InfoBERT",
    "Perturbation",
    "_cross_entropy",
    "_logits",
    "_word_embeddings",
    "build_method",
    "finetune",
    "kl_divergence",
    "length_grouped",
    "method_defaults",
    "method_hyperparameters",
    "realised_size",
]
