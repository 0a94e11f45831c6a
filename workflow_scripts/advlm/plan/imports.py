"""The library modules each rule's script imports, and one stamp file per script that summarises them.

Snakemake reruns a job when its script changes, not when a module the script imports does. A job therefore has one
more input: its script's library stamp, a file listing the sha256 of every library module the script imports,
directly or through other modules (read from the code, so it cannot fall behind it). The stamp is rewritten when,
and only when, one of those modules' content changes; its new time stamp is then newer than every output, and
Snakemake reruns exactly the jobs whose scripts import the module (and what depends on them). One stamp instead of
the modules themselves keeps a job's entry in the log short (docs/workflow.md, caching and staleness).
"""

import ast
import functools
import hashlib
import os
from pathlib import Path

from .repo import SCRIPTS

LIBRARY = "advlm"  # the package under workflow_scripts/ that the rules' scripts share
# where the stamps are written, relative to the working directory: beside Snakemake's own records, so that a failed
# dry run leaves no results/ behind (an output-free directory, like Snakemake's, is not part of the results)
STAMPS = Path(".snakemake") / "library"


def script_libs(script):
    """The library files a rule's script imports, directly or through other modules (imports inside functions
    included; a package's ``__init__`` with each of its modules), as sorted absolute paths."""
    seen, todo = set(), [SCRIPTS / f"{script}.py"]
    while todo:
        for path in _library_imports(todo.pop()) - seen:
            seen.add(path)
            todo.append(path)
    return sorted(str(path) for path in seen)


def library_stamp(script, directory=STAMPS):
    """The path of ``script``'s library stamp (``<directory>/<script>.sha256``), written first if it is missing or
    its modules' content changed. Its lines are sha256sum's (``<digest>  advlm/<module>.py``, relative to
    workflow_scripts), so ``sha256sum -c`` run there checks them.

    A new stamp (a fresh working directory, or one whose .snakemake was removed) takes the time of the newest
    module it lists, so that it reruns only what is older than the code, as the modules themselves would; a changed
    stamp takes the time it is written, so that a change reruns its jobs even where the module's own time stamp is
    old (a file copied with its times, a branch checked out)."""
    modules = [Path(path) for path in script_libs(script)]
    text = "".join(f"{_sha256(path)}  {path.relative_to(SCRIPTS)}\n" for path in modules)
    stamp = Path(directory) / f"{script}.sha256"
    if stamp.exists() and stamp.read_text() == text:
        return str(stamp)
    existed = stamp.exists()
    stamp.parent.mkdir(parents=True, exist_ok=True)
    partial = stamp.with_name(f".{stamp.name}.{os.getpid()}")  # jobs may read the Snakefile at once: no torn file
    partial.write_text(text)
    if not existed:
        newest = max(path.stat().st_mtime for path in modules)
        os.utime(partial, (newest, newest))
    os.replace(partial, stamp)
    return str(stamp)


def _sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _module_file(dotted):
    """The file of module ``dotted`` (``advlm.attacks.catalog``) under workflow_scripts, or None if there is none."""
    base = SCRIPTS.joinpath(*dotted.split("."))
    return next((path for path in (base.with_suffix(".py"), base / "__init__.py") if path.exists()), None)


@functools.cache
def _library_imports(path):
    """The library files one Python file imports: each imported module's file and its packages' ``__init__``."""
    path = Path(path)
    own_package = ".".join(path.relative_to(SCRIPTS).parent.parts)  # "" for a rule's script
    if path.name == "__init__.py":
        own_package = ".".join(path.relative_to(SCRIPTS).parts[:-1])
    modules = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = own_package.split(".")[: len(own_package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            else:
                base = node.module or ""
            modules.add(base)
            # `from advlm import x` imports module x where x is one, else a name of the package
            modules.update(f"{base}.{alias.name}" for alias in node.names)
    files = set()
    for module in modules:
        parts = module.split(".")
        if parts[0] != LIBRARY:
            continue
        for depth in range(1, len(parts) + 1):  # importing a.b.c runs a/__init__ and a/b/__init__ too
            found = _module_file(".".join(parts[:depth]))
            if found:
                files.add(found)
    return frozenset(files)
