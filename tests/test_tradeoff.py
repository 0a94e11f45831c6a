"""The trade-off curves from synthetic records whose points are known."""

import pandas as pd
import pytest

from advlm import tradeoff

# pgd swept over epsilon (its configured model is epsilon 0.35), base unswept; two seeds each
POINTS = {
    "base": {"method": "base", "values": {}},
    "pgd": {"method": "pgd", "values": {"epsilon": 0.35}},
    "pgd-epsilon=1": {"method": "pgd", "values": {"epsilon": 1.0}},
    "pgd-epsilon=0.1": {"method": "pgd", "values": {"epsilon": 0.1}},
}
EXPERIMENT = {"ood": {"rt": ["imdb", "tweets"]}, "points": POINTS}
# (in-domain, imdb, tweets, under pwws) per point at seed 1; seed 2 adds 0.02 to every value
KNOWN = {
    "base": (0.80, 0.70, 0.60, 0.10),
    "pgd-epsilon=0.1": (0.79, 0.69, 0.61, 0.15),
    "pgd": (0.76, 0.66, 0.58, 0.25),
    "pgd-epsilon=1": (0.70, 0.60, 0.50, 0.40),
}


def records():
    generalization, robustness = [], []
    for method, (test, imdb, tweets, pwws) in KNOWN.items():
        for seed, shift in ((1, 0.0), (2, 0.02)):
            model = {"dataset": "rt", "pretrain": "none", "method": method, "seed": seed}
            for evalset, accuracy in (("test", test), ("imdb", imdb), ("tweets", tweets)):
                generalization.append({**model, "evalset": evalset, "accuracy": accuracy + shift})
            robustness.append({**model, "attack": "pwws", "accuracy_under_attack": pwws + shift})
    return pd.DataFrame(generalization), pd.DataFrame(robustness)


def test_curve_points_are_the_seed_means_in_the_order_of_the_swept_value(tmp_path):
    chance = pd.DataFrame(
        [
            {"dataset": "rt", "pretrain": "none", "method": m, "seed": s, "at_chance": m == "pgd-epsilon=1" and s == 2}
            for m in KNOWN
            for s in (1, 2)
        ]
    )
    table = tradeoff.tradeoff_table(*records(), EXPERIMENT, chance)
    assert len(table) == 8
    summary = tradeoff.summarize(table, EXPERIMENT)
    pgd = summary[summary["family"] == "pgd"]
    assert list(pgd["method"]) == ["pgd-epsilon=0.1", "pgd", "pgd-epsilon=1"]  # epsilon 0.1, 0.35, 1.0
    assert list(pgd["values"]) == ["epsilon=0.1", "epsilon=0.35", "epsilon=1.0"]
    assert pgd["in_domain_mean"].tolist() == pytest.approx([0.80, 0.77, 0.71])
    assert pgd["ood_mean_mean"].tolist() == pytest.approx([0.66, 0.63, 0.56])  # mean of imdb and tweets
    assert pgd["accuracy_under_attack_std"].tolist() == pytest.approx([0.0141421] * 3, rel=1e-4)  # sd of 2 seeds
    assert (summary["seeds"] == 2).all()
    assert summary.set_index("method")["at_chance_seeds"].to_dict() == {m: int(m == "pgd-epsilon=1") for m in KNOWN}

    drawn = tradeoff.plot_tradeoff(summary, tmp_path / "tradeoff.png")
    assert (tmp_path / "tradeoff.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert set(drawn) == {
        ("rt", measure, "pwws", curve)
        for measure in ("in_domain", "ood_mean")
        for curve in ("none / base", "none / pgd")
    }
    curve = flat(drawn[("rt", "in_domain", "pwws", "none / pgd")])
    assert curve == pytest.approx([0.16, 0.80, 0.26, 0.77, 0.41, 0.71])
    assert flat(drawn[("rt", "ood_mean", "pwws", "none / base")]) == pytest.approx([0.11, 0.66])


def flat(points):
    return [coordinate for point in points for coordinate in point]


def test_without_out_of_domain_sets_only_in_domain_is_drawn(tmp_path):
    generalization, robustness = records()
    experiment = {**EXPERIMENT, "ood": {}}
    summary = tradeoff.summarize(tradeoff.tradeoff_table(generalization, robustness, experiment), experiment)
    drawn = tradeoff.plot_tradeoff(summary, tmp_path / "tradeoff.png")
    assert {key[1] for key in drawn} == {"in_domain"}


def test_a_model_no_better_than_the_majority_class_is_at_chance(tmp_path):
    labels = [0] * 60 + [1] * 40
    constant = pd.DataFrame({"label": labels, "prediction": [0] * 100})  # 60 %: the majority rate
    good = pd.DataFrame({"label": labels, "prediction": labels[:80] + [1 - y for y in labels[80:]]})  # 80 %
    assert tradeoff.at_chance(constant) and not tradeoff.at_chance(good)
    folder = tmp_path / "eval" / "rt" / "none" / "pgd" / "seed1"
    folder.mkdir(parents=True)
    constant.to_csv(folder / "test.predictions.csv", index=False)
    good.to_csv(folder / "imdb.predictions.csv", index=False)  # only the in-domain test set decides
    chance = tradeoff.chance_table(sorted(folder.glob("*.csv")))
    assert chance.to_dict("records") == [
        {"dataset": "rt", "pretrain": "none", "method": "pgd", "seed": 1, "at_chance": True}
    ]
