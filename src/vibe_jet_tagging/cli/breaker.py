"""When to stop a run: the server fails every request, so asking on would only waste time.

Counts, never clocks: a run stops after a streak of results that all failed on the server's
side, so the decision is the same on a quiet or a busy machine.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: Error kinds that say the server (not the jet, not the answer) failed.
SERVER_KINDS = frozenset({"server", "connection", "timeout", "rate_limit", "bad_request"})


class RunStopped(Exception):
    """The breaker opened: the message says why, in one line."""


@dataclass
class Breaker:
    """Watches result rows and raises :class:`RunStopped` when the server is unusable.

    - ``rejected`` requests in a row answered HTTP 400 before any jet was answered: the
      request itself is wrong for this server (model settings, ``max_tokens`` beyond the
      context...), so every further jet would be rejected too;
    - ``streak`` results in a row failed on the server's side (unreachable, 5xx after the
      retries, time-outs): the server is down or broken.

    ``streak`` should exceed the requests in flight, so one outage burst that the retries
    could not bridge does not stop a run while later requests may succeed.
    """

    streak: int
    rejected: int = 5
    _failed_in_a_row: int = 0
    _rejected_in_a_row: int = 0
    _answered: int = 0

    def observe(self, row: dict[str, Any]) -> None:
        kind = row.get("error_kind")
        if row.get("cached"):
            return
        if kind not in SERVER_KINDS:
            self._failed_in_a_row = self._rejected_in_a_row = 0
            self._answered += 1
            return
        self._failed_in_a_row += 1
        self._rejected_in_a_row = self._rejected_in_a_row + 1 if kind == "bad_request" else 0
        if self._answered == 0 and self._rejected_in_a_row >= self.rejected:
            raise RunStopped(
                f"the server rejected the first {self._rejected_in_a_row} requests as invalid, "
                f"so it would reject every jet: {row.get('error')}"
            )
        if self._failed_in_a_row >= self.streak:
            raise RunStopped(f"{self._failed_in_a_row} jets in a row failed: {row.get('error')}")
