"""Where fine-tuning's time goes besides the model passes, per method (not a test): a profile of a few steps of
the real training loop (``advlm.training.finetune``) with the offline MiniLM of the default, in CPU seconds.

Each method runs the loop as the ``finetune`` rule does (the default config's training keys, one thread, fp32,
checkpoints on) on the first ``--examples`` training texts for ``--epochs`` epochs, validating on the default's
validation texts (the start model's and every epoch's). The loop's parts are marked as regions by wrapping
what the loop calls (loop.py is not edited): the model's forward passes (hooks; validation's and the attack's
apart) and the backward passes (``torch.autograd.backward`` and ``grad``), the optimizer step, gradient
clipping, tokenizing and batching, validation, the checkpoints (fingerprint, save), the copy of the best state,
loading and saving the model, and an epoch's examples (a2t: its attack, split into the sentence encoder, the
part-of-speech tagger and the rest). The thread's CPU time is charged to the innermost region entered, so the
regions are exclusive (CPU time, not wall time: the machine may be shared); ``method step (rest)`` is the
method's own arithmetic between the passes (the perturbations, the losses). Per-step parts are printed per step,
per-epoch parts per epoch (validation per validation), so that they can be scaled to a job of the default (32
steps an epoch, up to 4 epochs).

    .venv/bin/python benchmarks/profile_finetune.py --results results            # every method of the default
    .venv/bin/python benchmarks/profile_finetune.py --methods base pgd --examples 64 --json profile.json

Needs from ``--results``: resources/minilm, data/rotten_tomatoes; a2t also resources/nltk_data and
resources/counterfitted (the build_embeddings rule). advaug trains on the adversarial examples of a2t's attack
in the same run when a2t runs first, else on ``--advaug-examples`` (an attack_train CSV).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
os.environ.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false")

# How a region's time scales with the job: per optimizer step, per epoch (validation, checkpoint, attack) or once.
PER_STEP = (
    "model forward",
    "model backward",
    "method step (rest)",
    "optimizer step",
    "gradient clipping",
    "batching and tokenizing",
)
PER_EPOCH = (
    "validation: model forward",
    "validation (rest)",
    "epoch examples: model forward",
    "epoch examples: attack (rest)",
    "epoch examples: sentence encoder",
    "epoch examples: part-of-speech tagger",
    "epoch examples (rest)",
    "length grouping",
    "checkpoint: fingerprint",
    "checkpoint: save",
    "best-state copy",
)
ONCE = ("loading", "saving the model", "loop (rest)")
# The summary's columns: the regions each gathers.
GROUPS = {
    "training passes: forward": ("model forward",),
    "backward": ("model backward",),
    "validation": ("validation: model forward", "validation (rest)"),
    "a2t's attack": tuple(region for region in PER_EPOCH if region.startswith("epoch examples:")),
    "optimizer step": ("optimizer step",),
    "gradient clipping": ("gradient clipping",),
    "checkpoints": ("checkpoint: fingerprint", "checkpoint: save", "best-state copy"),
    "batches and data": ("batching and tokenizing", "length grouping", "epoch examples (rest)"),
    "method's arithmetic": ("method step (rest)",),
    "loading, saving, rest": ONCE,
}


class RegionClock:
    """Exclusive CPU time of this thread per region: time is charged to the innermost region entered. The
    thread's CPU time, not wall time: on a shared machine other processes' time does not count, and with one
    torch thread (and the tokenizers' parallelism off) all of the loop's arithmetic runs on this thread."""

    def __init__(self, outermost: str):
        self.stack, self.seconds, self.wall = [outermost], defaultdict(float), defaultdict(float)
        self.since, self.wall_since = time.thread_time(), time.perf_counter()

    def enter(self, region: str) -> None:
        self._charge()
        self.stack.append(region)

    def leave(self) -> None:
        self._charge()
        self.stack.pop()

    def inside(self, phase: str) -> bool:
        return any(region.startswith(phase) for region in self.stack)

    def _charge(self) -> None:
        now, wall = time.thread_time(), time.perf_counter()
        self.seconds[self.stack[-1]] += now - self.since
        self.wall[self.stack[-1]] += wall - self.wall_since
        self.since, self.wall_since = now, wall


CLOCK: RegionClock | None = None  # the run's clock, while marked_regions is active


def wrapped(function, region: str):
    """``function`` charged to ``region``."""

    def inside(*args, **kwargs):
        CLOCK.enter(region)
        try:
            return function(*args, **kwargs)
        finally:
            CLOCK.leave()

    inside.__wrapped__ = function
    return inside


@contextlib.contextmanager
def patched(target, name: str, replacement):
    original = getattr(target, name)
    setattr(target, name, replacement)
    try:
        yield original
    finally:
        setattr(target, name, original)


@contextlib.contextmanager
def marked_regions(counts: dict):
    """Mark the loop's parts as regions of ``CLOCK`` for the duration (see the module's docstring); ``counts``
    receives the optimizer steps and epochs run."""
    import torch

    from advlm import checkpoint, models
    from advlm.attacks import encoder
    from advlm.training import loop

    def method_with_regions(name, *args, **kwargs):
        method = loop_build_method(name, *args, **kwargs)
        method.backward = wrapped(method.backward, "method step (rest)")
        epoch_examples = method.epoch_examples

        def counted_epoch_examples(*a, **k):
            counts["epochs"] += 1
            return epoch_examples(*a, **k)

        method.epoch_examples = wrapped(counted_epoch_examples, "epoch examples (rest)")
        if name == "a2t":  # its attack inside the epoch's examples
            method.attack = wrapped(method.attack, "epoch examples: attack (rest)")
        return method

    def classifier_with_regions(*args, **kwargs):
        model = loop_load_classifier(*args, **kwargs)

        def before(module, args):  # the forwards of validation and of a2t's attack are theirs, once an epoch
            phase = "validation" if CLOCK.inside("validation") else "epoch examples" if CLOCK.inside("epoch") else ""
            CLOCK.enter(f"{phase}: model forward" if phase else "model forward")

        model.register_forward_pre_hook(before)
        model.register_forward_hook(lambda *_: CLOCK.leave())
        model.save_pretrained = wrapped(model.save_pretrained, "saving the model")
        return model

    def optimizer_with_regions(*args, **kwargs):
        optimizer = loop_adamw(*args, **kwargs)  # its step is marked by hooks: the scheduler wraps the method

        def before(optimizer, args, kwargs):
            counts["steps"] += 1
            CLOCK.enter("optimizer step")

        optimizer.register_step_pre_hook(before)
        optimizer.register_step_post_hook(lambda *_: CLOCK.leave())
        return optimizer

    with contextlib.ExitStack() as stack:
        enter = stack.enter_context
        loop_build_method = enter(patched(loop, "build_method", method_with_regions))
        loop_load_classifier = enter(patched(loop, "load_classifier", classifier_with_regions))
        loop_adamw = enter(patched(loop, "adamw", optimizer_with_regions))
        for name, region in (
            ("_batch", "batching and tokenizing"),
            ("token_lengths", "length grouping"),
            ("length_grouped", "length grouping"),
            ("predict_proba", "validation (rest)"),
            ("classification_metrics", "validation (rest)"),
            ("fingerprint", "checkpoint: fingerprint"),
            ("load_tokenizer", "loading"),
        ):
            enter(patched(loop, name, wrapped(getattr(loop, name), region)))
        enter(patched(loop.copy, "deepcopy", wrapped(loop.copy.deepcopy, "best-state copy")))
        enter(patched(checkpoint.Checkpoints, "save", wrapped(checkpoint.Checkpoints.save, "checkpoint: save")))
        enter(patched(models, "_load", wrapped(models._load, "loading")))
        enter(patched(torch.nn.utils, "clip_grad_norm_", wrapped(torch.nn.utils.clip_grad_norm_, "gradient clipping")))
        enter(patched(torch.autograd, "backward", wrapped(torch.autograd.backward, "model backward")))
        enter(patched(torch.autograd, "grad", wrapped(torch.autograd.grad, "model backward")))
        pooler = encoder.MeanPooler
        enter(patched(pooler, "encode", wrapped(pooler.encode, "epoch examples: sentence encoder")))
        if "textattack" in sys.modules:  # the tagger's module imports it: set up by main where a2t runs
            from advlm.attacks import components

            tagger = components.SpacyPartOfSpeech
            region = "epoch examples: part-of-speech tagger"
            enter(patched(tagger, "_tag_contexts", wrapped(tagger._tag_contexts, region)))
        yield


def profile_method(name: str, args, config: dict, results: Path, context: dict, workdir: Path) -> dict:
    """One run of the training loop with ``name``, profiled: exclusive seconds per region, steps, epochs
    and the run's train losses."""
    from advlm import artifacts, runtime, training

    train = artifacts.read_examples(results / "data" / args.dataset / "train.jsonl").iloc[: args.examples]
    validation_size = args.validation or config["data"]["max_examples"]["validation"]
    validation = artifacts.read_examples(results / "data" / args.dataset / "validation.jsonl").iloc[:validation_size]
    finetune = config["finetune"]
    hp = {key: value for key, value in finetune.items() if key not in ("methods", "grid", "grid_variant", "seeds")}
    hp |= {"epochs": args.epochs, "patience": 0, "max_length": config["model"]["max_length"]}
    counts = {"steps": 0, "epochs": 0}
    device = runtime.device("cpu", "fp32")
    global CLOCK
    CLOCK = RegionClock("loop (rest)")
    with marked_regions(counts):
        began = time.perf_counter()
        record = training.finetune(
            model_source=str(results / "resources" / "minilm"),
            train=train,
            validation=validation,
            out_dir=workdir / name,
            hp=hp,
            method_name=name,
            method_params=finetune["method_params"][name],
            seed=args.seed,
            num_labels=len(config["data"]["labels"]),
            device=device,
            method_context=context.get(name),
            checkpoint_dir=workdir / "checkpoints" / name,
            checkpoint_every=0,
        )
        wall = time.perf_counter() - began
    CLOCK.leave()
    seconds, wall_seconds = dict(CLOCK.seconds), dict(CLOCK.wall)
    losses = [epoch["train_loss"] for epoch in record["history"]]
    return {
        "method": name,
        "examples": len(train),
        "wall": wall,
        "seconds": seconds,
        "wall_seconds": wall_seconds,
        **counts,
        "train_losses": losses,
    }


def a2t_context(results: Path, config: dict):
    from advlm.attacks.resources import AttackResources
    from advlm.training import A2TContext

    resources = AttackResources(
        root=results / "resources",
        counterfitted=results / "resources" / "counterfitted",
        sentence_encoder=results / "resources" / "minilm",
    )
    attack = config["attack"]
    return A2TContext(resources, options=attack["options"]["a2t"], batch_size=attack["batch_size"])


@contextlib.contextmanager
def kept_attacks(frames: list):
    """a2t's attack results appended to ``frames`` (advaug's adversarial examples in the same run)."""
    from advlm.training import A2T

    def kept_attack(self, *args, **kwargs):
        frames.append(attack(self, *args, **kwargs))
        return frames[-1]

    with patched(A2T, "attack", kept_attack) as attack:
        yield


def table(runs: list[dict], train_examples: int, batch_size: int, epochs: int) -> str:
    """Markdown: per method, each region's CPU and wall seconds per step / per epoch / once, and its share of the
    CPU time of a job of the default's size scaled from them: ``epochs`` epochs of ``train_examples`` (a
    per-epoch part grows with the training texts: a2t's attack seeks a share of them; validation is the default's)."""
    steps_per_epoch = -(-train_examples // batch_size)
    summary = [
        "| method | scaled job CPU s | " + " | ".join(GROUPS) + " |",
        "|---|---|" + "---|" * len(GROUPS),
    ]
    lines = [
        f"CPU (and wall) seconds per optimizer step, per epoch and once, and the share of the CPU time of a job of "
        f"{epochs} epochs of {train_examples} training texts ({steps_per_epoch} steps) scaled from them (fp32, one "
        "thread)",
        "",
        "| method | part | per | CPU s | wall s | share of the scaled job |",
        "|---|---|---|---|---|---|",
    ]
    for run in runs:
        scaled = {}
        for region, seconds in run["seconds"].items():
            per, count, times = (
                ("step", run["steps"], steps_per_epoch * epochs)
                if region in PER_STEP
                else ("validation", run["epochs"] + 1, epochs + 1)  # the start model's too
                if region.startswith("validation")
                else ("epoch", run["epochs"], epochs * train_examples / run["examples"])
                if region in PER_EPOCH
                else ("job", 1, 1)
            )
            unit, wall = seconds / max(count, 1), run["wall_seconds"][region] / max(count, 1)
            scaled[region] = (per, unit, wall, unit * times)
        total = sum(value[3] for value in scaled.values())
        shares = [sum(scaled[r][3] for r in regions if r in scaled) / total for regions in GROUPS.values()]
        summary.append(f"| {run['method']} | {total:.0f} | " + " | ".join(f"{100 * x:.1f} %" for x in shares) + " |")
        for region, (per, unit, wall, job) in sorted(scaled.items(), key=lambda item: -item[1][3]):
            share = 100 * job / total
            lines.append(f"| {run['method']} | {region} | {per} | {unit:.3f} | {wall:.3f} | {share:.1f} % |")
        lines.append(f"| {run['method']} | **scaled job** | job | {total:.1f} | | 100 % |")
    return "\n".join(lines + ["", "Shares of the scaled job's CPU time", ""] + summary)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=ROOT / "results")
    parser.add_argument("--config", type=Path, default=ROOT / "config.yaml")
    parser.add_argument("--dataset", default="rotten_tomatoes")
    parser.add_argument("--methods", nargs="+", default=["base", "a2t", "advaug", "pgd", "freelb", "lds"])
    parser.add_argument("--examples", type=int, default=96, help="training texts (default: 6 steps an epoch)")
    parser.add_argument("--validation", type=int, help="validation texts (default: the default config's cap)")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--advaug-examples", type=Path, help="attack_train's CSV, where a2t does not run first")
    parser.add_argument("--json", type=Path, help="also write the runs here")
    parser.add_argument("--from-json", type=Path, help="print the table of runs written by --json, run nothing")
    args = parser.parse_args(argv)
    config = yaml.safe_load(args.config.read_text())
    size = config["data"]["max_examples"]["train"], config["finetune"]["batch_size"], config["finetune"]["epochs"]
    if args.from_json:
        print(table(json.loads(args.from_json.read_text()), *size))
        return

    from advlm import runtime

    runtime.setup(1, args.seed)
    context = {}
    adversarial = []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        if "a2t" in args.methods:
            runtime.offline_textattack(args.results / "resources")  # before marked_regions patches the tagger
            context["a2t"] = {"attack_context": a2t_context(args.results, config)}
        runs = []
        for name in args.methods:
            if name == "advaug":
                path = args.advaug_examples
                if path is None:
                    if not adversarial:
                        raise SystemExit("advaug needs --advaug-examples or a2t before it in --methods")
                    path = workdir / "adversarial.csv"
                    pd.concat(adversarial).to_csv(path, index=False)  # every epoch's attack
                context["advaug"] = {"adversarial_examples": str(path)}
            with kept_attacks(adversarial) if name == "a2t" else contextlib.nullcontext():
                runs.append(profile_method(name, args, config, args.results, context, workdir))
            print(json.dumps(runs[-1]), flush=True)
    print(table(runs, *size))
    print("\nwall seconds per run: " + ", ".join(f"{run['method']} {run['wall']:.1f}" for run in runs))
    if args.json:
        args.json.write_text(json.dumps(runs, indent=1))


if __name__ == "__main__":
    main()
