"""The gateway's database (SQLAlchemy): SQLite under var/ by default, PostgreSQL when configured."""

from gui_recorder.db.database import Database, utc_now
from gui_recorder.db.models import (ROLES, AuditEvent, AuthToken, Connection, Grant, Group, GroupMember,
                                    RecoveryCode, Session, TotpSecret, TunnelToken, User)

__all__ = ["ROLES", "AuditEvent", "AuthToken", "Connection", "Database", "Grant", "Group", "GroupMember",
           "RecoveryCode", "Session", "TotpSecret", "TunnelToken", "User", "utc_now"]
