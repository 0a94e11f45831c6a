"""The report's robustness figure: budget curves per group from the gathered attack rows, readable at its size."""

import numpy as np
import pandas as pd
import pytest
from test_figures import ATTACKS, METHODS, checked  # noqa: F401  (checked: a fixture)

from advlm import robustness_curves


def write_attack(root, method, seed, attack, rows):
    path = root / "results/attacks/rotten_tomatoes/none" / method / f"seed{seed}" / f"{attack}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    columns = ["id", "outcome", "words_perturbed", "visible_words", "num_queries"]
    pd.DataFrame(rows, columns=columns).to_csv(path, index=False)
    return path


def test_curves_and_their_intervals_from_known_rows(tmp_path):
    # base flips one of two examples with 1 word of 10 (and 50 queries) in seed 1, with 4 words in seed 2
    paths = [
        write_attack(tmp_path, "base", 1, "pwws", [("a", "success", 1, 10, 50), ("b", "failure", 3, 10, 400)]),
        write_attack(tmp_path, "base", 2, "pwws", [("a", "success", 4, 10, 200), ("b", "failure", 3, 10, 400)]),
    ]
    table = robustness_curves.curve_table(paths)
    words = table[table["axis"] == "words"].pivot(index="budget", columns="seed", values="accuracy")
    assert words.loc[0.0].tolist() == [1.0, 1.0]  # nothing flipped at budget 0: both were classified correctly
    assert words.loc[0.1].tolist() == [0.5, 1.0]  # 1 word of 10: seed 1's flip only
    assert words.loc[0.4].tolist() == [0.5, 0.5]
    queries = table[table["axis"] == "queries"]
    assert queries["budget"].max() == 400  # one grid per attack, up to the most queries logged
    curves = robustness_curves.group_curves(table)
    point = curves[(curves["axis"] == "words") & (curves["budget"] == 0.1)].iloc[0]
    assert point["mean"] == pytest.approx(0.75) and point["seeds"] == 2
    half = 12.706 * np.std([0.5, 1.0], ddof=1) / np.sqrt(2)  # t(0.975, 1)
    assert (point["low"], point["high"]) == pytest.approx((0.75 - half, 0.75 + half), abs=1e-3)


@pytest.mark.parametrize("methods, attacks", [(["base"], ["deepwordbug"]), (METHODS, ATTACKS)])
def test_the_curves_figure_is_readable(methods, attacks, checked, tmp_path):  # noqa: F811
    rng = np.random.default_rng(0)
    paths = []
    for method in methods:
        for attack in attacks:
            for seed in (1, 2, 3):
                outcome = rng.choice(["success", "failure", "skipped"], 40, p=[0.7, 0.2, 0.1])
                rows = [
                    (str(i), o, int(rng.integers(1, 8)), int(rng.integers(5, 30)), int(rng.integers(1, 2000)))
                    for i, o in enumerate(outcome)
                ]
                paths.append(write_attack(tmp_path, method, seed, attack, rows))
    robustness_curves.plot_curves(paths, tmp_path / "robustness.png")
    assert checked["robustness.png"] == []
