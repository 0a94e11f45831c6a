"""The one test of the environment: what is installed is what constraints.txt pins, and the library is the
installed project. Behaviour tests compare recorded versions with what is installed, never with a literal."""

import json
import re
from importlib.metadata import PackageNotFoundError, distributions, version
from pathlib import Path

from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]


def pins() -> dict[str, str]:
    lines = (ROOT / "constraints.txt").read_text().splitlines()
    return dict(re.fullmatch(r"([A-Za-z0-9_.\-]+)==(\S+)", line).groups() for line in lines if line.strip())


def test_every_installed_package_is_the_pinned_version():
    wrong, missing = {}, []
    for name, pinned in pins().items():
        try:
            installed = version(name)
        except PackageNotFoundError:
            missing.append(name)
            continue
        if Version(installed).public != Version(pinned).public:  # torch's local "+cpu" build is the pin
            wrong[name] = (pinned, installed)
    assert not wrong, f"installed versions differ from constraints.txt (pinned, installed): {wrong}"
    assert not missing, f"pinned in constraints.txt but not installed: {missing}"


def requirements(name: str) -> set[str]:
    """The normalized package names a requirements file lists."""
    return {
        re.split(r"[=<>\[ ]", line)[0].lower().replace("_", "-")
        for line in (ROOT / name).read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }


def test_every_direct_requirement_is_pinned():
    names = requirements("requirements.txt") | requirements("requirements-dev.txt")
    pinned = {name.lower().replace("_", "-") for name in pins()}
    assert names <= pinned, f"not pinned in constraints.txt: {sorted(names - pinned)}"


def test_the_jobs_environment_has_no_development_tools():
    """requirements.txt is every job's environment (envs/workflow.yaml reads it too); the tests', lint's and
    format's tools are in requirements-dev.txt alone."""
    shared = requirements("requirements.txt") & requirements("requirements-dev.txt")
    assert not shared, f"in both the jobs' and the development requirements: {sorted(shared)}"
    env = (ROOT / "envs" / "workflow.yaml").read_text()
    assert "-r ../requirements.txt" in env and "requirements-dev" not in env


def test_the_library_is_the_installed_project():
    """`make setup` installs the project (pyproject.toml) editable: its files are this checkout's."""
    # pip's record of the install (the project folder's advlm.egg-info, from the build, records no origin)
    origins = [
        json.loads(found.read_text("direct_url.json"))
        for found in distributions(name="advlm")
        if found.read_text("direct_url.json")
    ]
    assert origins == [{"url": ROOT.as_uri(), "dir_info": {"editable": True}}]
