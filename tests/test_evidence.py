"""The README's claims table is the committed run's: every row equals the headline of docs/evidence/claims.csv
(the claims of the run the README reports, copied there by `make evidence OUT=<run folder>`)."""

import re

import pandas as pd
import pytest
from smk import ROOT

from advlm import claims, claims_summary

EVIDENCE = ROOT / "docs" / "evidence"
COLUMNS = ["claim", "contrast", "primary endpoint", "effect [95 % interval]", "verdict", "n"]


def answer_table(readme: str) -> pd.DataFrame:
    """The first Markdown table of the README's "The answer" section, with typographic minus signs and thousands
    separators written as claims_summary.headline writes them."""
    section = readme.split("## The answer", 1)[1].split("\n## ", 1)[0]
    lines = [line for line in section.splitlines() if line.startswith("|")]
    header, _, *body = [[cell.strip() for cell in line.strip("|").split("|")] for line in lines]
    rows = [[re.sub(r"(?<=\d),(?=\d{3})", "", cell.replace("−", "-")) for cell in row] for row in body]
    return pd.DataFrame(rows, columns=header)


def exposure(endpoint: str) -> str:
    """What follows the ';' of a primary endpoint (which group's training saw the attack), '' where none."""
    return endpoint.partition(";")[2].strip()


def compare(readme: pd.DataFrame, table: pd.DataFrame) -> list[str]:
    """Every difference between the README's rows and the claims table's headline; a claim the README leaves out
    must not have been tested."""
    expected = claims_summary.headline(table).set_index("claim")
    problems = []
    for row in readme.to_dict("records"):
        if row["claim"] not in expected.index:
            problems.append(f"{row['claim']}: in the README, not in claims.csv")
            continue
        found = expected.loc[row["claim"]]
        for column in ["contrast", "effect [95 % interval]", "verdict", "n"]:
            if row[column] != found[column]:
                problems.append(
                    f"{row['claim']}: {column} {row[column]!r} in the README, {found[column]!r} in claims.csv"
                )
        if exposure(row["primary endpoint"]) != exposure(found["primary endpoint"]):
            problems.append(
                f"{row['claim']}: primary endpoint {row['primary endpoint']!r} in the README, "
                f"{found['primary endpoint']!r} in claims.csv"
            )
    for claim, found in expected.iterrows():
        if claim not in set(readme["claim"]) and not found["verdict"].startswith("not run"):
            problems.append(f"{claim}: {found['verdict']} in claims.csv, missing from the README")
    return problems


@pytest.fixture(scope="module")
def committed_claims():
    path = EVIDENCE / "claims.csv"
    if not path.exists():
        pytest.skip(f"{path.relative_to(ROOT)} is not committed yet: `make evidence OUT=<the README's run folder>`")
    return pd.read_csv(path)


def test_the_readme_claims_table_is_the_committed_runs(committed_claims):
    readme = answer_table((ROOT / "README.md").read_text())
    assert list(readme.columns) == COLUMNS
    problems = compare(readme, committed_claims)
    assert not problems, "README's claims table vs docs/evidence/claims.csv:\n" + "\n".join(problems)


def test_the_evidence_names_its_run(committed_claims):
    import json

    run = json.loads((EVIDENCE / "run.json").read_text())
    assert re.fullmatch(r"[0-9a-f]{40}", run["commit"]) and run["cpu"] and run["versions"]["torch"]


def test_a_changed_number_in_the_readme_is_found():
    """The comparison can fail: a claims table made up here, the README's rows written from it, one number off."""
    table = pd.DataFrame(
        [
            {
                "claim": "embedding_space_generalization",
                "dataset": "rotten_tomatoes",
                "endpoint": claims.PRIMARY,
                "contrast": "none/pgd vs none/base",
                "metric": "accuracy",
                "key": "ood_mean",
                "exposure": None,
                "effect": -0.0351,
                "ci_low": -0.069,
                "ci_high": -0.001,
                "verdict": "inconclusive",
                "note": None,
                "n_seeds": 3,
                "n_examples": 2000,
            },
            {
                "claim": "synonym_hull_robustness",
                "dataset": "rotten_tomatoes",
                "endpoint": claims.PRIMARY,
                "contrast": "none/ascc vs none/pgd",
                "metric": "accuracy_under_attack",
                "key": "pwws",
                "exposure": "neither saw it",
                "effect": None,
                "ci_low": None,
                "ci_high": None,
                "verdict": "not run",
                "note": "not trained: none/ascc",
                "n_seeds": 0,
                "n_examples": None,
            },
        ]
    )
    readme = (
        "## The answer\n\n| " + " | ".join(COLUMNS) + " |\n|" + ":--|" * 6 + "\n"
        "| embedding_space_generalization | none/pgd vs none/base | accuracy, out-of-domain mean | "
        "−0.035 [−0.069, −0.001] | inconclusive | 3 seeds × 2,000 ex. |\n\n## What it is\n"
    )
    assert compare(answer_table(readme), table) == []
    off = compare(answer_table(readme.replace("−0.035", "−0.036")), table)
    assert off == [
        "embedding_space_generalization: effect [95 % interval] '-0.036 [-0.069, -0.001]' in the README, "
        "'-0.035 [-0.069, -0.001]' in claims.csv"
    ]
    missing = compare(answer_table(readme), table.assign(verdict=["inconclusive", "inconclusive"]))
    assert missing == ["synonym_hull_robustness: inconclusive in claims.csv, missing from the README"]
