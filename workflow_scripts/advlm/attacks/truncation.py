"""Caps on perturbed words counted over the words the model sees.

The classifier truncates a text to ``max_length`` tokens, so the words past that point cannot change its
prediction. TextAttack's caps count every word: on a truncated text (at ``max_length`` 128, 86 % of IMDB's test
texts) A2T's modification rate and BERT-Attack's perturbed-word share then allow more changes to the part the
model reads than the recipes intend. These constraints count the visible words instead
(:meth:`advlm.attacks.wrapper.ModelWrapper.visible_words`); on a text that is not truncated they are
TextAttack's.

Imports textattack: import this module only after :func:`advlm.runtime.offline_textattack`.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from textattack.constraints.overlap import MaxWordsPerturbed
from textattack.constraints.pre_transformation import MaxModificationRate


def visible_word_counter(wrapper) -> Callable[[str], int]:
    """The wrapper's count of a text's visible words; all its words for a wrapper that does not truncate
    knowingly (TextAttack's own, in the benchmark's stock comparison)."""
    from textattack.shared.utils import words_from_text

    return getattr(wrapper, "visible_words", None) or (lambda text: len(words_from_text(text)))


class VisibleMaxModificationRate(MaxModificationRate):
    """A2T's cap: at most ``max(ceil(max_rate * visible words), min_threshold)`` modified words."""

    def __init__(self, max_rate: float, min_threshold: int, visible_words: Callable[[str], int]):
        super().__init__(max_rate, min_threshold)
        self.visible_words = visible_words

    def _get_modifiable_indices(self, current_text):
        threshold = max(math.ceil(self.visible_words(current_text.text) * self.max_rate), self.min_threshold)
        if len(current_text.attack_attrs["modified_indices"]) >= threshold:
            return set()
        return set(range(len(current_text.words)))


class VisibleMaxWordsPerturbed(MaxWordsPerturbed):
    """BERT-Attack's cap: at most ``ceil(max_percent * visible words)`` words differ from the original (the
    fewer visible words of the two texts, as TextAttack takes the fewer words)."""

    def __init__(self, max_percent: float, visible_words: Callable[[str], int]):
        super().__init__(max_percent=max_percent)
        self.visible_words = visible_words

    def _check_constraint(self, transformed_text, reference_text):
        visible = min(self.visible_words(transformed_text.text), self.visible_words(reference_text.text))
        return len(transformed_text.all_words_diff(reference_text)) <= math.ceil(visible * self.max_percent)
