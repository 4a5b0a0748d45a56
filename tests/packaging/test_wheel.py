"""What ships: the wheel built from the tracked files alone, as a fresh clone would build it,
carries the service, its migrations and the generated contract, and nothing else."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def wheel_files(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    clone = tmp_path_factory.mktemp("clone")
    tracked = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    ).stdout.split(b"\0")
    for name in filter(None, (entry.decode() for entry in tracked)):
        source = ROOT / name
        if source.is_file():
            (clone / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, clone / name)
    assert not (clone / "checkout").exists(), "the generated contract must not be in git"
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(out), str(clone)],
        check=True,
        capture_output=True,
    )
    (wheel,) = out.glob("*.whl")
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
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    out = tmp_path_factory.mktemp("client-wheel")
    client = ROOT / "clients" / "python"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(out), str(client)],
        check=True,
        capture_output=True,
    )
    (wheel,) = out.glob("checkout_client-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    assert {
        "checkout_client/__init__.py",
        "checkout_client/service_config.json",
        "checkout/v1/checkout_service_pb2.py",
        "checkout/v1/checkout_service_pb2_grpc.pyi",
    } <= names
    assert not any(name.startswith("service/") for name in names)
