"""CPU time and memory of other processes on this machine, read from /proc (Linux)."""

from __future__ import annotations

import os
from pathlib import Path

_TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[str]:
    """The fields of /proc/PID/stat after the command name, which may contain spaces:
    index 0 is field 3 (state), so field N is at index N - 3."""
    text = Path(f"/proc/{pid}/stat").read_text()
    return text.rsplit(")", 1)[1].split()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of every thread of `pid` so far (utime + stime)."""
    fields = _stat_fields(pid)
    return (int(fields[11]) + int(fields[12])) / _TICKS_PER_SECOND


def tree_cpu_seconds(pid: int) -> float:
    """`cpu_seconds` of `pid` and of its direct children (Postgres: the postmaster and its
    backends). A child that exits between two samples takes its CPU time with it."""
    total = cpu_seconds(pid)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = _stat_fields(int(entry.name))
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        if int(fields[1]) == pid:
            total += (int(fields[11]) + int(fields[12])) / _TICKS_PER_SECOND
    return total


def steal_seconds() -> float:
    """CPU time this virtual machine's CPUs were ready to run but the hypervisor ran something
    else, summed over the CPUs since boot (`steal` in /proc/stat, see proc(5))."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    return int(fields[8]) / _TICKS_PER_SECOND


def rss_mb(pid: int) -> float:
    """Resident set size of `pid` in MiB (VmRSS)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")
