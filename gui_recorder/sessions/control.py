"""Sessions across gateways: who relays what, and terminations asked through another gateway.

Several gateways may share one database (behind a load balancer). Each live
session row names its gateway and its guacd; the gateway an auditor reaches may
not be the one relaying the session. Watching needs no help from the owner (the
watcher joins on the owner's guacd); ending a session does, since only the owner
holds its relay: the request is written here and the owner, which polls for its
own, ends the relay and marks the request delivered.
"""

from __future__ import annotations

from sqlalchemy import select, update

from gui_recorder.db import Database, Session
from gui_recorder.db.models import TerminationRequest
from gui_recorder.errors import NotFoundError
from gui_recorder.vocabulary import SessionStatus


def live_row(db: Database, session_id: str) -> Session:
    """The row of a session that is running on some gateway, with where it runs; NotFound otherwise."""
    with db.session() as s:
        row = s.get(Session, session_id)
    if row is None or row.status != SessionStatus.ACTIVE or not row.guacd_connection_id or not row.guacd_address \
            or not row.gateway_id:  # a row from before gateways had names: no owner to ask
        raise NotFoundError(f"session {session_id} is not running")
    return row


def request_termination(db: Database, session_id: str, gateway_id: str, by: str) -> None:
    with db.session() as s:
        s.add(TerminationRequest(session_id=session_id, gateway_id=gateway_id, by=by[:600],
                                 requested_at=db.now()))


def take_terminations(db: Database, gateway_id: str) -> list[tuple[str, str]]:
    """The undelivered requests for ``gateway_id``'s sessions, marked delivered: (session id, by)."""
    with db.session() as s:
        pending = s.scalars(select(TerminationRequest).where(TerminationRequest.gateway_id == gateway_id,
                                                             TerminationRequest.delivered_at.is_(None))).all()
        if not pending:
            return []
        s.execute(update(TerminationRequest).where(TerminationRequest.id.in_([r.id for r in pending]))
                  .values(delivered_at=db.now()))
        return [(r.session_id, r.by) for r in pending]


def still_active(db: Database, session_ids: set[str]) -> set[str]:
    """Which of these sessions are still running (somewhere)."""
    if not session_ids:
        return set()
    with db.session() as s:
        return set(s.scalars(select(Session.id).where(Session.id.in_(session_ids),
                                                      Session.status == SessionStatus.ACTIVE)))



def active_elsewhere(db: Database, username: str, gateway_id: str) -> list[tuple[str, str]]:
    """``username``'s running sessions that other gateways relay: (session id, its gateway)."""
    with db.session() as s:
        return [(sid, gw) for sid, gw in s.execute(
            select(Session.id, Session.gateway_id).where(Session.username == username,
                                                         Session.status == SessionStatus.ACTIVE,
                                                         Session.gateway_id.is_not(None),
                                                         Session.gateway_id != gateway_id))]
