"""What ships: the wheel built from the tracked files alone, as a fresh clone would build it,
carries the service, its migrations and the generated contract, and nothing else."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


class Builder:
    """Builds wheels as pip's build isolation does, in an environment that holds nothing but
    what the project's `[build-system] requires` names, made once for each distinct list:
    installing grpcio-tools and what it needs is most of a build's time, and the service and
    the client declare the same list."""

    def __init__(self, folder: Path) -> None:
        self._folder = folder
        self._environments: dict[tuple[str, ...], Path] = {}

    def wheel(self, project: Path, out: Path) -> Path:
        build = ("--no-build-isolation", "--no-deps", "-w", str(out), str(project))
        _pip(self._environment(project), "wheel", *build)
        (wheel,) = out.glob("*.whl")
        return wheel

    def _environment(self, project: Path) -> Path:
        pyproject = tomllib.loads((project / "pyproject.toml").read_text())
        requires = tuple(sorted(pyproject["build-system"]["requires"]))
        if requires not in self._environments:
            folder = self._folder / f"build-env-{len(self._environments)}"
            venv.create(folder, with_pip=False)  # the standard library alone, as pip's
            _pip(folder, "install", *requires)
            self._environments[requires] = folder
        return self._environments[requires]


def _pip(environment: Path, *args: str) -> None:
    """The tests' pip, acting on `environment` (`pip --python`)."""
    python = environment / "bin" / "python"
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "--quiet", *args],
        check=True,
        capture_output=True,
    )


@pytest.fixture(scope="module")
def builder(tmp_path_factory: pytest.TempPathFactory) -> Builder:
    return Builder(tmp_path_factory.mktemp("build"))


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tracked files (and untracked ones git does not ignore), as a fresh clone has them:
    wheels are built there, so that no build leaves anything in the working tree."""
    folder = tmp_path_factory.mktemp("clone")
    tracked = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    ).stdout.split(b"\0")
    for name in filter(None, (entry.decode() for entry in tracked)):
        source = ROOT / name
        if source.is_file():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, folder / name)
    assert not (folder / "checkout").exists(), "the generated contract must not be in git"
    return folder


@pytest.fixture(scope="module")
def wheel_files(
    builder: Builder, clone: Path, tmp_path_factory: pytest.TempPathFactory
) -> set[str]:
    wheel = builder.wheel(clone, tmp_path_factory.mktemp("wheel"))
    with zipfile.ZipFile(wheel) as archive:
        return set(archive.namelist())


def test_the_wheel_carries_the_service_its_migrations_and_the_contract(
    wheel_files: set[str],
) -> None:
    expected = {
        "service/__main__.py",
        "service/app.py",
        "service/py.typed",
        "service/store/migrations/0001_ledger.sql",
        "checkout/py.typed",
        "checkout/v1/checkout_service_pb2.py",
        "checkout/v1/checkout_service_pb2.pyi",
        "checkout/v1/checkout_service_pb2_grpc.py",
        "checkout/v1/checkout_service_pb2_grpc.pyi",
        "checkout/v1/session_pb2.py",
        "checkout/v1/session_pb2.pyi",
        "checkout/v1/event_pb2.py",
        "checkout/v1/event_pb2.pyi",
    }
    assert expected <= wheel_files
    migrations = {p.name for p in (ROOT / "service/store/migrations").glob("*.sql")}
    shipped = {Path(f).name for f in wheel_files if f.startswith("service/store/migrations/")}
    assert shipped == migrations


def test_the_wheel_carries_nothing_but_the_service_and_the_contract(
    wheel_files: set[str],
) -> None:
    top_level = {name.split("/", 1)[0] for name in wheel_files}
    assert {t for t in top_level if not t.endswith(".dist-info")} == {"service", "checkout"}
    for name in wheel_files:
        assert "sandbox" not in name, name
        assert "devrun" not in name and "embedded" not in name, name
        assert not name.startswith(("tests/", "bench/", "localdev/")), name


def test_the_client_wheel_carries_the_stubs_and_the_service_config(
    builder: Builder, clone: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    wheel = builder.wheel(clone / "clients" / "python", tmp_path_factory.mktemp("client-wheel"))
    assert wheel.name.startswith("checkout_client-")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    assert {
        "checkout_client/__init__.py",
        "checkout_client/service_config.json",
        "checkout/v1/checkout_service_pb2.py",
        "checkout/v1/checkout_service_pb2_grpc.pyi",
    } <= names
    assert not any(name.startswith("service/") for name in names)
