"""`python -m chaos.pg_pair DATA_DIR`: a primary and its streaming standby from pgserver's
PostgreSQL binaries (https://www.postgresql.org/docs/current/warm-standby.html), for the
failover run (chaos/failover.py), in a process of its own for the reason chaos/pg_keeper.py
gives.

Both listen on 127.0.0.1, each on a port of its own, so that a DATABASE_URL can list the two
(`postgresql://…@127.0.0.1:P1,127.0.0.1:P2/…?target_session_attrs=read-write`). The standby is
made with `pg_basebackup -R` and replicates asynchronously, as most managed Postgres standbys
do: the primary commits without waiting for it.

Protocol, one line each way: on start it prints `ready PRIMARY_PORT STANDBY_PORT`; then
- `hold`: the standby's WAL receiver is stopped (its `primary_conninfo` emptied), so that what
  the primary commits from now on never reaches it, as a standby lagging behind a busy primary;
  answers `held LSN`, where the standby's copy of the WAL ends;
- `kill`: every process of the primary SIGKILLed at once, as when its machine dies; `killed`;
- `promote`: `pg_ctl promote` on the standby; `promoted`;
- `lost`: the commits the primary made that the standby never received, counted in the dead
  primary's WAL with pg_waldump; `lost N`;
end of input stops both and exits.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import warnings
from contextlib import suppress
from pathlib import Path
from typing import Any

# Starting a server, a base backup, a promotion: seconds, more on a busy machine.
_COMMAND_SECONDS = 120.0
_POLL_SECONDS = 0.1


class Pair:
    def __init__(self, data: Path) -> None:
        with warnings.catch_warnings():
            # platformdirs warns that XDG_RUNTIME_DIR is unset and falls back to /tmp: harmless.
            warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")
            from pgserver._commands import POSTGRES_BIN_PATH

        self._bin = POSTGRES_BIN_PATH
        self._data = data
        self._user: str | None = None
        self.primary = data / "primary"
        self.standby = data / "standby"
        self.ports = {self.primary: _free_port(), self.standby: _free_port()}
        self.held_at = ""

    def start(self) -> None:
        self._data.mkdir(parents=True, exist_ok=True)
        self._as_server_user()
        self._run(
            "initdb",
            "-D",
            str(self.primary),
            "--auth=trust",
            "-U",
            "postgres",
            "--encoding=utf8",
        )
        self._start(self.primary)
        self._run(
            "pg_basebackup",
            "-D",
            str(self.standby),
            *self._address(self.primary),
            "-U",
            "postgres",
            "--write-recovery-conf",
            "--wal-method=stream",
        )
        self._start(self.standby)
        self._until(lambda: self._query(self.standby, _RECEIVING) == "1", "the standby streams")

    def hold(self) -> str:
        self._query(
            self.standby, "ALTER SYSTEM SET primary_conninfo = ''", "SELECT pg_reload_conf()"
        )
        self._until(lambda: self._query(self.standby, _RECEIVING) == "0", "the receiver stops")
        self.held_at = self._query(self.standby, "SELECT pg_last_wal_receive_lsn()")
        return self.held_at

    def kill(self) -> None:
        """SIGKILL the postmaster and every backend at once: a backend outliving its
        postmaster could still commit."""
        postmaster = int((self.primary / "postmaster.pid").read_text().split()[0])
        for pid in (postmaster, *_children(postmaster)):
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self._until(lambda: not _alive(postmaster), "the primary is gone")

    def promote(self) -> None:
        self._run("pg_ctl", "-D", str(self.standby), "-w", "promote")

    def lost(self) -> int:
        """Commit records after the standby's end of WAL in the dead primary's WAL."""
        dump = subprocess.run(
            [
                str(self._bin / "pg_waldump"),
                "--path",
                str(self.primary / "pg_wal"),
                "--start",
                self.held_at,
                "--rmgr",
                "Transaction",
            ],
            capture_output=True,
            text=True,
            timeout=_COMMAND_SECONDS,
            check=False,
            **self._as_user(),
        )
        # pg_waldump ends with an error at the end of the WAL written so far: expected.
        return sum("desc: COMMIT" in line for line in dump.stdout.splitlines())

    def stop(self) -> None:
        for data in (self.standby, self.primary):
            if (data / "postmaster.pid").exists():
                subprocess.run(
                    [str(self._bin / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                    capture_output=True,
                    timeout=_COMMAND_SECONDS,
                    check=False,
                    **self._as_user(),
                )

    def _address(self, data: Path) -> tuple[str, ...]:
        return ("-h", "127.0.0.1", "-p", str(self.ports[data]))

    def _start(self, data: Path) -> None:
        options = (
            f"-c listen_addresses=127.0.0.1 -p {self.ports[data]} -k {self._data} "
            # Durable enough for a run that never loses its machine: a SIGKILLed Postgres
            # loses nothing the kernel holds. Commits stay synchronous to the primary's WAL.
            "-c fsync=off"
        )
        self._run(
            "pg_ctl",
            "-D",
            str(data),
            "-w",
            "-t",
            str(int(_COMMAND_SECONDS)),
            "-o",
            options,
            "-l",
            str(self._data / f"{data.name}.log"),
            "start",
        )

    def _query(self, data: Path, *statements: str) -> str:
        args = [str(self._bin / "psql"), *self._address(data), "-U", "postgres", "-Atq"]
        for statement in statements:
            args += ["-c", statement]
        done = subprocess.run(
            args, capture_output=True, text=True, timeout=_COMMAND_SECONDS, check=True
        )
        return done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""

    def _until(self, condition: Any, what: str) -> None:
        ends = time.monotonic() + _COMMAND_SECONDS
        while not condition():
            if time.monotonic() > ends:
                raise RuntimeError(f"timed out waiting until {what}")
            time.sleep(_POLL_SECONDS)

    def _run(self, program: str, *args: str) -> None:
        subprocess.run(
            [str(self._bin / program), *args],
            capture_output=True,
            timeout=_COMMAND_SECONDS,
            check=True,
            **self._as_user(),
        )

    def _as_user(self) -> dict[str, Any]:
        return {} if self._user is None else {"user": self._user}

    def _as_server_user(self) -> None:
        """Postgres refuses to run as root: as pgserver does, run it as the user `pgserver`,
        which must reach the binaries and the data."""
        if os.geteuid() != 0:
            return
        from pgserver.utils import (
            ensure_folder_permissions,
            ensure_prefix_permissions,
            ensure_user_exists,
        )

        self._user = "pgserver"
        entry = ensure_user_exists(self._user)
        assert entry is not None
        ensure_prefix_permissions(self._data)
        ensure_prefix_permissions(self._bin)
        # Group and others may read the binaries and libraries, and run the binaries.
        ensure_folder_permissions(self._bin, 0o055)
        ensure_folder_permissions(self._bin.parent / "lib", 0o044)
        os.chown(self._data, entry.pw_uid, entry.pw_gid)


_RECEIVING = "SELECT count(*) FROM pg_stat_wal_receiver WHERE status = 'streaming'"


def _stat(pid: str) -> list[str]:
    """/proc/PID/stat's fields after the command's name (which may hold spaces): state,
    parent, … (https://man7.org/linux/man-pages/man5/proc_pid_stat.5.html)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return []


def _children(parent: int) -> list[int]:
    """The postmaster's processes: every backend is a child of it."""
    found = []
    for entry in Path("/proc").iterdir():
        fields = _stat(entry.name) if entry.name.isdigit() else []
        if len(fields) > 1 and fields[1] == str(parent):
            found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    fields = _stat(str(pid))
    return bool(fields) and fields[0] != "Z"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def main(data: Path) -> None:
    # Killed with the run (SIGTERM to its process group), it still stops both servers.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    pair = Pair(data)
    try:
        pair.start()
        print(f"ready {pair.ports[pair.primary]} {pair.ports[pair.standby]}", flush=True)
        for line in sys.stdin:
            command = line.strip()
            if command == "hold":
                print(f"held {pair.hold()}", flush=True)
            elif command == "kill":
                pair.kill()
                print("killed", flush=True)
            elif command == "promote":
                pair.promote()
                print("promoted", flush=True)
            elif command == "lost":
                print(f"lost {pair.lost()}", flush=True)
            else:
                print(f"error: cannot {command!r}", flush=True)
    finally:
        pair.stop()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
