"""Where a job's wall time goes, and how close its model work runs to the machine's matrix-product peak.

Every job's wall time is split into exclusive phases:

- ``startup``: from the process's creation to :func:`advlm.runtime.setup` (the interpreter, Snakemake's script
  preamble and the script's module-level imports);
- ``imports``: imports after that (transformers, TextAttack, spaCy are imported where first used);
- ``load``: reading models, tokenizers and resources (:func:`loading`), less the imports inside it;
- ``work``: everything else, of which ``model`` is the time inside the forward passes of the watched model
  (:func:`watch`; for an attack, the victim's queries) and ``parts`` the time of other named parts of the work
  (an attack's sentence encoder, part-of-speech tagger and masked LM: :func:`watch` with ``part``, :func:`part`),
  so that what is left is the search, the cheap constraints and Python.

:func:`watch` also counts the matrix-product FLOPs of the watched models' passes (a backward pass counted as two
forwards) and the job then measures, at its end and on its own thread count, this machine's fp32 and bf16
matrix-product peak, so that achieved FLOP/s and peak come from the same process under the same load. The summary
is one ``job time:`` JSON line in the job's log; ``benchmarks/job_costs.py`` gathers them into a table.
"""

from __future__ import annotations

import atexit
import builtins
import contextlib
import json
import logging
import time

log = logging.getLogger(__name__)

PHASES = ("startup", "imports", "load", "work")


class Clock:
    """Exclusive wall time per phase: time is charged to the innermost phase entered."""

    def __init__(self, process_start: float):
        self.process_start = process_start
        self.seconds = dict.fromkeys(PHASES, 0.0)
        self.stack = ["work"]
        self.since = time.time()
        self.seconds["startup"] = self.since - process_start
        self.model_seconds = 0.0
        self.part_seconds = {}  # part of the work -> seconds (see the module's docstring)
        self.flops = {}  # precision -> FLOPs of the watched models' passes

    def enter(self, phase: str) -> None:
        self._charge()
        self.stack.append(phase)

    def add_part(self, name: str, seconds: float) -> None:
        self.part_seconds[name] = self.part_seconds.get(name, 0.0) + seconds

    def leave(self) -> None:
        self._charge()
        self.stack.pop()

    def _charge(self) -> None:
        now = time.time()
        self.seconds[self.stack[-1]] += now - self.since
        self.since = now

    def summary(self) -> dict:
        self._charge()
        wall = time.time() - self.process_start
        return {
            "wall": wall,
            **self.seconds,
            "model": self.model_seconds,
            "parts": dict(self.part_seconds),
            "flops": dict(self.flops),
        }


_clock: Clock | None = None


def start() -> None:
    """Start the clock of this job (called by :func:`advlm.runtime.setup`): charge what ran since the process was
    created to start-up, time later imports, and, in a Snakemake job, log the summary when the process exits."""
    global _clock
    if _clock is not None:
        return
    import psutil

    _clock = Clock(psutil.Process().create_time())
    _time_imports()
    import __main__

    if getattr(__main__, "snakemake", None) is not None:  # a job (not a test or a benchmark): its log gets the line
        atexit.register(_report)


def summary() -> dict | None:
    """The job's times so far (the ``job time:`` line's fields), or None before :func:`start`."""
    return None if _clock is None else _clock.summary()


@contextlib.contextmanager
def loading():
    """Charge the block to ``load`` (reading a model, a tokenizer, a resource)."""
    if _clock is None:
        yield
        return
    _clock.enter("load")
    try:
        yield
    finally:
        _clock.leave()


@contextlib.contextmanager
def part(name: str):
    """Charge the block's time to the part of the work called ``name`` as well (it stays in ``work``)."""
    began = time.time()
    try:
        yield
    finally:
        if _clock is not None:
            _clock.add_part(name, time.time() - began)


def _time_imports() -> None:
    """Charge the outermost import statements to ``imports`` (nested ones are inside them)."""
    original = builtins.__import__
    depth = [0]

    def timed_import(name, globals=None, locals=None, fromlist=(), level=0):
        if depth[0] or _clock is None:
            return original(name, globals, locals, fromlist, level)
        depth[0] += 1
        _clock.enter("imports")
        try:
            return original(name, globals, locals, fromlist, level)
        finally:
            _clock.leave()
            depth[0] -= 1

    builtins.__import__ = timed_import


def forward_flops(config, batch: int, length: int, vocabulary_head: bool = False) -> float:
    """Matrix-product FLOPs of one forward pass of a BERT-style encoder over ``batch`` x ``length`` tokens: the
    weight matrices of every layer (attention projections and the feed-forward block) and attention's two
    products (scores and weighted values), and with ``vocabulary_head`` a masked LM's projection of every token
    onto the vocabulary. Embedding lookups, norms and classification heads are below 1 % at these sizes."""
    hidden, inner, layers = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    tokens = batch * length
    weights = 2 * tokens * (4 * hidden * hidden + 2 * hidden * inner)
    attention = 2 * 2 * batch * length * length * hidden
    head = 2 * tokens * hidden * config.vocab_size if vocabulary_head else 0
    return float(layers * (weights + attention) + head)


def _precision(tensor) -> str:
    import torch

    device = tensor.device.type
    if torch.is_autocast_enabled(device) and torch.get_autocast_dtype(device) == torch.bfloat16:
        return "bf16"
    return "fp32"


def watch(model, part: str | None = None) -> None:
    """Count the FLOPs and time of ``model``'s forward passes (and of the backward passes that follow a forward
    whose output is in an autograd graph, at twice a forward's FLOPs; their time is in the training loop's work).
    The time is the job's ``model`` time, or with ``part`` that part's (a model other than the one trained or
    attacked: an attack's sentence encoder or masked LM)."""
    if _clock is None:
        return

    config = model.config
    vocabulary_head = model.get_output_embeddings() is not None  # a masked LM's projection onto the vocabulary
    entered = []

    def before(module, args, kwargs):
        entered.append(time.time())

    def after(module, args, kwargs, output):
        seconds = time.time() - entered.pop()
        if part is None:
            _clock.model_seconds += seconds
        else:
            _clock.add_part(part, seconds)
        ids = kwargs.get("input_ids", args[0] if args else None)
        shape = ids.shape if ids is not None else kwargs["inputs_embeds"].shape[:2]
        flops = forward_flops(config, shape[0], shape[1], vocabulary_head)
        if output[0].requires_grad:  # not under no_grad, nor for a frozen model run on plain inputs
            flops *= 3  # the backward pass: gradients w.r.t. inputs and weights, two products per forward product
        precision = f"{next(module.parameters()).device.type}-{_precision(next(module.parameters()))}"
        _clock.flops[precision] = _clock.flops.get(precision, 0.0) + flops

    model.register_forward_pre_hook(before, with_kwargs=True)
    model.register_forward_hook(after, with_kwargs=True)


def matmul_peak(dtype_name: str, seconds: float = 0.4) -> float:
    """This machine's matrix-product FLOP/s at the process's thread count: the best of repeated square products
    (n = 512 in fp32; bf16 sized down where it has no bf16 units, so that measuring it stays cheap)."""
    import torch

    dtype = getattr(torch, {"fp32": "float32", "bf16": "bfloat16"}[dtype_name])
    size = 512
    a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
    best, deadline = float("inf"), time.perf_counter() + seconds
    while True:
        began = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - began)
        if time.perf_counter() > deadline:
            break
        if best > 0.05 and size > 128:  # slow (no bf16 units): a smaller product measures the rate as well
            size //= 2
            a, b, best = a[:size, :size].contiguous(), b[:size, :size].contiguous(), float("inf")
    return 2 * size**3 / best


def _report() -> None:
    times = _clock.summary()
    if any(name.startswith("cpu") for name in times["flops"]):
        import torch

        times["threads"] = torch.get_num_threads()
        times["peak"] = {name: matmul_peak(name) for name in ("fp32", "bf16")}
    log.info("job time: %s", json.dumps(times, sort_keys=True))
    for handler in logging.getLogger().handlers:
        handler.flush()
