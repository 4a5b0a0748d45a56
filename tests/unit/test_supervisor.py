"""Background tasks that cannot die silently: a failure is logged by its type (never its
message) and counted, the task restarts with a growing pause, and a task that keeps failing
is down, and the replica not ready, until it runs again."""

from __future__ import annotations

import asyncio
import json

from structlog.testing import capture_logs

from service.edge.supervisor import Supervisor
from service.observability.metrics import Metrics
from tests.support import eventually


def failures(metrics: Metrics, task: str) -> float:
    value = metrics.registry.get_sample_value(
        "checkout_background_task_failures_total", {"task": task}
    )
    return value or 0.0


def up(metrics: Metrics, task: str) -> float | None:
    return metrics.registry.get_sample_value("checkout_background_task_up", {"task": task})


async def test_a_failing_task_is_logged_counted_and_restarted() -> None:
    metrics = Metrics()
    supervisor = Supervisor(metrics, first_backoff=0.01, down_after=10, stable_after=30)
    runs = 0
    settled = asyncio.Event()

    async def flaky() -> None:
        nonlocal runs
        runs += 1
        if runs <= 3:
            raise RuntimeError("token tok-do-not-log-me rejected")
        settled.set()
        await asyncio.Event().wait()

    with capture_logs() as logs:
        task = supervisor.start("flaky", flaky)
        await asyncio.wait_for(settled.wait(), timeout=10)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)

    assert runs == 4
    assert failures(metrics, "flaky") == 3
    failed = [line for line in logs if line["event"] == "background task failed; restarting it"]
    assert [line["failures_in_a_row"] for line in failed] == [1, 2, 3]
    assert all(line["error_type"] == "RuntimeError" for line in failed)
    assert "flaky" in failed[0]["where"]
    # The pause doubles with each failure in a row.
    assert [line["restart_in_seconds"] for line in failed] == [0.01, 0.02, 0.04]
    assert "tok-do-not-log-me" not in json.dumps(logs, default=str)
    assert supervisor.all_up


async def test_a_task_that_keeps_failing_is_down_until_it_runs_again() -> None:
    metrics = Metrics()
    supervisor = Supervisor(metrics, first_backoff=0.01, down_after=2, stable_after=0.3)
    changes: list[bool] = []

    async def told() -> None:
        changes.append(supervisor.all_up)

    supervisor.on_change = told
    broken = True

    async def work() -> None:
        if broken:
            raise OSError("cannot read /etc/secret")
        await asyncio.Event().wait()

    task = supervisor.start("callers_reload", work)

    async def down() -> bool:
        return not supervisor.all_up

    await eventually(down, within_seconds=10)
    assert up(metrics, "callers_reload") == 0
    broken = False

    async def back() -> bool:
        return supervisor.all_up

    await eventually(back, within_seconds=10)
    assert up(metrics, "callers_reload") == 1
    assert changes == [False, True]
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_a_task_that_returns_is_done_and_a_cancelled_one_stops_its_work() -> None:
    supervisor = Supervisor(Metrics(), first_backoff=0.01)
    runs = 0

    async def once() -> None:
        nonlocal runs
        runs += 1

    await asyncio.wait_for(supervisor.start("once", once), timeout=5)
    assert runs == 1

    stopped = asyncio.Event()

    async def forever() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            stopped.set()

    running = supervisor.start("forever", forever)
    await asyncio.sleep(0.05)
    running.cancel()
    await asyncio.gather(running, return_exceptions=True)
    assert stopped.is_set()
