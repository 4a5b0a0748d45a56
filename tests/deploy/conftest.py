"""The deployment as Kubernetes would receive it: every overlay under deploy/k8s/overlays,
rendered by kustomize (the venv's kubectl from the dev extra, else kubectl or kustomize on
PATH), parsed once per session."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.deploy.manifests import ROOT, Manifests, load_documents

OVERLAYS = ROOT / "deploy" / "k8s" / "overlays"


def _renderer() -> list[str]:
    venv_kubectl = Path(sys.executable).parent / "kubectl"
    if venv_kubectl.exists():
        return [str(venv_kubectl), "kustomize"]
    if found := shutil.which("kubectl"):
        return [found, "kustomize"]
    if found := shutil.which("kustomize"):
        return [found, "build"]
    pytest.fail("neither kubectl nor kustomize: `make install` brings kubectl (dev extra)")


@pytest.fixture(scope="session")
def overlays() -> dict[str, Manifests]:
    render = _renderer()
    rendered = {}
    for overlay in sorted(path for path in OVERLAYS.iterdir() if path.is_dir()):
        text = subprocess.run(
            [*render, str(overlay)], check=True, capture_output=True, text=True
        ).stdout
        rendered[overlay.name] = Manifests(load_documents(text))
    assert set(rendered) == {"dev", "prod"}
    return rendered
