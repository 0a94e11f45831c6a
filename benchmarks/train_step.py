"""Seconds per fine-tuning step of each training method, relative to ``base`` (not a test).

Every method trains the same model on the same batches (MiniLM, Rotten Tomatoes train texts), one full
step of the training loop each (zero_grad, ``method.backward`` under ``models.autocast``, gradient
clipping, AdamW step), with the methods interleaved round by round (rotating their order) so that drift
of the machine affects all alike. Hyperparameters are each method's defaults (= the config schema's).

    .venv/bin/python benchmarks/train_step.py                       # CPU, 1 thread
    .venv/bin/python benchmarks/train_step.py --threads 2 --steps 20
    python3 benchmarks/train_step.py --synthetic bert-base --device cuda --max-length 128 --batch-size 32

``--synthetic bert-base``: a randomly initialised BERT-base classifier (12 layers, hidden 768) on random token ids,
every text ``--max-length`` tokens long (no download, no data: the GPU check, benchmarks/gpu_check.sh). The model
FLOP utilization of ``base`` is printed against the device's matrix-product peak measured in the same run, in the
precision the steps ran in.

Goal (issue 3): a method with K perturbed passes costs at most 1.15 * (K + 1) base steps. Also printed: the
realised perturbation sizes (absolute and relative to the text's word-embedding norm), the comparison on which
the embedding-space budgets are matched (issue 10), and each method's passes per step through the model
(forward, backward: the training loop's ``PassCounter``). The synonym-hull methods (ascc, dne) read their synonyms
from ``--counterfitted`` (the build_embeddings rule's vectors) through ``--model``'s tokenizer.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
os.environ.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false")


def steps_k(method) -> int:
    """K of the cost goal: ascent steps (pgd, freelb, infobert); power iterations + the adversarial pass (lds)."""
    if method.name in ("pgd", "freelb", "infobert"):
        return method.steps
    if method.name == "lds":
        return method.power_iterations + 1
    if method.name == "ascc":
        return method.steps + 1  # the inner steps and the adversarial pass (the clean pass without gradient aside)
    if method.name == "dne":
        return method.steps  # the ascent passes after the Dirichlet one
    return 0


def embedding_scale(model, tokenizer, texts: list[str], max_length: int) -> dict:
    """Scale of the word embeddings the methods perturb, over the non-padding tokens of ``texts``: RMS L2 norm
    per token, median tokens per text and median L2 norm of a text's [T, d] slice (the unit of epsilon)."""
    import torch

    from advlm.models import encode

    squares, text_norms, lengths = [], [], []
    with torch.no_grad():
        for start in range(0, len(texts), 256):
            inputs = encode(tokenizer, texts[start : start + 256], max_length)
            mask = inputs["attention_mask"]
            per_token = model.get_input_embeddings()(inputs["input_ids"]).pow(2).sum(-1) * mask
            squares.append(per_token[mask.bool()])
            text_norms.append(per_token.sum(-1).sqrt())
            lengths.append(mask.sum(-1).float())
    return {
        "rms_token_norm": float(torch.cat(squares).mean().sqrt()),
        "median_tokens": float(torch.cat(lengths).median()),
        "median_text_norm": float(torch.cat(text_norms).median()),
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="results/resources/minilm")
    parser.add_argument("--data", default="results/data/rotten_tomatoes/train.jsonl")
    parser.add_argument("--methods", nargs="+", default=["base", "pgd", "freelb", "lds", "infobert", "ascc", "dne"])
    parser.add_argument("--counterfitted", default="results/resources/counterfitted", help="ascc's and dne's synonyms")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps per method first")
    parser.add_argument("--steps", type=int, default=10, help="timed steps per method")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"])
    parser.add_argument("--synthetic", choices=["bert-base"], help="a random-init model on random tokens")
    parser.add_argument("--scale-only", action="store_true", help="print the word-embedding scale and stop")
    parser.add_argument(
        "--set",
        nargs="*",
        default=[],
        metavar="METHOD.KEY=VALUE",
        help="hyperparameters other than the defaults, e.g. pgd.epsilon=0.35",
    )
    args = parser.parse_args(argv)
    overrides = {}
    for item in args.set:
        name, _, assignment = item.partition(".")
        key, _, value = assignment.partition("=")
        overrides.setdefault(name, {})[key] = float(value) if "." in value else int(value) if value.isdigit() else value

    from advlm import artifacts, runtime
    from advlm.models import adamw, encode, load_classifier, load_tokenizer
    from advlm.training import METHODS, build_method

    runtime.setup(args.threads, args.seed)
    import torch

    device = runtime.device(args.device, args.precision)
    context = {}
    if any("counterfitted" in METHODS[name].needs for name in args.methods):  # the synonym-hull methods
        context = {"tokenizer": load_tokenizer(str(ROOT / args.model)), "counterfitted": ROOT / args.counterfitted}
    methods = [build_method(name, overrides.get(name, {}), **context) for name in args.methods]
    if args.synthetic:
        return synthetic_steps(args, methods, device)
    tokenizer = load_tokenizer(str(ROOT / args.model))
    model = load_classifier(str(ROOT / args.model), 2).to(device).train()
    own = [p for method in methods for p in method.own_parameters(model)]  # infobert's critic, as the loop does
    optimizer = adamw([*model.parameters(), *own], 5e-5, 0.01)  # the trainers' optimizer

    frame = artifacts.read_examples(ROOT / args.data)
    scale = embedding_scale(model, tokenizer, frame["text"].tolist(), args.max_length)
    print(
        f"word embeddings over the {len(frame)} texts of {args.data}: RMS norm per token "
        f"{scale['rms_token_norm']:.3f}, median {scale['median_tokens']:.0f} tokens and L2 norm "
        f"{scale['median_text_norm']:.2f} per text (lds epsilon 5.0*RMS/16 = {5 * scale['rms_token_norm'] / 16:.3f}, "
        f"xi 0.1*RMS/16 = {0.1 * scale['rms_token_norm'] / 16:.4f})",
        flush=True,
    )
    if args.scale_only:
        return
    rounds = args.warmup + args.steps
    frame = frame.iloc[: rounds * args.batch_size]
    batches = []
    for start in range(0, len(frame), args.batch_size):
        part = frame.iloc[start : start + args.batch_size]
        batches.append(
            {
                "inputs": encode(tokenizer, part["text"].tolist(), args.max_length, device),
                "labels": torch.tensor(part["label"].tolist(), device=device),
            }
        )
    if len(batches) < rounds:
        raise SystemExit(f"{args.data} holds {len(frame)} texts; {rounds} batches of {args.batch_size} needed")

    seconds, passes = time_steps(model, optimizer, methods, batches, args.warmup, device)
    tokens = sum(int(batch["inputs"]["attention_mask"].sum()) for batch in batches[args.warmup :]) / args.steps
    print(
        f"device {device}, threads {torch.get_num_threads()}, batch {args.batch_size}, max_length "
        f"{args.max_length}, {tokens:.0f} tokens per batch on average, {args.warmup} warm-up + {args.steps} timed "
        f"steps per method, torch {torch.__version__}, precision {runtime.precision(device)}"
    )
    print_ratios(methods, seconds, passes)
    print_sizes(methods)
    print_optimizer_steps(model, device, args.steps)


def print_optimizer_steps(model, device, steps: int) -> None:
    """Seconds of one AdamW step over the model's parameters: torch's default (foreach) and the fused kernel
    (advlm.models.adamw), interleaved, on the gradients the last timed step left."""
    import torch

    def seconds_per_step(optimizer) -> float:
        if device.type == "cuda":
            torch.cuda.synchronize()
        started = time.perf_counter()
        optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - started

    params = [p for p in model.parameters() if p.grad is not None]
    default = torch.optim.AdamW(params, lr=1e-12, weight_decay=0.0)  # a tiny lr: the timed model barely moves
    fused = torch.optim.AdamW(params, lr=1e-12, weight_decay=0.0, fused=True)
    times = {"default": [], "fused": []}
    for _ in range(steps):
        times["default"].append(seconds_per_step(default))
        times["fused"].append(seconds_per_step(fused))
    median = {name: statistics.median(values) for name, values in times.items()}
    print(
        f"AdamW step, {sum(p.numel() for p in params) / 1e6:.1f} M parameters: default {median['default']:.3f} s, "
        f"fused {median['fused']:.3f} s (default / fused {median['default'] / median['fused']:.1f}x; median of {steps})"
    )


def time_steps(model, optimizer, methods, batches, warmup: int, device) -> tuple[dict, dict]:
    """Seconds of each timed step per method, methods interleaved round by round, their order rotating; and each
    method's forward and backward passes per step (the training loop's ``PassCounter``)."""
    import torch

    from advlm.models import autocast
    from advlm.training.loop import PassCounter

    counts = {method.name: PassCounter.empty() for method in methods}
    counters = {method.name: PassCounter(model, counts[method.name]) for method in methods}

    def one_step(method, batch) -> float:
        if device.type == "cuda":
            torch.cuda.synchronize()
        started = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        with autocast(device), counters[method.name].counting("step"):
            method.backward(model, batch)
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - started

    seconds = {method.name: [] for method in methods}
    for round_, batch in enumerate(batches):
        shift = round_ % len(methods)
        for method in methods[shift:] + methods[:shift]:
            elapsed = one_step(method, batch)
            if round_ >= warmup:
                seconds[method.name].append(elapsed)
    for counter in counters.values():
        counter.remove()
    return seconds, {name: PassCounter.per_step(count, len(batches)) for name, count in counts.items()}


def synthetic_steps(args, methods, device) -> None:
    """Step times of a random-init BERT-base on random tokens, and the base step's model FLOP utilization."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    from advlm import runtime
    from advlm.timing import forward_flops

    config = BertConfig(num_labels=2)  # BERT-base: 12 layers, hidden 768, 12 heads, feed-forward 3072
    model = BertForSequenceClassification(config).to(device).train()
    own = [p for method in methods for p in method.own_parameters(model)]
    optimizer = torch.optim.AdamW([*model.parameters(), *own], lr=5e-5, weight_decay=0.01)
    generator = torch.Generator().manual_seed(args.seed)
    shape = (args.batch_size, args.max_length)
    batches = [
        {
            "inputs": {
                "input_ids": torch.randint(1000, config.vocab_size, shape, generator=generator).to(device),
                "attention_mask": torch.ones(shape, dtype=torch.long, device=device),
            },
            "labels": torch.randint(0, 2, (args.batch_size,), generator=generator).to(device),
        }
        for _ in range(args.warmup + args.steps)
    ]
    seconds, passes = time_steps(model, optimizer, methods, batches, args.warmup, device)
    precision = runtime.precision(device)
    peak = device_peak(device, precision)
    print(
        f"device {device} ({torch.cuda.get_device_name(0) if device.type == 'cuda' else 'cpu'}), BERT-base random "
        f"init, batch {args.batch_size} x {args.max_length} tokens, {args.warmup} warm-up + {args.steps} timed steps "
        f"per method, torch {torch.__version__}, precision {precision}, matrix-product peak {peak / 1e12:.1f} TFLOP/s"
    )
    print_ratios(methods, seconds, passes)
    if "base" in seconds:
        flops = 3 * forward_flops(config, *shape)  # forward + backward (two products per forward product)
        step = statistics.median(seconds["base"])
        print(
            f"\nbase step: {flops / 1e12:.2f} TFLOP in {step * 1e3:.1f} ms = {flops / step / 1e12:.1f} TFLOP/s, "
            f"model FLOP utilization {100 * flops / step / peak:.0f} % of the measured peak (goal >= 40 %)"
        )


def device_peak(device, precision: str) -> float:
    """The device's matrix-product FLOP/s in ``precision``, measured now: best of 10 square products (8192 on a
    GPU; on the CPU :func:`advlm.timing.matmul_peak`)."""
    import torch

    from advlm.timing import matmul_peak

    if device.type != "cuda":
        return matmul_peak(precision)
    size = 8192
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    a, b = torch.randn(size, size, device=device, dtype=dtype), torch.randn(size, size, device=device, dtype=dtype)
    for _ in range(3):
        torch.mm(a, b)
    times = []
    for _ in range(10):
        torch.cuda.synchronize()
        began = time.perf_counter()
        torch.mm(a, b)
        torch.cuda.synchronize()
        times.append(time.perf_counter() - began)
    return 2 * size**3 / min(times)


def print_ratios(methods, seconds, passes) -> None:
    from advlm.training import method_hyperparameters

    base = statistics.median(seconds["base"]) if "base" in seconds else None
    print(
        "| method | hyperparameters | K | passes/step (forward, backward) | s/step (median) | s/step (mean) | "
        "ratio to base | goal 1.15(K+1) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for method in methods:
        median, mean = statistics.median(seconds[method.name]), statistics.mean(seconds[method.name])
        k = steps_k(method)
        ratio = f"{median / base:.2f}" if base else "-"
        goal = (
            "-"
            if not k
            else f"{1.15 * (k + 1):.2f} ({'met' if base and median / base <= 1.15 * (k + 1) else 'missed'})"
        )
        params = ", ".join(f"{key}={value}" for key, value in method_hyperparameters(method).items()) or "-"
        count = f"{passes[method.name]['forward']:g}, {passes[method.name]['backward']:g}"
        print(f"| {method.name} | {params} | {k or '-'} | {count} | {median:.3f} | {mean:.3f} | {ratio} | {goal} |")


def print_sizes(methods) -> None:
    # How large the perturbations were, over all (warm-up and timed) steps: the realised budget.
    print(
        "\n| method | norm | passes | size mean | max | relative to the text's embedding norm: mean | max | "
        "at the epsilon bound |"
    )
    print("|---|---|---|---|---|---|---|---|")
    hulls = []
    for method in methods:
        if hasattr(method, "realised"):
            size = method.realised.summary(getattr(method, "epsilon", None))
            print(
                f"| {method.name} | {size['norm']} | {size['passes']} | {size['mean']:.3f} | {size['max']:.3f} | "
                f"{size['relative_mean']:.4f} | "
                f"{size['relative_max']:.4f} | {size.get('at_bound', float('nan')):.2f} |"
            )
            if "hull_share" in size:  # the synonym-hull methods: how many tokens moved, and how
                hulls.append(
                    f"{method.name}: {size['hull_share']:.1%} of the tokens in a synonym hull, mean largest convex "
                    f"weight {size['top_weight']:.2f}, the word's own weight {size['word_weight']:.2f}"
                )
    if hulls:
        print("\n" + "\n".join(hulls))


if __name__ == "__main__":
    main()
