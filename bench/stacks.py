"""py-spy's collapsed stacks (`record --format raw`: one `frame;frame;… count` line per stack,
each frame `function (file:line)`), read back as shares of the samples: by library, by
function on the CPU, and by function anywhere on the stack. Pure, for bench/profile.py."""

from __future__ import annotations

import re
import sys
from collections import Counter
from pathlib import Path

_FRAME = re.compile(r"^(?P<function>.*) \((?P<file>[^():]*)(?::\d+)?\)$")
_TOP = 20


def _frames(line: str) -> tuple[list[tuple[str, str]], int]:
    stack, _, count = line.rpartition(" ")
    frames = []
    for raw in stack.split(";"):
        if match := _FRAME.match(raw):
            frames.append((match["function"], match["file"]))
    return frames, int(count)


def _area(file: str) -> str:
    """The library, the standard library's module or the service's package a frame is in (py-spy
    names files from their package: `stripe/_http_client.py`, `asyncio/events.py`)."""
    parts = Path(file).parts
    top = parts[0].removesuffix(".py") if parts else file
    if top in ("service", "checkout"):
        return "/".join(parts[:2]).removesuffix(".py")
    if top.startswith("<") or top in sys.stdlib_module_names:
        return f"{top} (standard library)"
    return top


def summary(raw: str) -> list[str]:
    """Where the samples fall: by library (the innermost frame's), by function on the CPU
    (self), and by function anywhere on the stack (inclusive), as shares of all samples."""
    areas: Counter[str] = Counter()
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in filter(None, raw.splitlines()):
        frames, count = _frames(line)
        if not frames:
            continue
        total += count
        function, file = frames[-1]
        areas[_area(file)] += count
        own[f"{function} ({file})"] += count
        for name in {f"{f} ({path})" for f, path in frames}:
            inclusive[name] += count
    lines = [f"{total} samples of the service's Python threads on the CPU"]
    for title, counts in (
        ("library of the innermost frame", areas),
        ("function on the CPU (self)", own),
        ("function anywhere on the stack (inclusive)", inclusive),
    ):
        lines += ["", f"| {title} | share |", "|---|--:|"]
        lines += [f"| {name} | {n / total:.1%} |" for name, n in counts.most_common(_TOP)]
    return lines
