"""The wheel carries the generated contract: generate it first if protos/ changed (or on a fresh
clone, where it is not in git). Everything else about the build is in pyproject.toml."""

import runpy

from setuptools import setup

runpy.run_path("protos/generate.py")["generate_if_stale"]()
setup()
