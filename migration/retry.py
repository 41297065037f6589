"""Bounded retries with exponential backoff and full jitter, for throttling and transient errors of
AWS and Vault alike. Bounded in attempts and in total sleep, so a run never hangs on a dead service."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

T = TypeVar("T")


@dataclass
class Counter:
    """How often something happened, counted from many threads."""

    value: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, n: int = 1) -> None:
        with self._lock:
            self.value += n


@dataclass(frozen=True)
class Backoff:
    attempts: int = 8
    base: float = 0.2
    cap: float = 5.0

    def delay(self, attempt: int, rng: Callable[[float, float], float] = random.uniform) -> float:
        """Full jitter: anywhere between 0 and base * 2**attempt, capped."""
        return rng(0.0, min(self.cap, self.base * (2 ** attempt)))

    def max_total_sleep(self) -> float:
        return sum(min(self.cap, self.base * (2 ** a)) for a in range(self.attempts - 1))

    def call(self, fn: Callable[[], T], retryable: Callable[[BaseException], bool],
             retries: Counter | None = None, sleep: Callable[[float], None] = time.sleep) -> T:
        """``fn()``, retried while it raises something ``retryable``; the last error propagates."""
        for attempt in range(self.attempts):
            try:
                return fn()
            except Exception as exc:
                if attempt == self.attempts - 1 or not retryable(exc):
                    raise
                if retries is not None:
                    retries.add()
                sleep(self.delay(attempt))
        raise AssertionError("unreachable")


DEFAULT_BACKOFF = Backoff()
