"""Build from a checkout of the repository: the contract is generated from ../../protos into
the wheel (it is a build artifact, not in git)."""

import runpy
from pathlib import Path

from setuptools import setup

HERE = Path(__file__).resolve().parent

runpy.run_path(str(HERE.parent.parent / "protos" / "generate.py"))["generate_if_stale"](HERE)
setup()
