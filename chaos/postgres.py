"""The run's Postgres: a pgserver of its own in the run's folder (`pg_keeper.py`, a process that
can stop it and start it again on the same data); or an exported DATABASE_URL, which the run
cannot restart, so there the outage is every replica's connection terminated at once, as a
failover does to them. For the failover run, a primary and its streaming standby
(`PostgresPair`, over `pg_pair.py`).

The replicas connect with an `application_name` of the run's own, so that terminating their
connections on a shared server touches nobody else's.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg

from chaos.processes import REPO

# Starting pgserver the first time runs initdb: seconds on a laptop, more on a busy one.
_KEEPER_ANSWER_SECONDS = 120.0


class _Keeper:
    """A process that keeps Postgres servers (pg_keeper.py, pg_pair.py) and takes one command a
    line on its stdin, answering each with a line that starts with the word expected."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self._process = process

    @classmethod
    async def start(cls, module: str, folder: Path) -> _Keeper:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            module,
            str(folder),
            cwd=REPO,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        return cls(process)

    async def command(self, command: str, expected: str) -> str:
        assert self._process.stdin is not None
        self._process.stdin.write(f"{command}\n".encode())
        await self._process.stdin.drain()
        return await self.answer(expected)

    async def answer(self, expected: str) -> str:
        """What follows `expected` on the keeper's next line."""
        assert self._process.stdout is not None
        raw = await asyncio.wait_for(self._process.stdout.readline(), _KEEPER_ANSWER_SECONDS)
        line = raw.decode().strip()
        if not line.startswith(f"{expected} ") and line != expected:
            raise RuntimeError(f"the Postgres keeper answered {line!r}, not {expected!r}")
        return line.removeprefix(expected).strip()

    async def close(self) -> None:
        """End of input: the keeper stops its servers and exits."""
        assert self._process.stdin is not None
        self._process.stdin.close()
        try:
            await asyncio.wait_for(self._process.wait(), _KEEPER_ANSWER_SECONDS)
        except TimeoutError:
            self._process.kill()
            await self._process.wait()


class Postgres:
    def __init__(
        self,
        application_name: str,
        keeper: _Keeper | None = None,
        data: Path | None = None,
    ) -> None:
        self._keeper = keeper
        self._data = data
        self.application_name = application_name
        self.dsn = ""
        """For the replicas: their connections carry the run's name."""
        self.admin_dsn = ""
        """For the run itself: the audit, and terminating the replicas' connections."""

    def _use(self, dsn: str) -> Postgres:
        self.admin_dsn = dsn
        self.dsn = with_application_name(dsn, self.application_name)
        return self

    @property
    def outage_kind(self) -> str:
        return "Postgres restart" if self._keeper is not None else "Postgres connections killed"

    def describe(self) -> str:
        if self._data is not None:
            return f"pgserver of the run's own under {self._data}"
        return "DATABASE_URL (exported; the outage terminates the replicas' connections)"

    @classmethod
    async def open(cls, folder: Path, application_name: str) -> Postgres:
        if url := os.environ.get("DATABASE_URL"):
            return cls(application_name)._use(url)
        data = folder / "pg"
        keeper = await _Keeper.start("chaos.pg_keeper", data)
        postgres = cls(application_name, keeper, data)
        try:
            return postgres._use(await keeper.answer("ready"))
        except BaseException:
            await postgres.close()
            raise

    async def outage(self, down_seconds: float) -> str:
        """Take the database away from the replicas for a while; what was done, for the
        report."""
        if self._keeper is None:
            # Over and over for the outage's length, so that reconnecting does not help
            # until it is over.
            ended = asyncio.get_running_loop().time() + down_seconds
            terminated = 0
            while asyncio.get_running_loop().time() < ended:
                terminated += await self._terminate_replica_connections()
                await asyncio.sleep(0.2)
            return f"{terminated} replica connections terminated over {down_seconds:g} s"
        await self._keeper.command("stop", "stopped")
        await asyncio.sleep(down_seconds)
        dsn = await self._keeper.command("start", "ready")
        # Same folder, same socket: the replicas reconnect to the address they know.
        assert dsn == self.admin_dsn, (dsn, self.admin_dsn)
        return f"stopped, {down_seconds:g} s down, started on the same data"

    async def close(self) -> None:
        """Stop the run's own server and delete its data (the run dumps what it needs)."""
        keeper, self._keeper = self._keeper, None
        if keeper is not None:
            await keeper.close()
        if self._data is not None:
            shutil.rmtree(self._data, ignore_errors=True)

    async def _terminate_replica_connections(self) -> int:
        conn = await asyncpg.connect(self.admin_dsn, timeout=10)
        try:
            return int(
                await conn.fetchval(
                    """SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
                       WHERE application_name = $1 AND pid <> pg_backend_pid()""",
                    self.application_name,
                )
            )
        finally:
            await conn.close()


class PostgresPair:
    """A primary and its asynchronous standby (pg_pair.py), both listed in the replicas'
    DATABASE_URL with `target_session_attrs=read-write`: a connection goes to whichever of the
    two accepts writes, the primary until the standby is promoted."""

    def __init__(self, application_name: str, keeper: _Keeper) -> None:
        self._keeper: _Keeper | None = keeper
        self.application_name = application_name
        self.dsn = ""
        """For the replicas: both hosts, the run's name."""
        self.admin_dsn = ""
        """For the run itself: both hosts, whichever is the primary."""
        self.ports: tuple[int, int] = (0, 0)

    @classmethod
    async def open(cls, folder: Path, application_name: str) -> PostgresPair:
        keeper = await _Keeper.start("chaos.pg_pair", folder / "pair")
        pair = cls(application_name, keeper)
        try:
            primary, standby = (int(p) for p in (await keeper.answer("ready")).split())
        except BaseException:
            await pair.close()
            raise
        pair.ports = (primary, standby)
        hosts = f"127.0.0.1:{primary},127.0.0.1:{standby}"
        # A password that trust authentication ignores: no log line may show it.
        pair.admin_dsn = (
            f"postgresql://postgres:{PAIR_PASSWORD}@{hosts}/postgres"
            "?target_session_attrs=read-write"
        )
        pair.dsn = with_application_name(pair.admin_dsn, application_name)
        return pair

    def describe(self) -> str:
        return (
            f"a primary (127.0.0.1:{self.ports[0]}) and its asynchronous streaming standby "
            f"(127.0.0.1:{self.ports[1]}), pgserver's binaries"
        )

    async def hold(self) -> str:
        """Stop the standby's WAL receiver: what the primary commits from now on is lost at
        the failover. Where the standby's WAL ends."""
        return await self._command("hold", "held")

    async def kill_primary(self) -> None:
        await self._command("kill", "killed")

    async def promote(self) -> None:
        await self._command("promote", "promoted")

    async def lost_commits(self) -> int:
        """Commits the primary acknowledged that the standby never received."""
        return int(await self._command("lost", "lost"))

    async def close(self) -> None:
        keeper, self._keeper = self._keeper, None
        if keeper is not None:
            await keeper.close()

    async def _command(self, command: str, expected: str) -> str:
        assert self._keeper is not None
        return await self._keeper.command(command, expected)


# Trust authentication lets any password in; the run checks that none reaches a log line.
PAIR_PASSWORD = "chaos-never-logged-0f3a"


def application_name_of(dsn: str) -> str:
    return dict(parse_qsl(urlsplit(dsn).query)).get("application_name", "")


def with_application_name(dsn: str, name: str) -> str:
    """asyncpg passes unknown URL parameters to the server as settings
    (https://magicstack.github.io/asyncpg/current/api/index.html#connection)."""
    parts = urlsplit(dsn)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "application_name"]
    query.append(("application_name", name))
    return urlunsplit(parts._replace(query=urlencode(query)))
