"""Generate the `checkout.v1` Python package (messages, gRPC stubs and their `.pyi` types) from
protos/ into the repository root. Run by `make proto` and by the wheel build (setup.py), so that
`pip install .` on a fresh clone ships the contract without a generated file in git.

Needs grpcio-tools and mypy-protobuf (build requirements in pyproject.toml)."""

from __future__ import annotations

import shutil
import sys
from importlib import resources
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTOS = ROOT / "protos"
OUT = ROOT / "checkout"
MARKER = OUT / "v1" / "checkout_service_pb2.py"


def sources() -> list[Path]:
    return sorted((PROTOS / "checkout" / "v1").glob("*.proto"))


def up_to_date(root: Path = ROOT) -> bool:
    marker = root / MARKER.relative_to(ROOT)
    if not marker.exists():
        return False
    built = marker.stat().st_mtime
    return all(path.stat().st_mtime <= built for path in sources())


def plugin(name: str) -> str:
    """mypy-protobuf's protoc plugins, next to this Python or on PATH (pip's build env)."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    if found is None:
        raise SystemExit(f"{name} not found: install mypy-protobuf")
    return found


def generate(root: Path = ROOT) -> None:
    """Write the `checkout` package under `root` (the repository, or the client's folder)."""
    # In-process: a subprocess would not see pip's isolated build environment.
    from grpc_tools import protoc

    out = root / OUT.relative_to(ROOT)
    shutil.rmtree(out, ignore_errors=True)
    well_known = resources.files("grpc_tools") / "_proto"
    command = [
        "grpc_tools.protoc",
        f"-I{PROTOS}",
        f"-I{well_known}",
        f"--plugin=protoc-gen-mypy={plugin('protoc-gen-mypy')}",
        f"--plugin=protoc-gen-mypy_grpc={plugin('protoc-gen-mypy_grpc')}",
        f"--python_out={root}",
        f"--mypy_out={root}",
        f"--grpc_python_out={root}",
        f"--mypy_grpc_out={root}",
        *(str(path) for path in sources()),
    ]
    if protoc.main(command) != 0:
        raise SystemExit(f"protoc failed: {' '.join(command)}")
    # Regular packages with type information (PEP 561), so that the wheel carries them.
    for package in (out, out / "v1"):
        (package / "__init__.py").touch()
    (out / "py.typed").touch()


def generate_if_stale(root: Path = ROOT) -> None:
    if not up_to_date(root):
        generate(root)


if __name__ == "__main__":
    generate_if_stale()
