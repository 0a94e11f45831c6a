"""The fine-tuned classifier as TextAttack sees it.

Imports textattack: import this module only after :func:`advlm.runtime.offline_textattack`
(:func:`advlm.attacks.running.make_wrapper` does both).
"""

from __future__ import annotations

import functools

import torch
from textattack.models.wrappers import ModelWrapper as TextAttackModelWrapper

from .. import models


class ModelWrapper(TextAttackModelWrapper):
    """A Hugging Face sequence classifier as TextAttack sees it.

    Unlike TextAttack's ``HuggingFaceModelWrapper`` it pads each batch to its longest sequence (not to
    512 tokens: ~10x faster on short texts), truncates to ``max_length`` like training did, and computes
    gradients without switching the model to ``train()`` (which would turn dropout on).
    """

    def __init__(self, model, tokenizer, max_length: int, batch_size: int):
        self.model = model.eval()  # dropout off; callers that train the model must eval() it again
        self.forward = models.Bf16Weights(model)  # autocast without recasting the weights at every query
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.batch_size = batch_size

    def visible_words(self, text: str) -> int:
        """How many of ``text``'s words (TextAttack's split) the model sees: those with a token among the first
        ``max_length``; the rest is truncated away, so changing it cannot change the prediction."""
        return _visible_words(self.tokenizer, self.max_length, text)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def _check_eval(self):
        if self.model.training:
            raise RuntimeError("the attacked model is in train() mode (dropout on): call model.eval() first")

    @torch.no_grad()
    def __call__(self, text_input_list) -> torch.Tensor:
        """Class probabilities, one row per text."""
        self._check_eval()
        probabilities = []
        for start in range(0, len(text_input_list), self.batch_size):
            batch = models.encode(
                self.tokenizer, text_input_list[start : start + self.batch_size], self.max_length, self.device
            )
            logits = self.forward(**batch).logits
            # float64: TextAttack re-applies softmax to rows that do not sum to 1 within 1e-6.
            probabilities.append(torch.softmax(logits.double(), dim=-1).cpu())
        return torch.cat(probabilities)

    def get_grad(self, text_input) -> dict:
        """Gradient of the loss (against the predicted label) w.r.t. the word embeddings of one text.

        ``gradient`` has one row per token of :meth:`_tokenize` (special tokens included), which is
        how ``GreedyWordSwapWIR(wir_method="gradient")`` maps words to rows.
        """
        self._check_eval()
        batch = models.encode(self.tokenizer, [text_input], self.max_length, self.device)
        captured = []

        def keep_output(module, inputs, output):
            if not output.requires_grad:  # frozen embedding weights: make the output a leaf that takes a gradient
                output.requires_grad_()
            captured.append(output)

        hook = self.model.get_input_embeddings().register_forward_hook(keep_output)
        try:
            with torch.enable_grad():
                logits = self.forward(**batch).logits
                loss = torch.nn.functional.cross_entropy(logits.float(), logits.argmax(dim=-1))
            # autograd.grad leaves the parameters' .grad untouched (no zero_grad needed before or after).
            (gradient,) = torch.autograd.grad(loss, captured[0])
        finally:
            hook.remove()
        return {"ids": batch["input_ids"][0].tolist(), "gradient": gradient[0].float().cpu().numpy()}

    def _tokenize(self, inputs):
        """Tokens as strings, tokenized exactly as :meth:`get_grad` does (for the word alignment)."""
        return [
            self.tokenizer.convert_ids_to_tokens(
                self.tokenizer([text], truncation=True, max_length=self.max_length)["input_ids"][0]
            )
            for text in inputs
        ]


@functools.lru_cache(maxsize=2**16)  # an attack asks about the same candidate texts many times
def _visible_words(tokenizer, max_length: int, text: str) -> int:
    from textattack.shared.utils import words_from_text

    encoding = tokenizer(text, return_offsets_mapping=True)
    if len(encoding["input_ids"]) <= max_length:
        return len(words_from_text(text))
    # the characters up to the end of the last token kept (special tokens have empty offsets); a word cut at that
    # point counts as seen, since part of it is
    content = [end for start, end in encoding["offset_mapping"] if end > start]
    seen_until = content[max_length - tokenizer.num_special_tokens_to_add() - 1]
    return len(words_from_text(text[:seen_until]))
