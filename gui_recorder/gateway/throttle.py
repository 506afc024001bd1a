"""Sign-in throttling: per account and per address, exponential back-off.

Issue 10: 40 wrong passwords were all answered 401 and the 41st, right, 200;
and every try cost an argon2 hash, a cheap way to burn the gateway's CPU. Now
each key (the account name as typed, and the client address) may fail a few
times freely; after that every further failure locks the key for
``base * 2**(n - free)`` seconds, up to ``max``. A locked key is answered 429
with ``Retry-After`` before any password is checked: no argon2, no database.

Attempts in flight count too once a key has failed: while a key has failures,
no more tries are let in at once than it has free failures left, so a burst of
parallel guesses cannot slip past the count. A key with no failure is not
limited (many sign-ins of one account at once are legitimate). A success clears its account's failures, never its
address's: a valid account of the attacker's own must not reset the count for
guesses at others from the same address. Failures are forgotten after
``window`` seconds without one.

State is in this process's memory (one gateway); it is bounded (the oldest
keys are dropped first) so that a flood of made-up names cannot grow it.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from gui_recorder.errors import ThrottledError

MAX_KEYS = 100_000
log = logging.getLogger(__name__)


@dataclass
class _Entry:
    failures: int = 0
    in_flight: int = 0
    last_failure: float = 0.0
    locked_until: float = 0.0


@dataclass(frozen=True)
class Rule:
    free: int  # failures allowed before the back-off starts
    base: float  # seconds of the first lock
    max: float  # the longest lock
    window: float  # failures older than this (since the last one) are forgotten

    def lock_for(self, failures: int) -> float:
        over = failures - self.free
        if over <= 0:
            return 0.0
        return min(self.max, self.base * 2 ** min(over - 1, 62))


class _Keyed:
    def __init__(self, rule: Rule, what: str):
        self.rule, self.what = rule, what
        self.entries: OrderedDict[str, _Entry] = OrderedDict()

    def get(self, key: str, now: float) -> _Entry | None:
        entry = self.entries.get(key)
        if entry is not None and entry.failures and now - entry.last_failure > self.rule.window \
                and now >= entry.locked_until:
            entry.failures, entry.locked_until = 0, 0.0
        if entry is not None and not entry.failures and not entry.in_flight:
            del self.entries[key]
            return None
        return entry

    def wait(self, key: str, now: float) -> float:
        """Seconds this key must wait before a new try; 0 when it may go."""
        entry = self.get(key, now)
        if entry is None:
            return 0.0
        if entry.locked_until > now:
            return entry.locked_until - now
        # Tries already in flight use up the free failures left (one at a time past them).
        if entry.failures and entry.in_flight >= max(1, self.rule.free - entry.failures):
            return 1.0
        return 0.0

    def enter(self, key: str, now: float) -> None:
        entry = self.get(key, now) or _Entry()
        entry.in_flight += 1
        self.entries[key] = entry
        self.entries.move_to_end(key)
        while len(self.entries) > MAX_KEYS:
            self.entries.popitem(last=False)

    def leave(self, key: str) -> _Entry | None:
        entry = self.entries.get(key)
        if entry is not None:
            entry.in_flight = max(0, entry.in_flight - 1)
        return entry

    def charge(self, key: str, now: float) -> None:
        entry = self.leave(key) or _Entry()
        entry.failures += 1
        entry.last_failure = now
        lock = self.rule.lock_for(entry.failures)
        if lock:
            log.warning("sign-in: %s %r locked for %.0f s after %d failures", self.what, key, lock, entry.failures)
        entry.locked_until = max(entry.locked_until, now + lock)
        self.entries[key] = entry
        self.entries.move_to_end(key)
        while len(self.entries) > MAX_KEYS:
            self.entries.popitem(last=False)

    def clear(self, key: str) -> None:
        entry = self.leave(key)
        if entry is not None:
            entry.failures, entry.locked_until = 0, 0.0
            if not entry.in_flight:
                del self.entries[key]


class LoginThrottle:
    """``begin`` before checking a password, then ``failed`` or ``succeeded``."""

    def __init__(self, account: Rule, address: Rule, clock: Callable[[], float] = time.monotonic):
        self._accounts, self._addresses = _Keyed(account, "account"), _Keyed(address, "address")
        self._clock = clock
        self._lock = threading.Lock()

    def begin(self, username: str, address: str | None) -> None:
        """Let one try in, or raise ``ThrottledError`` when the account or the address must wait."""
        account, now = username.casefold(), self._clock()
        with self._lock:
            wait = max(self._accounts.wait(account, now), self._addresses.wait(address, now) if address else 0.0)
            if wait > 0:
                wait = max(1, math.ceil(wait))
                raise ThrottledError(f"too many failed sign-ins for this account or from this address; "
                                     f"try again in {wait} s", retry_after=wait)
            self._accounts.enter(account, now)
            if address:
                self._addresses.enter(address, now)

    def failed(self, username: str, address: str | None) -> None:
        now = self._clock()
        with self._lock:
            self._accounts.charge(username.casefold(), now)
            if address:
                self._addresses.charge(address, now)

    def succeeded(self, username: str, address: str | None) -> None:
        with self._lock:
            self._accounts.clear(username.casefold())
            if address:
                self._addresses.leave(address)  # the address keeps its failures (see above)

    def abandoned(self, username: str, address: str | None) -> None:
        """The try ended without a verdict on the credential (the directory was down, a second factor
        is still to come): it leaves, charged nothing and clearing nothing."""
        with self._lock:
            self._accounts.leave(username.casefold())
            if address:
                self._addresses.leave(address)

    def failures(self, username: str) -> int:
        """Failures counted against an account now (for tests and the audit detail)."""
        with self._lock:
            entry = self._accounts.get(username.casefold(), self._clock())
            return entry.failures if entry else 0


def from_settings(settings, clock: Callable[[], float] = time.monotonic) -> LoginThrottle:
    return LoginThrottle(
        Rule(settings.login_free_failures_per_account, settings.login_backoff_base_seconds,
             settings.login_backoff_max_seconds, settings.login_failure_window_seconds),
        Rule(settings.login_free_failures_per_address, settings.login_backoff_base_seconds,
             settings.login_backoff_max_seconds, settings.login_failure_window_seconds),
        clock)
