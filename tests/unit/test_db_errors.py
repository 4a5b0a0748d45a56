"""Database trouble is UNAVAILABLE (retry later), never INTERNAL; classified by SQLSTATE."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from service.domain.errors import Unavailable
from service.store.db_errors import translate_db_errors

TRANSIENT = [
    asyncpg.exceptions.ConnectionFailureError,  # 08006
    asyncpg.exceptions.ClientCannotConnectError,  # 08001
    asyncpg.exceptions.TooManyConnectionsError,  # 53300
    asyncpg.exceptions.OutOfMemoryError,  # 53200
    asyncpg.exceptions.AdminShutdownError,  # 57P01
    asyncpg.exceptions.CrashShutdownError,  # 57P02
    asyncpg.exceptions.CannotConnectNowError,  # 57P03
    asyncpg.exceptions.SerializationError,  # 40001
    asyncpg.exceptions.DeadlockDetectedError,  # 40P01
    asyncpg.exceptions.ReadOnlySQLTransactionError,  # 25006
    asyncpg.exceptions.QueryCanceledError,  # 57014
]


@pytest.mark.parametrize("kind", TRANSIENT, ids=lambda kind: kind.sqlstate)
async def test_a_transient_sqlstate_is_unavailable(kind: type[asyncpg.PostgresError]) -> None:
    with pytest.raises(Unavailable) as caught:
        async with translate_db_errors():
            raise kind("boom")
    assert caught.value.reason == "DATABASE_UNAVAILABLE"
    assert isinstance(caught.value.__cause__, kind)


@pytest.mark.parametrize(
    "kind",
    [
        asyncpg.exceptions.InvalidPasswordError,  # 28P01
        asyncpg.exceptions.InvalidAuthorizationSpecificationError,  # 28000
        asyncpg.exceptions.InvalidCatalogNameError,  # 3D000
    ],
    ids=lambda kind: kind.sqlstate,
)
async def test_a_connection_postgres_refuses_is_unavailable(
    kind: type[asyncpg.PostgresError],
) -> None:
    """Credentials or a database the operator has to put right: the service, and the change
    feed that keeps reconnecting, get on once they are, without a restart."""
    with pytest.raises(Unavailable):
        async with translate_db_errors():
            raise kind("refused")


@pytest.mark.parametrize(
    "failure",
    [
        ConnectionResetError(),
        asyncpg.exceptions.ConnectionDoesNotExistError("closed"),
        asyncpg.exceptions.InternalClientError(
            "cannot switch to state 12; another operation (2) is in progress"
        ),
    ],
    ids=["socket", "asyncpg connection", "connection being terminated"],
)
async def test_a_lost_connection_is_unavailable(failure: Exception) -> None:
    with pytest.raises(Unavailable):
        async with translate_db_errors():
            raise failure


async def test_a_wait_past_its_bound_is_unavailable() -> None:
    with pytest.raises(Unavailable):
        async with translate_db_errors(within=0.01):
            await asyncio.sleep(1)


@pytest.mark.parametrize(
    "kind",
    [asyncpg.exceptions.UniqueViolationError, asyncpg.exceptions.UndefinedColumnError],
    ids=lambda kind: kind.sqlstate,
)
async def test_a_bug_is_not_disguised_as_an_outage(kind: type[asyncpg.PostgresError]) -> None:
    with pytest.raises(kind):
        async with translate_db_errors():
            raise kind("bug")
