"""The gateway's database (SQLAlchemy): SQLite under var/ by default, PostgreSQL when configured."""

from gui_recorder.db.database import Database, utc_now
from gui_recorder.db.models import ROLES, AuditEvent, AuthToken, Connection, Session, TunnelToken, User
from gui_recorder.db.models import RecoveryCode, TotpSecret

__all__ = ["ROLES", "AuditEvent", "AuthToken", "Connection", "Database", "Session", "TunnelToken", "User",
           "utc_now", "RecoveryCode", "TotpSecret"]
