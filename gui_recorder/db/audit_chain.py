"""The audit log as a hash chain (issue 13, item 4): each event carries the hash of the one before it.

One place computes the links: a ``before_flush`` hook on every database session
(``install``), so each writer (``gateway.audit.record_event``, the worker's
lifecycle moves, ``sessions.forget``) is chained without knowing it. The gateway
and the worker are separate processes on one database, so the append is
serialised by the database itself: the hook first updates the one row of
``audit_chain_head`` (SQLite's write lock, a PostgreSQL row lock), then reads
the head, links the new events (``seq`` = head + 1, ...) and moves the head, all
in the writer's own transaction. Two writers can therefore never link to the
same predecessor, and a rolled-back transaction leaves no link behind.

``hash = SHA-256(canonical JSON of the event's fields, its seq and prev_hash)``;
``verify`` walks the chain by seq and names the first event that breaks it: a
changed field (its hash), a deleted event (a gap in seq), a reordered pair (a
prev_hash that is not its predecessor's hash), a truncated tail (the head).
Whoever can write the database can also rewrite the whole chain: the events
streamed to the SIEM as they happen (``gui_recorder.siem``, each with its hash)
are the copy out of their reach that a rewritten chain will not match.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import bindparam, event, func, inspect, select, text, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from gui_recorder.db.models import AuditChainHead, AuditEvent

GENESIS = "0" * 64  # prev_hash of the first event
HEAD_ID = 1
_PENDING = "audit_chain_published"  # Session.info key: events flushed in this transaction, for after_commit

Publish = Callable[[dict], None]


def _at(value: datetime) -> str:
    # Microseconds always, in UTC: the form SQLite and PostgreSQL both give back for what was stored.
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def canonical(seq: int, at: datetime, username: str | None, action: str, target: str | None,
              client_addr: str | None, detail: dict | None, prev_hash: str) -> bytes:
    """The bytes an event's hash is taken over (also what a third party recomputes it from)."""
    fields = {"seq": seq, "at": _at(at), "username": username, "action": action, "target": target,
              "client_addr": client_addr, "detail": detail or {}, "prev_hash": prev_hash}
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def event_hash(e: AuditEvent) -> str:
    return hashlib.sha256(canonical(e.seq, e.at, e.username, e.action, e.target, e.client_addr, e.detail,
                                    e.prev_hash)).hexdigest()


def event_record(e: AuditEvent) -> dict:
    """An event as the API, the export and the SIEM sinks carry it: its fields and its two hashes."""
    return {"id": e.id, "seq": e.seq, "at": e.at.isoformat(), "username": e.username, "action": e.action,
            "target": e.target, "client_addr": e.client_addr, "detail": e.detail, "prev_hash": e.prev_hash,
            "hash": e.hash}


_HEAD = AuditChainHead.__table__
# UPDATE ... RETURNING (SQLite >= 3.35, PostgreSQL): takes the write lock / row lock and reads the head.
_LOCK_HEAD = (update(_HEAD).where(_HEAD.c.id == HEAD_ID).values(seq=_HEAD.c.seq)
              .returning(_HEAD.c.seq, _HEAD.c.hash))
_MOVE_HEAD = update(_HEAD).where(_HEAD.c.id == HEAD_ID).values(seq=bindparam("seq"), hash=bindparam("hash"))


def _link(session: Session, flush_context, instances) -> None:
    new = [o for o in session.new if isinstance(o, AuditEvent)]
    if any(isinstance(o, AuditEvent) for o in (*session.dirty, *session.deleted)):
        # The chain would not show who did it, only that something changed: refuse at the source.
        raise ValueError("audit events are append-only: one was changed or deleted in a session")
    if not new:
        return
    new.sort(key=lambda o: inspect(o).insert_order)  # the order they were added in
    # The lock and the head as it stands under that lock, in one statement (see the module docstring).
    # Core, not the ORM's bulk update: this runs for every event, and the ORM's costs tripled an append.
    conn = session.connection()
    head = conn.execute(_LOCK_HEAD).first()
    if head is None:  # a database whose head create_all has not made yet
        conn.execute(AuditChainHead.__table__.insert().values(id=HEAD_ID, seq=0, hash=GENESIS))
        head = conn.execute(_LOCK_HEAD).first()
    seq, prev = head
    for e in new:
        if e.at is None:
            raise ValueError("an audit event needs its time before it is recorded")
        if e.detail is None:
            e.detail = {}
        seq += 1
        e.seq, e.prev_hash = seq, prev
        e.hash = prev = event_hash(e)
    conn.execute(_MOVE_HEAD, {"seq": seq, "hash": prev})
    session.info.setdefault(_PENDING, []).extend(new)


def install(sessions: sessionmaker, publish: Publish | None = None) -> None:
    """Chain every audit event flushed through ``sessions``; hand each to ``publish`` once committed."""
    event.listen(sessions, "before_flush", _link)

    def committed(session: Session) -> None:
        events = session.info.pop(_PENDING, [])
        if publish is not None:
            for e in events:
                publish(event_record(e))

    def rolled_back(session: Session) -> None:
        session.info.pop(_PENDING, None)

    event.listen(sessions, "after_commit", committed)
    event.listen(sessions, "after_soft_rollback", lambda session, previous: rolled_back(session))


def upgrade(engine: Engine) -> None:
    """Columns a database from before the chain lacks, and the head row. Events recorded before the
    chain keep no link: ``verify`` reports them as an unchained prefix."""
    columns = {c["name"] for c in inspect(engine).get_columns(AuditEvent.__tablename__)}
    with engine.begin() as conn:
        for name, kind in (("seq", "BIGINT"), ("prev_hash", "VARCHAR(64)"), ("hash", "VARCHAR(64)")):
            if name not in columns:
                conn.execute(text(f"ALTER TABLE {AuditEvent.__tablename__} ADD COLUMN {name} {kind}"))
        if "seq" not in columns:
            conn.execute(text(f"CREATE UNIQUE INDEX IF NOT EXISTS ux_audit_events_seq "
                              f"ON {AuditEvent.__tablename__} (seq)"))
        if conn.execute(select(AuditChainHead.id).where(AuditChainHead.id == HEAD_ID)).first() is None:
            conn.execute(AuditChainHead.__table__.insert().values(id=HEAD_ID, seq=0, hash=GENESIS))


# -- verification ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class ChainBreak:
    """The first event at which the chain does not hold, and why."""

    event_id: int | None
    seq: int | None
    reason: str

    def __str__(self) -> str:
        where = f"event {self.event_id} (seq {self.seq})" if self.event_id is not None else "the chain's end"
        return f"{where}: {self.reason}"


@dataclass(frozen=True)
class ChainReport:
    events: int  # chained events checked
    unchained: int  # events recorded before the chain existed (a prefix)
    head_seq: int
    head_hash: str
    first_break: ChainBreak | None

    @property
    def ok(self) -> bool:
        return self.first_break is None


def _walk(rows: Iterator[AuditEvent], head: tuple[int, str] | None, first_chained_id: int | None) -> ChainReport:
    checked = unchained = 0
    expected, prev = 1, GENESIS

    def report(brk: ChainBreak | None) -> ChainReport:
        return ChainReport(checked, unchained, head[0] if head else 0, head[1] if head else GENESIS, brk)

    for e in rows:
        if e.seq is None:
            if first_chained_id is not None and e.id > first_chained_id:
                return report(ChainBreak(e.id, None, "an event without a link after the chain began "
                                                     "(inserted outside the application)"))
            unchained += 1
            continue
        if e.seq != expected:
            missing = f"seq {expected}" if e.seq == expected + 1 else f"seq {expected} to {e.seq - 1}"
            return report(ChainBreak(e.id, e.seq, f"the events before it are missing ({missing}: deleted)"
                                     if e.seq > expected else f"seq {e.seq} again where {expected} was due"))
        if e.prev_hash != prev:
            return report(ChainBreak(e.id, e.seq, "its prev_hash is not the hash of the event before it "
                                                  "(reordered, or the earlier event was rewritten)"))
        if event_hash(e) != e.hash:
            return report(ChainBreak(e.id, e.seq, "its fields do not match its hash (changed after it was "
                                                  "recorded)"))
        checked += 1
        expected, prev = e.seq + 1, e.hash
    if head is None:
        return report(None if not checked else ChainBreak(None, None, "the chain head is missing"))
    if head != (expected - 1, prev):
        return report(ChainBreak(None, head[0], f"the head says seq {head[0]} but the chain ends at seq "
                                                f"{expected - 1} (events at its end were deleted, or the "
                                                "head was rewritten)"))
    return report(None)


def verify(sessions: Callable[[], Session]) -> ChainReport:
    """Walk the whole chain, oldest first, in bounded memory; the first break stops the walk."""
    with sessions() as s:
        head = s.execute(select(AuditChainHead.seq, AuditChainHead.hash)
                         .where(AuditChainHead.id == HEAD_ID)).first()
        first_chained = s.scalar(select(func.min(AuditEvent.id)).where(AuditEvent.seq.is_not(None)))
        # Unchained events (seq NULL) first by id, then the chain by seq.
        query = (select(AuditEvent).order_by(AuditEvent.seq.is_not(None), AuditEvent.seq, AuditEvent.id)
                 .execution_options(yield_per=1000))
        rows = s.scalars(query)
        try:
            return _walk(iter(rows), tuple(head) if head else None, first_chained)
        finally:
            rows.close()  # a break stops the walk early: PostgreSQL's server-side cursor is closed now
