"""Text of running sessions, indexed while they run (searchable within seconds).

Every few seconds, for each active session, the worker reads what was
recorded since its last look (sealed segments, in the spool or already in
MinIO, and the segment being written), feeds it to the live text stage, and
replaces the session's documents in the index. The final index job, when the
session ends, replaces them again with the complete pass.

The same pass checks the guardrails' screen rules (issue 14) on each new piece
of screen text: a match is an alert at once; a ``terminate`` is stored for
the gateway carrying the session to enforce (``gateway.guard.enforce_loop``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select

from gui_recorder.db import Session, User
from gui_recorder.errors import (GuiRecorderError, KeyUnavailableError, NotFoundError, ProtocolError, StorageError,
                                 TamperedError)
from gui_recorder.guardrails import alerts as guard_alerts
from gui_recorder.guardrails import notify as guard_notify
from gui_recorder.guardrails.policies import connection_tags, rules_in_force
from gui_recorder.guardrails.policies import stamp as policy_stamp
from gui_recorder.guardrails.rules import RuleSet
from gui_recorder.recording.reader import load_envelope
from gui_recorder.recording.sealed import data_key_records
from gui_recorder.sessions.tamper import mark_tampered
from gui_recorder.text.items import ScreenText
from gui_recorder.protocol import Parser
from gui_recorder.storage.keys import manifest_key
from gui_recorder.render import LiveDisplay
from gui_recorder.text.engine import TesseractEngine
from gui_recorder.text.items import TypedLine
from gui_recorder.text.live import LiveText
from gui_recorder.vocabulary import Tier
from gui_recorder.worker.runner import Context
from gui_recorder.worker.tasks import ocr_languages

log = logging.getLogger(__name__)
LIVE_BATCH_MS = 5000  # OCR what settled at least this often, so screen text is searchable soon


@dataclass
class _Follow:
    live: LiveText
    parser: Parser = field(default_factory=Parser)
    next_index: int = 1  # the first segment not yet wholly read
    part_read: int = 0  # protocol bytes (decrypted, when sealed) already read of segment ``next_index`` while open
    typed: list[TypedLine] = field(default_factory=list)
    printed: list = field(default_factory=list)  # an SSH terminal's lines (text/terminal.py)
    transfers: list = field(default_factory=list)  # clipboard and files (text/transfers.py)
    new_screen: list[ScreenText] = field(default_factory=list)  # since the last rules check
    broken: bool = False
    last_error: str | None = None  # the storage error last logged, so it is logged once
    records: object = None  # a sealed session's RecordSealer (False: not sealed), loaded at the first look

    def found(self) -> tuple[int, int, int, int]:
        """How much text this session has yielded so far, by kind."""
        return len(self.typed), len(self.live.items), len(self.printed), len(self.transfers)


def _forgotten(ctx: Context, session_id: str) -> bool:
    with ctx.db.session() as s:
        row = s.get(Session, session_id)
    return row is None or row.tier == Tier.DELETED


class LiveIndexer:
    def __init__(self, engine=None):
        # An injected engine (tests) reads every session; otherwise each gets its connection's languages.
        self.engine = engine
        self.following: dict[str, _Follow] = {}
        self._rules: tuple[tuple, RuleSet] | None = None  # (policies' stamp, the screen rules in force)

    def __call__(self, ctx: Context) -> None:
        from gui_recorder.index import SearchIndex, SessionMeta

        with ctx.db.session() as s:
            active = {row.id: row for row in s.scalars(select(Session).where(Session.status == "active"))}
        for gone in set(self.following) - set(active):
            del self.following[gone]
        if not active:
            return
        with SearchIndex.from_settings(ctx.settings) as index:
            for session_id, row in active.items():
                follow = self.following.get(session_id)
                if follow is None:
                    engine = self.engine or TesseractEngine(lang=ocr_languages(ctx, row.connection_id))
                    follow = self.following[session_id] = _Follow(
                        LiveText(LiveDisplay(), engine, batch_ms=LIVE_BATCH_MS))
                # The pass runs every second or so; the session's documents are replaced only when it
                # yielded something (a typed line, a screen item, ...): new bytes alone, screen updates
                # that settled into nothing yet, leave the index alone.
                found_before = follow.found()
                try:
                    if follow.broken or not self._read_new(ctx, session_id, follow):
                        continue
                except TamperedError as exc:  # never indexed as if whole (issue 13)
                    follow.broken = True
                    mark_tampered(ctx.db, session_id, exc, "indexing it live")
                    continue
                except KeyUnavailableError as exc:
                    follow.broken = True
                    log.error("live text of session %s cannot decrypt its recording: %s", session_id, exc)
                    continue
                except StorageError as exc:
                    # The store is down or misconfigured: one line per session and cause, not a
                    # traceback every few seconds that hides real errors (issue 10). Retried next look.
                    if str(exc) != follow.last_error:
                        log.warning("live text of session %s waits for the object store: %s", session_id, exc)
                        follow.last_error = str(exc)
                    continue
                follow.last_error = None
                self._check_screen(ctx, row, follow)
                if follow.found() == found_before:
                    continue
                started = datetime.fromtimestamp(row.wall_start / 1000, UTC) if row.wall_start else row.started_at
                meta = SessionMeta(session_id, row.username, row.connection_id, row.protocol, started)
                try:
                    # OCR took a while: a session deleted meanwhile (it ended, then an admin forgot it)
                    # must not get its text back from this pass.
                    if _forgotten(ctx, session_id):
                        continue
                    index.index_session(meta, follow.typed, list(follow.live.items), follow.printed,
                                        follow.transfers)
                except GuiRecorderError as exc:
                    log.warning("live index of session %s failed: %s", session_id, exc)

    def _segments(self, ctx: Context, session_id: str) -> tuple[dict[int, object], tuple[int, Path] | None]:
        """Whole segments (index -> path or object key) and the one being written, if any."""
        whole: dict[int, object] = {}
        try:
            for seg in ctx.reader.get_json(manifest_key(session_id)).get("segments", []):
                whole[seg["index"]] = seg["key"]
        except NotFoundError:
            pass
        spool = ctx.settings.resolved_spool_dir / session_id
        part = None
        if spool.is_dir():
            for path in spool.glob("*.guac"):
                whole.setdefault(int(path.stem), path)
            parts = sorted(spool.glob("*.part"))
            if parts:
                part = (int(parts[-1].stem), parts[-1])
        return whole, part

    def _plain(self, ctx: Context, session_id: str, follow: _Follow, index: int, data: bytes, open_: bool) -> bytes:
        """A segment's protocol text: decrypted when sealed (an open one up to its last whole record)."""
        if follow.records is None:
            from gui_recorder.worker.tasks import _keyring

            try:
                manifest = ctx.reader.get_json(manifest_key(session_id))
            except NotFoundError:
                manifest = None
            envelope = load_envelope(ctx.reader, ctx.settings.resolved_spool_dir, session_id, manifest)
            follow.records = False if envelope is None else data_key_records(_keyring(ctx), envelope)
        if not follow.records:
            return data
        return b"".join(follow.records.open(index, data, allow_torn_tail=open_))

    def _read_new(self, ctx: Context, session_id: str, follow: _Follow) -> bool:
        whole, part = self._segments(ctx, session_id)
        fed = False
        while True:
            source = whole.get(follow.next_index)
            if source is not None:
                try:
                    data = source.read_bytes() if isinstance(source, Path) else ctx.reader.get_bytes(source)
                except (OSError, NotFoundError):
                    return fed  # moved between listing and reading: next time
                data = self._plain(ctx, session_id, follow, follow.next_index, data, False)
                self._feed(follow, data[follow.part_read:])
                follow.next_index += 1
                follow.part_read = 0
                fed = True
                continue
            if part is not None and part[0] == follow.next_index:
                try:
                    data = part[1].read_bytes()
                except OSError:
                    return fed
                data = self._plain(ctx, session_id, follow, part[0], data, True)
                if len(data) > follow.part_read:
                    self._feed(follow, data[follow.part_read:])
                    follow.part_read = len(data)
                    fed = True
            return fed

    def _feed(self, follow: _Follow, data: bytes) -> None:
        try:
            instructions = follow.parser.feed(data)
        except ProtocolError as exc:
            log.warning("live text stops for a session with malformed data: %s", exc)
            follow.broken = True
            return
        for ins in instructions:
            update = follow.live.feed(ins)
            follow.typed.extend(update.typed)
            follow.printed.extend(update.printed)
            follow.transfers.extend(update.transfers)
            follow.new_screen.extend(update.screen)

    def _check_screen(self, ctx: Context, row: Session, follow: _Follow) -> None:
        """The screen rules on the text that appeared since the last look: alerts, and terminations to enforce."""
        items, follow.new_screen = follow.new_screen, []
        if not items:
            return
        timeout_ms = ctx.settings.guardrail_regex_timeout_ms
        try:
            with ctx.db.session() as s:
                user = s.get(User, row.user_id) if row.user_id is not None else None
            stamp = policy_stamp(ctx.db)
            if self._rules is None or self._rules[0] != stamp:  # compiled again only when a policy changed
                self._rules = (stamp, rules_in_force(ctx.db, timeout_ms).reading("screen"))
            rules: RuleSet = self._rules[1].scoped(row.username, user.role if user else "", row.connection_id,
                                                   connection_tags(ctx.db, row.connection_id)).prepare()
            if not rules:
                return
            session = guard_alerts.SessionContext(row.id, row.username, row.connection_id)
            for item in items:
                hits = rules.match(item.text, "screen")
                if hits:
                    stored = guard_alerts.record_hits(ctx.db, session, hits, offset_ms=item.first_ms, enforced=False)
                    for alert in stored:
                        log.warning("session %s: screen rule %r (%s) matched", row.id, alert["rule"], alert["action"])
                        if alert["action"] == "notify":
                            guard_notify.notify(alert, ctx.settings.guardrail_webhook_url,
                                                ctx.settings.guardrail_syslog_address)
        except GuiRecorderError as exc:
            log.warning("screen rules of session %s wait for the database: %s", row.id, exc)
