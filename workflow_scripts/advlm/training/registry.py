"""The methods by name and how one is built.

A method is built from its hyperparameters (the keyword arguments of its class; their defaults equal
those of ``finetune.method_params`` in schemas/config.schema.yaml, which tests/test_methods.py checks)
plus the run objects of the training loop it names in ``needs`` (``tokenizer``, ``max_length``,
``device``, ``seed``), e.g. an input-space method that attacks the model through the tokenizer.
"""

from __future__ import annotations

import dataclasses

from . import base, embedding_space, input_space, synonym_hull

FAMILIES = (base, input_space, embedding_space, synonym_hull)  # the modules that define the methods, one per family


def _defined_methods() -> dict:
    """Every method class that a family module defines (not those it imports), by its ``name``."""
    classes = [
        value
        for family in FAMILIES
        for value in vars(family).values()
        if isinstance(value, type) and issubclass(value, base.BaseMethod) and value.__module__ == family.__name__
    ]
    methods = {method.name: method for method in classes}
    if len(methods) < len(classes):  # a class that kept its parent's name would hide one of the two
        raise TypeError(f"method classes share a name: {sorted(method.name for method in classes)}")
    return methods


METHODS = _defined_methods()


def method_defaults(name: str) -> dict:
    """The hyperparameters of method ``name`` with their defaults."""
    method = METHODS[name]
    if not dataclasses.is_dataclass(method):
        return {}
    return {field.name: field.default for field in dataclasses.fields(method) if field.name not in method.needs}


def method_hyperparameters(method) -> dict:
    """The effective hyperparameters of a built method (defaults filled in)."""
    return {key: getattr(method, key) for key in method_defaults(method.name)}


def build_method(name: str, hyperparameters: dict, **context):
    """Method ``name`` with ``hyperparameters`` (absent ones take their defaults) and the run objects it
    names in ``needs``, taken from ``context`` (the training loop passes tokenizer, max_length, device, seed)."""
    if name not in METHODS:
        raise ValueError(f"unknown training method {name!r}; known: {sorted(METHODS)}")
    method = METHODS[name]
    known = method_defaults(name)
    unknown = sorted(set(hyperparameters) - set(known))
    if known and unknown:
        raise ValueError(f"method {name!r} has no hyperparameter {unknown}; known: {sorted(known)}")
    missing = [key for key in method.needs if key not in context]
    if missing:
        raise ValueError(f"method {name!r} needs {missing} to be built")
    return method(**hyperparameters, **{key: context[key] for key in method.needs})
