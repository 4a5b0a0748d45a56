"""The README's recipe ("Fulfil every paid order exactly once") run as an order service runs it,
for tests/e2e/test_recipe.py: the code is the README's own python block, as written. `fulfil`
records the order in the test's table and, when RECIPE_STOP_AT says so, stops right after that
many fulfilments, before the transaction commits, saying so on stdout, for the test to kill the
process there with SIGKILL.

    RECIPE_TARGET, RECIPE_TOKEN, RECIPE_CA   the service, the caller's token, the CA's PEM file
    RECIPE_DATABASE_URL                      the order service's own database
"""

from __future__ import annotations

import asyncio
import os
import re
from pathlib import Path
from typing import Any

import asyncpg
from checkout_client import CheckoutClient

README = Path(__file__).resolve().parents[2] / "README.md"
HEADING = "**Fulfil every paid order exactly once.**"


def recipe() -> dict[str, Any]:
    """What the README's recipe defines (`follow`), its python block run as a module is."""
    section = README.read_text().split(HEADING, 1)[1]
    found = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert found is not None, f"no python block after {HEADING} in the README"
    namespace: dict[str, Any] = {"__name__": "recipe"}
    exec(compile(found.group(1), str(README), "exec"), namespace)
    return namespace


async def main() -> None:
    namespace = recipe()
    stop_at = int(os.environ.get("RECIPE_STOP_AT", "0"))
    fulfilled = 0

    async def fulfil(db: asyncpg.Connection, order_id: str) -> None:
        nonlocal fulfilled
        await db.execute("INSERT INTO fulfilments (order_id) VALUES ($1)", order_id)
        fulfilled += 1
        if fulfilled == stop_at:
            print(f"fulfilled {order_id}, not committed", flush=True)
            await asyncio.Event().wait()  # until the test kills the process

    namespace["fulfil"] = fulfil
    ca = await asyncio.to_thread(Path(os.environ["RECIPE_CA"]).read_bytes)
    db = await asyncpg.connect(os.environ["RECIPE_DATABASE_URL"])
    client = CheckoutClient.connect(
        os.environ["RECIPE_TARGET"], token=os.environ["RECIPE_TOKEN"], ca=ca
    )
    print("following", flush=True)
    await namespace["follow"](client, db)


if __name__ == "__main__":
    asyncio.run(main())
