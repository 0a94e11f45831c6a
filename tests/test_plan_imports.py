"""The library modules each rule's script imports (advlm.plan.imports), and the stamp file per script that makes a
change to one of them rerun the script's jobs (tests/test_staleness.py shows it on the workflow)."""

import hashlib
import os
import subprocess
import sys
import time

import pytest
from smk import ROOT

from advlm.plan import imports

OLD = 1_000_000_000  # a time stamp long before any test runs


@pytest.fixture
def library(tmp_path, monkeypatch):
    """A script that imports advlm.a, which imports advlm.b; advlm.c is imported by nothing. Old time stamps."""
    scripts = tmp_path / "workflow_scripts"
    (scripts / "advlm").mkdir(parents=True)
    (scripts / "job.py").write_text("import os\nfrom advlm import a\n")
    (scripts / "advlm" / "__init__.py").write_text('"""the library"""\n')
    (scripts / "advlm" / "a.py").write_text("from . import b\n")
    (scripts / "advlm" / "b.py").write_text("VALUE = 1\n")
    (scripts / "advlm" / "c.py").write_text("VALUE = 3\n")
    for offset, path in enumerate(sorted((scripts / "advlm").glob("*.py"))):
        os.utime(path, (OLD + offset, OLD + offset))
    monkeypatch.setattr(imports, "SCRIPTS", scripts)
    return scripts


def _stamp(tmp_path):
    return tmp_path / "stamps" / "job.sha256"


def test_a_stamp_lists_the_imported_modules_with_their_digests(library, tmp_path):
    stamp = imports.library_stamp("job", tmp_path / "stamps")
    assert stamp == str(_stamp(tmp_path))
    expected = [
        f"{hashlib.sha256((library / path).read_bytes()).hexdigest()}  {path}"
        for path in ("advlm/__init__.py", "advlm/a.py", "advlm/b.py")  # through a, not c; os is no library module
    ]
    assert _stamp(tmp_path).read_text().splitlines() == expected
    # a new stamp is as old as the newest module it lists: what is newer than the code stays up to date
    assert _stamp(tmp_path).stat().st_mtime == max((library / "advlm" / f"{m}.py").stat().st_mtime for m in "ab")


def test_a_stamp_changes_with_its_modules_content_only(library, tmp_path):
    imports.library_stamp("job", tmp_path / "stamps")
    written = _stamp(tmp_path).stat().st_mtime
    os.utime(library / "advlm" / "a.py")  # touched, not changed
    (library / "advlm" / "c.py").write_text("VALUE = 4\n")  # changed, but imported by nothing
    imports.library_stamp("job", tmp_path / "stamps")
    assert _stamp(tmp_path).stat().st_mtime == written
    (library / "advlm" / "b.py").write_text("VALUE = 2\n")
    os.utime(library / "advlm" / "b.py", (OLD, OLD))  # an old time stamp (copied with its times): still a change
    before = time.time()
    imports.library_stamp("job", tmp_path / "stamps")
    assert _stamp(tmp_path).stat().st_mtime >= before - 1  # the time of the change: newer than every output
    assert hashlib.sha256(b"VALUE = 2\n").hexdigest() in _stamp(tmp_path).read_text()
    assert not list((tmp_path / "stamps").glob(".*"))  # no partial file left behind


@pytest.mark.parametrize("script", sorted(path.stem for path in (ROOT / "workflow_scripts").glob("*.py")))
def test_every_module_a_script_loads_is_in_its_stamp(script):
    """What Python actually loads on importing a script is among the modules derived from its code."""
    # run from the scripts' folder, which is first on the path as in a Snakemake job
    code = (
        f"import sys, {script}; "
        "print('\\n'.join(m.__file__ for name, m in sys.modules.items() if name.split('.')[0] == 'advlm'))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT / "workflow_scripts", capture_output=True, text=True, check=True
    ).stdout.split()
    assert loaded, "the script imports no library module"
    assert set(loaded) <= set(imports.script_libs(script))
