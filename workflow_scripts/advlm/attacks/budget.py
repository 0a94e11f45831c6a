"""Robustness at a budget, exactly, from the per-example attack logs (``running.RESULT_COLUMNS``) with no new attack.

Why it is exact. TextAttack's greedy word-importance search (``GreedyWordSwapWIR``: PWWS, TextFooler, BAE,
BERT-Attack, DeepWordBug, A2T) ranks the words once, then walks them in that order, keeps a swap only where it
raises the goal score, and returns at the first success. A cap on the words it may change (``MaxWordsPerturbed``,
``MaxModificationRate``) filters no candidate until the cap is reached, and afterwards lets no swap through. So the
capped search follows the unconstrained search's path until the cap binds: an attack that succeeded with k words
is a success under every cap >= k and a failure under every cap < k, and an attack that failed stays a failure.
``words_perturbed`` is that path's length (each word is swapped at most once: ``RepeatModification``).

The same holds for a query budget, at the granularity of one search step: a success after q queries is a success
under every budget >= q, and a failure under every budget <= q - b (b: the last step's candidates; no earlier
step held a success, or the search would have returned there). Between the two the budget cuts the last step's
batch short, and a candidate early in it might still succeed: there the logs give an upper bound of the accuracy
under attack (``robust_within_queries`` counts such an example as robust).

What it does not cover. A search that is not greedy along one path (TextAttack's PSO, the genetic attacks, beam
search with width > 1) takes other paths when capped, and may find a success within the cap that its
unconstrained run did not return: there the logs give an upper bound of the capped accuracy under attack. A cap
looser than the recipe's own (A2T: 10 % / 4 words; BERT-Attack: 40 %) changes nothing.

Outcomes per example (the claims read them by ``id``): a misclassified example (``skipped``) is broken at budget 0,
as in the accuracy under attack; a success at its ``words_perturbed`` and ``num_queries``; a failure at no budget.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd


@dataclasses.dataclass(frozen=True)
class WordCap:
    """At most ``max(ceil(rate * visible words), min_words)`` changed words, as TextAttack's caps compute it."""

    name: str
    rate: float
    min_words: int
    source: str

    def words(self, visible_words) -> np.ndarray:
        """The cap for texts of ``visible_words`` words, computed as TextAttack's ``MaxWordsPerturbed`` and
        ``MaxModificationRate`` compute it (``math.ceil(n * rate)``; the project's constraints count visible words,
        advlm.attacks.truncation)."""
        visible = np.asarray(visible_words, dtype=int)
        return np.array([max(math.ceil(int(n) * self.rate), self.min_words) for n in visible.ravel()], dtype=int)


# The sourced caps (docs/attacks.md). TextDefender's is the one its defences' tables report (the claims' delta).
WORD_CAPS = {
    cap.name: cap
    for cap in (
        WordCap(
            "textdefender",
            0.3,
            0,
            "Li et al. 2021, TextDefender (arXiv 2108.12777): args.py modify_ratio=0.3, "
            "MaxWordsPerturbed(max_percent=0.3) on every attack",
        ),
        WordCap(
            "a2t",
            0.1,
            4,
            "Yoo & Qi 2021, A2T (arXiv 2109.00544): MaxModificationRate(max_rate=0.1, min_threshold=4)",
        ),
    )
}

OUTCOMES = ("success", "failure", "skipped")
REQUIRED = ("id", "outcome", "words_perturbed", "visible_words", "num_queries")


def _checked(frame: pd.DataFrame) -> pd.DataFrame:
    missing = [column for column in REQUIRED if column not in frame.columns]
    if missing:
        raise ValueError(f"attack rows lack the columns {missing} (running.RESULT_COLUMNS)")
    unknown = set(frame["outcome"]) - set(OUTCOMES)
    if unknown:
        raise ValueError(f"unknown outcomes {sorted(unknown)} in the attack rows")
    return frame


def words_to_flip(frame: pd.DataFrame) -> pd.Series:
    """Words the greedy search changed to flip each example, by id: 0 for a misclassified example, the path's
    length for a success, inf for a failure (not flipped within the attack's own limits)."""
    frame = _checked(frame)
    words = np.where(
        frame["outcome"] == "skipped",
        0.0,
        np.where(frame["outcome"] == "success", frame["words_perturbed"].astype(float), math.inf),
    )
    return pd.Series(words, index=frame["id"].to_numpy(), name="words_to_flip")


def capped_robust(frame: pd.DataFrame, cap: WordCap) -> pd.Series:
    """1 where the example stays correct under an attack capped at ``cap`` (not flipped within its cap), else 0."""
    budget = cap.words(_checked(frame)["visible_words"])
    return pd.Series((words_to_flip(frame).to_numpy() > budget).astype(float), index=frame["id"].to_numpy())


def words_to_flip_score(frame: pd.DataFrame, cap: WordCap) -> pd.Series:
    """Words-to-flip censored at the cap, on [0, 1]: ``min(k, K + 1) / (K + 1)`` with K the example's cap (a failure
    or a flip with more than K words counts K + 1). Its mean is the accuracy under attack averaged over the word
    budgets 0, 1, ..., K (0: clean accuracy): the area under the budget curve, which the capped accuracy under attack
    is the last point of."""
    budget = cap.words(_checked(frame)["visible_words"]).astype(float)
    flipped = np.minimum(words_to_flip(frame).to_numpy(), budget + 1)
    return pd.Series(flipped / (budget + 1), index=frame["id"].to_numpy())


def robust_within_words(frame: pd.DataFrame, budgets) -> pd.DataFrame:
    """Per example (rows, by id) and absolute word budget (columns): 1 where the example is not flipped with at
    most that many words."""
    flipped = words_to_flip(frame).to_numpy()[:, None]
    budgets = np.asarray(budgets)
    return pd.DataFrame((flipped > budgets[None, :]).astype(float), index=frame["id"].to_numpy(), columns=budgets)


def robust_within_share(frame: pd.DataFrame, shares) -> pd.DataFrame:
    """Per example and budget as a share of the visible words (columns), capped as TextDefender caps
    (``ceil(share * visible words)``; share 0: clean accuracy)."""
    flipped = words_to_flip(frame).to_numpy()
    columns = {}
    for share in shares:
        budget = WordCap("share", share, 0, "").words(frame["visible_words"]) if share > 0 else 0
        columns[share] = (flipped > budget).astype(float)
    return pd.DataFrame(columns, index=frame["id"].to_numpy())


def robust_within_queries(frame: pd.DataFrame, budgets) -> pd.DataFrame:
    """Per example and query budget (columns): 1 where the example is not flipped within that many queries (a
    misclassified example at 0; an upper bound where the budget cuts the last search step, see the module)."""
    frame = _checked(frame)
    queries = np.where(
        frame["outcome"] == "skipped",
        0.0,
        np.where(frame["outcome"] == "success", frame["num_queries"].astype(float), math.inf),
    )[:, None]
    budgets = np.asarray(budgets)
    return pd.DataFrame((queries > budgets[None, :]).astype(float), index=frame["id"].to_numpy(), columns=budgets)


def summarize(frame: pd.DataFrame) -> dict:
    """Each sourced cap's accuracy under attack and mean words-to-flip score (the gathered attack's summary)."""
    if frame.empty:
        return {}
    out = {}
    for name, cap in WORD_CAPS.items():
        out[f"accuracy_under_attack_{name}_cap"] = float(capped_robust(frame, cap).mean())
        out[f"words_to_flip_{name}_cap"] = float(words_to_flip_score(frame, cap).mean())
    return out
