"""What the image and CI install is pinned: requirements.lock (runtime) and requirements-dev.lock (runtime plus
the test tools) pin every package with hashes, agree with pyproject.toml and with each other, and the Dockerfile
and ./dev install from them."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def pins(name: str) -> dict[str, tuple[str, int]]:
    """package → (version, number of hashes) from a pip-compile lock file."""
    text = (ROOT / name).read_text(encoding="utf-8")
    found: dict[str, tuple[str, int]] = {}
    for block in re.split(r"\n(?=[A-Za-z0-9])", text):
        head = re.match(r"([A-Za-z0-9_.\-]+)==([^\s;\\]+)", block)
        if head:
            found[canonicalize_name(head.group(1))] = (head.group(2), block.count("--hash=sha256:"))
    return found


RUNTIME = pins("requirements.lock")
DEV = pins("requirements-dev.lock")


@pytest.mark.parametrize("lock", ["requirements.lock", "requirements-dev.lock"])
def test_every_package_is_pinned_with_a_hash(lock: str) -> None:
    locked = pins(lock)
    assert len(locked) > 20
    assert [name for name, (_, hashes) in locked.items() if hashes == 0] == []
    assert "--index-url" not in (ROOT / lock).read_text() and "file://" not in (ROOT / lock).read_text()


@pytest.mark.parametrize(
    "lock, requirements",
    [
        ("requirements.lock", PYPROJECT["project"]["dependencies"]),
        (
            "requirements-dev.lock",
            PYPROJECT["project"]["dependencies"] + PYPROJECT["project"]["optional-dependencies"]["dev"],
        ),
    ],
)
def test_the_locks_satisfy_pyproject(lock: str, requirements: list[str]) -> None:
    locked = pins(lock)
    for line in requirements:
        requirement = Requirement(line)
        name = canonicalize_name(requirement.name)
        assert name in locked, f"{name} is not in {lock}: regenerate it (README, Dependencies)"
        assert requirement.specifier.contains(locked[name][0], prereleases=True), (name, locked[name])


def test_the_dev_lock_keeps_the_runtime_versions() -> None:
    # CI tests exactly what the image runs.
    assert {n: DEV[n][0] for n in RUNTIME if n in DEV} == {n: v for n, (v, _) in RUNTIME.items()}


def test_the_image_and_dev_install_from_the_locks() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert "COPY requirements.lock" in dockerfile
    assert "pip install --require-hashes --no-deps -r requirements.lock" in dockerfile
    assert "pip install --no-deps /wheels/madoguchi-" in dockerfile
    dev = (ROOT / "dev").read_text(encoding="utf-8")
    assert "--require-hashes -r requirements-dev.lock" in dev and "--no-deps -e ." in dev
    assert "requirements.lock" not in (ROOT / ".dockerignore").read_text(encoding="utf-8").split("\n", 1)[1]
