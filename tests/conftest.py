"""Real parts for every test above the unit level: a real Postgres (embedded, or DATABASE_URL)
and the Stripe sandbox as a real process reached over HTTP, one of each for the session (the
service's tests and the sandbox's own share the sandbox). The service on real ports is in
tests/e2e/conftest.py. All share one event loop per session (pyproject)."""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from types import FrameType

import pytest
import pytest_asyncio

from sandbox.launcher import SandboxProcess
from tests.support import FAST_RETRIES, run_sandbox, stop_sandbox


def pytest_configure() -> None:
    # SIGTERM (a cancelled CI job, `timeout`) ends the run as Ctrl-C does, in the controller and
    # in each xdist worker, so that fixtures stop what they started: a Postgres runs in a
    # session of its own and would outlive a process killed outright.
    signal.signal(signal.SIGTERM, _interrupt)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


# The longest files, first: with `--dist loadfile` xdist hands files out in collection order,
# and a long one handed out last ends the run alone (the short soak runs a minute and a half).
_LONGEST_FIRST = ("tests/soak/", "tests/chaos/")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        found = (i for i, p in enumerate(_LONGEST_FIRST) if item.nodeid.startswith(p))
        return next(found, len(_LONGEST_FIRST))

    items.sort(key=rank)


@pytest.fixture(scope="session")
def postgres_root() -> Iterator[Path]:
    """Where the tests' embedded Postgres servers keep their data: not under pytest's temporary
    root, because every pytest that starts on the machine makes that root private to its user
    again (0700), and pgserver, started as root (as CI is), runs Postgres as the user `pgserver`,
    which must reach its data directory for as long as the server runs."""
    root = Path(tempfile.mkdtemp(prefix="checkout-tests-pg-"))
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def postgres_folder(postgres_root: Path) -> Path:
    """A folder of this test's own for a Postgres's data (see `postgres_root`)."""
    return Path(tempfile.mkdtemp(dir=postgres_root))


@pytest.fixture(scope="session")
def pg_dsn(postgres_root: Path) -> Iterator[str]:
    if url := os.environ.get("DATABASE_URL"):
        yield url
        return
    from pgserver.postgres_server import get_server

    server = get_server(postgres_root / "session", cleanup_mode="delete")
    yield str(server.get_uri())
    server.cleanup()


@pytest_asyncio.fixture(scope="session")
async def sandbox_process() -> AsyncIterator[SandboxProcess]:
    """The one Stripe sandbox of the session, for the service's tests and the sandbox's own.
    Started without the demo catalog (the sandbox tests count and name objects; the README test
    seeds it) and with fast webhook retries (the sandbox tests wait on them)."""
    running = await run_sandbox("--port", "0", *FAST_RETRIES)
    yield running
    assert await stop_sandbox(running) == 0


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent
