"""The CreateSession requests seen lately, by their bytes, each with its command and its check:
the same request again (a retry, or a caller asking again for its order's session: the most
common create of all) is neither read into a command nor validated and fingerprinted again,
which would be most of that call's work. The create path's one memo; the edge hands the use case
the request's bytes and the way to read them (service/edge/mapping.py)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime

from service.domain.commands import CreateSessionCommand
from service.domain.create_plan import CheckedCreate, check_create

# Enough for the orders that callers are busy with at once.
SEEN_REQUESTS = 1024
# Typical carts are well below this; a larger request is read and checked each time rather
# than held, so that the memory held stays small however large requests are.
_MAX_BYTES = 4096


class SeenRequests:
    def __init__(self, size: int = SEEN_REQUESTS) -> None:
        self._size = size
        self._seen: OrderedDict[bytes, tuple[CreateSessionCommand, CheckedCreate]] = OrderedDict()

    def check(
        self, request: bytes, read: Callable[[bytes], CreateSessionCommand], now: datetime
    ) -> tuple[CreateSessionCommand, CheckedCreate]:
        """The command `read` finds in `request` (bytes that are equal for equal requests),
        and what `check_create` says of it at `now`: InvalidRequest for an invalid one, which
        is not held. A command with an `expire_time` is checked every time: whether it is
        valid depends on when it is asked."""
        seen = self._seen.get(request)
        if seen is None:
            cmd = read(request)
            seen = (cmd, check_create(cmd, now))
            if len(request) <= _MAX_BYTES:
                self._seen[request] = seen
                if len(self._seen) > self._size:
                    self._seen.popitem(last=False)
            return seen
        self._seen.move_to_end(request)
        cmd = seen[0]
        if cmd.expire_time is None:
            return seen
        return cmd, check_create(cmd, now)
