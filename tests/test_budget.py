"""Robustness at a budget from the per-example attack rows: capped accuracy under attack, words-to-flip, curves."""

import math

import numpy as np
import pandas as pd
import pytest

from advlm.attacks import budget, metrics

# Six attacked examples with known counts: (outcome, words changed on the greedy path, visible words, queries).
ROWS = [
    ("a", "success", 1, 20, 40),  # flipped by one word
    ("b", "success", 4, 20, 300),  # four words: within A2T's cap (max(ceil(2), 4) = 4) and TextDefender's (6)
    ("c", "success", 7, 20, 900),  # seven words: over both caps
    ("d", "failure", 9, 20, 2000),  # the attack failed: robust under every cap
    ("e", "skipped", 0, 20, 1),  # misclassified: broken at budget 0
    ("f", "success", 5, 50, 500),  # a longer text: A2T's cap max(5, 4) = 5, TextDefender's 15
    ("g", "success", 5, 20, 600),  # five words: over A2T's cap (4), within TextDefender's (6)
]


def frame(rows=ROWS) -> pd.DataFrame:
    columns = ["id", "outcome", "words_perturbed", "visible_words", "num_queries"]
    return pd.DataFrame(rows, columns=columns).assign(perturbed_word_share=0.0, seconds=1.0)


def test_the_sourced_caps_count_as_textattack():
    a2t, textdefender = budget.WORD_CAPS["a2t"], budget.WORD_CAPS["textdefender"]
    assert a2t.words([3, 20, 40, 41, 50]).tolist() == [4, 4, 4, 5, 5]  # max(ceil(0.1 n), 4)
    assert textdefender.words([1, 3, 10, 20, 21, 50]).tolist() == [1, 1, 3, 6, 7, 15]  # ceil(0.3 n)


def test_capped_accuracy_under_attack_from_known_counts():
    rows = frame()
    a2t = budget.capped_robust(rows, budget.WORD_CAPS["a2t"])
    textdefender = budget.capped_robust(rows, budget.WORD_CAPS["textdefender"])
    assert a2t.to_dict() == {"a": 0.0, "b": 0.0, "c": 1.0, "d": 1.0, "e": 0.0, "f": 0.0, "g": 1.0}
    assert textdefender.to_dict() == {"a": 0.0, "b": 0.0, "c": 1.0, "d": 1.0, "e": 0.0, "f": 0.0, "g": 0.0}
    # Without a cap the same rows give the accuracy under attack as run: only the failure is robust.
    assert metrics.summarize(rows, {})["accuracy_under_attack"] == pytest.approx(1 / 7)
    tight = budget.WordCap("one word", 0.01, 1, "")
    assert budget.capped_robust(rows, tight).tolist() == [0.0, 1.0, 1.0, 1.0, 0.0, 1.0, 1.0]


def test_words_to_flip_is_censored_at_the_cap():
    rows = frame()
    assert budget.words_to_flip(rows).tolist() == [1, 4, 7, math.inf, 0, 5, 5]
    score = budget.words_to_flip_score(rows, budget.WORD_CAPS["a2t"])  # caps 4, 4, 4, 4, 4, 5, 4
    assert score.tolist() == pytest.approx([1 / 5, 4 / 5, 5 / 5, 5 / 5, 0, 5 / 6, 5 / 5])
    # Its mean is the accuracy under attack averaged over the word budgets 0..K (here every cap is 4 words).
    equal = frame(ROWS[:5])
    curve = budget.robust_within_words(equal, range(0, 5)).mean()
    assert budget.words_to_flip_score(equal, budget.WORD_CAPS["a2t"]).mean() == pytest.approx(curve.mean())


def test_budget_curves_step_at_the_logged_counts():
    rows = frame()
    words = budget.robust_within_words(rows, [0, 1, 4, 5, 7, 100]).mean()
    assert words.tolist() == pytest.approx([6 / 7, 5 / 7, 4 / 7, 2 / 7, 1 / 7, 1 / 7])
    queries = budget.robust_within_queries(rows, [0, 1, 40, 299, 300, 2000]).mean()
    assert queries.tolist() == pytest.approx([6 / 7, 6 / 7, 5 / 7, 5 / 7, 4 / 7, 1 / 7])
    shares = budget.robust_within_share(rows, [0.0, 0.05, 0.3]).mean()  # 0.05: 1 word of 20, 3 of 50
    assert shares.tolist() == pytest.approx([6 / 7, 5 / 7, 2 / 7])
    assert np.all(np.diff(words.to_numpy()) <= 0) and np.all(np.diff(queries.to_numpy()) <= 0)


def test_summary_and_bad_rows():
    summary = budget.summarize(frame())
    assert summary["accuracy_under_attack_a2t_cap"] == pytest.approx(3 / 7)
    assert summary["accuracy_under_attack_textdefender_cap"] == pytest.approx(2 / 7)
    with pytest.raises(ValueError, match="visible_words"):
        budget.capped_robust(frame().drop(columns="visible_words"), budget.WORD_CAPS["a2t"])
    with pytest.raises(ValueError, match="unknown outcomes"):
        budget.words_to_flip(frame().assign(outcome="maybe"))
