"""The gateway's side of the guardrails: each session's typed check, its alerts, and the enforcer.

A policy saved while sessions run reaches them within a second (``refresh_rules``, from the
enforcer's loop): the running sessions take the new rules and keep the line being typed.

``Guardrails`` is built once at start-up (``Services.guardrails``). For a
session it compiles the rules in force for its user, role and connection
(``session_guard``); the relay asks that guard about each ``key`` and hands
back what matched (``SessionGuard.hits``), which is stored as alerts in a
thread, counted for Prometheus and, for ``notify`` rules, sent to the webhook
and syslog, never on the relay's path. ``enforce_loop`` ends the sessions this
gateway carries that a ``terminate`` rule on screen text (raised by the
worker's live pass) named.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from dataclasses import dataclass, field

from gui_recorder.db import Database
from gui_recorder.errors import GuiRecorderError
from gui_recorder.guardrails import alerts, approvals, kpis, notify, policies
from gui_recorder.guardrails.alerts import SessionContext
from gui_recorder.guardrails.clipboard import ClipboardGuard
from gui_recorder.guardrails.rules import Hit
from gui_recorder.guardrails.typed import KeyVerdict, TypedGuard
from gui_recorder.protocol import Instruction, encode
from gui_recorder.settings import Settings
from gui_recorder.vocabulary import RuleAction, RuleSource

log = logging.getLogger(__name__)
# The tunnel-internal notice opcode the web client shows (web/js/remote.js); other clients ignore it.
NOTICE_OPCODE = "gr-notice"


def notice(text: str) -> str:
    return encode((NOTICE_OPCODE, "guardrail", text))


@dataclass
class SessionGuard:
    """One session's typed check and what it raised; ``pending`` is drained by the relay after each batch."""

    context: SessionContext
    typed: TypedGuard
    clipboard: ClipboardGuard
    pending: list[tuple[list[Hit], bool]] = field(default_factory=list)  # (hits, blocked)

    def key(self, ins: Instruction) -> KeyVerdict:
        verdict = self.typed.key(ins)
        if verdict.hits:
            self.pending.append((verdict.hits, verdict.withheld))
        return verdict

    def pasted(self, ins: Instruction) -> list[Hit]:
        """A forwarded clipboard instruction; the hits when a paste ends (alerts; no block on a clipboard)."""
        hits = self.clipboard.instruction(ins)
        if hits:
            self.pending.append((hits, False))
        return hits


class Guardrails:
    def __init__(self, settings: Settings, db: Database):
        self.settings, self.db = settings, db
        self.counts: Counter[tuple[str, str, str]] = Counter()  # (rule, severity, action) -> alerts
        self.blocked = 0
        self._tasks: set[asyncio.Task] = set()
        self._stamp: tuple | None = None  # the policies' state the running sessions' rules were built from

    def refresh_rules(self, active: dict) -> int:
        """Policies changed since the sessions opened: the running ones take the new rules (the line being
        typed is kept). Runs in a thread; returns how many sessions were given new rules."""
        current = policies.stamp(self.db)
        if current == self._stamp:
            return 0
        self._stamp = current
        timeout_ms = self.settings.guardrail_regex_timeout_ms
        every = policies.rules_in_force(self.db, timeout_ms)
        changed = 0
        for relay in list(active.values()):
            identity = getattr(relay, "identity", None)
            if identity is None:
                continue
            session_id, username, role, connection_id = identity
            rules = every.scoped(username, role, connection_id, policies.connection_tags(self.db, connection_id))
            if relay.guard is None:
                relay.guard = self._guard_for(session_id, username, connection_id, rules)
            else:
                relay.guard.typed.rules = rules.reading(RuleSource.TYPED).prepare()
                relay.guard.clipboard.rules = rules.reading(RuleSource.CLIPBOARD).prepare()
            changed += 1
        return changed

    def _guard_for(self, session_id: str, username: str, connection_id: str, rules) -> SessionGuard | None:
        typed, clipboard = TypedGuard(rules), ClipboardGuard(rules)
        if not typed.rules and not clipboard.rules:
            return None  # nothing to check: the relay keeps its fast path
        return SessionGuard(SessionContext(session_id, username, connection_id), typed, clipboard)

    def session_guard(self, session_id: str, username: str, role: str, connection_id: str,
                      tags: tuple[str, ...] = ()) -> SessionGuard | None:
        if self._stamp is None:
            self._stamp = policies.stamp(self.db)
        rules = policies.rules_for_session(self.db, self.settings.guardrail_regex_timeout_ms, username, role,
                                           connection_id, tags)
        return self._guard_for(session_id, username, connection_id, rules)

    def raise_hits(self, guard: SessionGuard, offset_ms: int | None) -> None:
        """Store and send what the last batch matched, off the relay's path."""
        batches, guard.pending = guard.pending, []
        for hits, blocked in batches:
            for hit in hits:
                self.counts[(hit.rule.name, hit.rule.severity, hit.rule.action)] += 1
            self.blocked += 1 if blocked else 0
            task = asyncio.get_running_loop().create_task(self._store_later(guard.context, hits, offset_ms, blocked))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _store_later(self, ctx: SessionContext, hits: list[Hit], offset_ms: int | None, blocked: bool) -> None:
        await asyncio.to_thread(self._store, ctx, hits, offset_ms, blocked)

    def _store(self, ctx: SessionContext, hits: list[Hit], offset_ms: int | None, blocked: bool) -> None:
        try:
            stored = alerts.record_hits(self.db, ctx, hits, offset_ms=offset_ms, blocked=blocked)
        except GuiRecorderError as exc:
            log.error("session %s: %d alert(s) could not be stored: %s", ctx.session_id, len(hits), exc)
            return
        for alert in stored:
            log.warning("session %s: rule %r (%s, %s) matched %s text", ctx.session_id, alert["rule"],
                        alert["severity"], alert["action"], alert["source"])
            if alert["action"] == RuleAction.NOTIFY:
                notify.notify(alert, self.settings.guardrail_webhook_url, self.settings.guardrail_syslog_address)

    async def drain(self) -> None:
        """Wait for the alerts being stored (tests, shutdown)."""
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def enforce_loop(self, active: dict) -> None:
        """End the sessions carried here that a screen ``terminate`` rule named (the worker raised it)."""
        while True:
            await asyncio.sleep(self.settings.guardrail_enforce_interval_seconds)
            if not active:
                continue
            try:
                await self._enforce(active)
            except Exception:  # noqa: BLE001 - the enforcer must outlive any one failure
                log.exception("guardrail enforcement failed; retried in a moment")

    async def _enforce(self, active: dict) -> None:
        await self._windows(active)
        try:
            await asyncio.to_thread(self.refresh_rules, active)
            pending = await asyncio.to_thread(alerts.pending_terminations, self.db, list(active))
            done = []
            for alert_id, session_id, rule in pending:
                relay = active.get(session_id)
                if relay is not None:
                    relay.terminate_by_policy(rule)
                    done.append(alert_id)
            if done:
                await asyncio.to_thread(alerts.mark_enforced, self.db, done)
        except GuiRecorderError as exc:
            log.warning("guardrail enforcement waits for the database: %s", exc)

    async def _windows(self, active: dict) -> None:
        """Just-in-time access: warn a session before its approved window ends, end it at the end."""
        now = self.db.now()
        for relay in list(active.values()):
            end = getattr(relay, "window_end", None)
            if end is None:
                continue
            if now >= end:
                relay.end_window()
            elif now >= end - approvals.WARN_BEFORE and not relay.window_warned:
                relay.window_warned = True
                minutes = max(1, round((end - now).total_seconds() / 60))
                await relay.send_notice(f"Your approved access window ends in {minutes} minute(s), at "
                                        f"{end:%H:%M} UTC; the session will then be closed.")


class GuardrailCollector:
    """Prometheus: alerts per rule, severity and action (from the table: the worker raises them too),
    and the commands blocked by this gateway since it started."""

    def __init__(self, guardrails: Guardrails):
        self.guardrails = guardrails

    def collect(self):
        from prometheus_client.core import CounterMetricFamily

        family = CounterMetricFamily("gr_guardrail_alerts", "Alerts raised by guardrail rules",
                                     labels=["rule", "severity", "action"])
        try:
            for rule, severity, action, n in kpis.alert_counts(self.guardrails.db):
                family.add_metric([rule, severity, action], n)
        except GuiRecorderError as exc:
            log.warning("guardrail metrics wait for the database: %s", exc)
        yield family
        yield CounterMetricFamily("gr_guardrail_blocked_commands", "Typed lines whose Enter was withheld by a "
                                  "block rule (this gateway)", value=self.guardrails.blocked)
