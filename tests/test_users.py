"""User management's domain rules (gateway/users.py) on a real SQLite database: external provisioning,
disabling, deleting, the last admin, passwords. The API and the live-session ending are in test_users_api.py."""

from __future__ import annotations

import secrets

import pytest
from sqlalchemy import select

from gui_recorder.db import AuditEvent, AuthToken, Database, Session, User
from gui_recorder.errors import (AccountError, AuthError, ConflictError, ForbiddenError, NotFoundError,
                                 PasswordPolicyError)
from gui_recorder.gateway import accounts, connections, tokens, users
from gui_recorder.sessions import rows
from gui_recorder.settings import Settings
from support.inprocess import Clock


@pytest.fixture
def db(tmp_path):
    database = Database(Settings(var_dir=tmp_path, secret_key=secrets.token_urlsafe(32), s3_secret_key="unused"),
                        Clock())
    database.create_all()
    yield database
    database.dispose()


def password() -> str:
    return "pw-" + secrets.token_urlsafe(16)


def test_an_external_user_is_created_then_follows_its_directory_groups(db):
    user = users.provision_external_user(db, "jane.doe@example.org", source="ldap", role="vendor",
                                         groups=["vendors", "acme"])
    assert user.source == "ldap" and user.role == "vendor" and not user.disabled
    assert users.get_user(db, "jane.doe@example.org").groups == ["acme", "vendors"]
    # The next sign-in: removed from a directory group, moved to another role: both follow.
    again = users.provision_external_user(db, "jane.doe@example.org", source="ldap", role="auditor",
                                          groups=["auditors"])
    assert again.id == user.id
    out = users.get_user(db, "jane.doe@example.org")
    assert out.role == "auditor" and out.groups == ["auditors"] and out.source == "ldap"
    with db.session() as s:
        events = [(e.action, e.detail) for e in s.scalars(select(AuditEvent).order_by(AuditEvent.id))]
    assert [a for a, _ in events] == ["user.provision", "user.provision"], "each change the directory made"
    assert events[1][1]["was"] == {"role": "vendor", "groups": ["acme", "vendors"]} and not events[1][1]["created"]
    users.provision_external_user(db, "jane.doe@example.org", source="ldap", role="auditor", groups=["auditors"])
    with db.session() as s:
        assert len(list(s.scalars(select(AuditEvent)))) == 2, "a sign-in that changes nothing adds no event"
    # No password opens an external account.
    with pytest.raises(AuthError):
        accounts.authenticate(db, "jane.doe@example.org", users.NO_PASSWORD)


def test_an_external_sign_in_never_takes_over_a_local_account_nor_re_enables_one(db):
    accounts.ensure_user(db, "admin", password(), "admin")
    with pytest.raises(ForbiddenError, match="local account"):
        users.provision_external_user(db, "admin", source="oidc", role="admin", groups=[])
    sam = users.provision_external_user(db, "sam", source="oidc", role="vendor", groups=["g"])
    with pytest.raises(ForbiddenError, match="oidc account"):
        users.provision_external_user(db, "sam", source="ldap", role="vendor", groups=[])
    users.set_disabled(db, "sam", True)
    with pytest.raises(ForbiddenError, match="disabled"):
        users.provision_external_user(db, "sam", source="oidc", role="admin", groups=[])
    out = users.get_user(db, "sam")
    assert out.disabled and out.role == "vendor" and out.groups == ["g"], "a refused sign-in changes nothing"
    # ...and the one place every method gets its token refuses it too.
    with pytest.raises(AuthError, match="disabled"):
        tokens.issue_login_token(db, sam, 60, None)
    for bad in ({"source": "local"}, {"source": "saml"}):
        with pytest.raises(AccountError):
            users.provision_external_user(db, "x", role="vendor", groups=[], **bad)
    with pytest.raises(AccountError):
        users.provision_external_user(db, "x", source="ldap", role="root", groups=[])


def test_disabling_revokes_sign_ins_at_once_and_enabling_lets_the_user_back(db):
    pw = password()
    accounts.ensure_user(db, "admin", password(), "admin")
    vendor = accounts.ensure_user(db, "vendor", pw, "vendor")
    token = tokens.issue_login_token(db, vendor, 3600, None)
    assert tokens.user_for_token(db, token).username == "vendor"
    out = users.set_disabled(db, "vendor", True)
    assert out.disabled
    with pytest.raises(AuthError):
        tokens.user_for_token(db, token)
    with db.session() as s:
        assert s.scalar(select(AuthToken).where(AuthToken.user_id == vendor.id)) is None
    with pytest.raises(AuthError):
        accounts.authenticate(db, "vendor", pw)
    users.set_disabled(db, "vendor", False)
    signed = accounts.authenticate(db, "vendor", pw)
    tokens.issue_login_token(db, signed, 3600, None)
    assert users.get_user(db, "vendor").last_sign_in_at == db.now()


def test_the_last_enabled_admin_stays(db):
    accounts.ensure_user(db, "admin", password(), "admin")
    for change in (lambda: users.set_disabled(db, "admin", True), lambda: users.delete_user(db, "admin"),
                   lambda: users.set_role(db, "admin", "auditor")):
        with pytest.raises(ConflictError, match="last enabled admin"):
            change()
    users.create_user(db, "second", "admin", password=password())
    users.set_role(db, "admin", "auditor")
    assert users.get_user(db, "admin").role == "auditor"


def test_deleting_a_user_keeps_their_sessions(db, tmp_path):
    settings = db.settings
    accounts.ensure_user(db, "admin", password(), "admin")
    leaver = users.create_user(db, "leaver", "vendor", password=password())
    with db.session() as s:
        row = s.scalar(select(User).where(User.username == leaver.username))
    conn = connections.ensure_connection(db, settings, connections.ConnectionIn(
        id="c1", name="C1", protocol="vnc", host="10.0.0.1", port=5900))
    session = rows.create_session(db, row, conn, None, None)
    users.delete_user(db, "leaver")
    with db.session() as s:
        kept = s.get(Session, session.id)
    assert kept is not None and kept.username == "leaver" and kept.user_id is None
    with pytest.raises(NotFoundError):
        users.get_user(db, "leaver")


def test_create_and_reset_password_pass_the_policy_and_reset_ends_sign_ins(db):
    with pytest.raises(PasswordPolicyError):
        users.create_user(db, "vera", "vendor", password="short")
    with pytest.raises(AccountError, match="needs a password"):
        users.create_user(db, "vera", "vendor")
    with pytest.raises(AccountError):
        users.create_user(db, "bad name!", "vendor", password=password())
    users.create_user(db, "vera", "vendor", password=password())
    with pytest.raises(ConflictError):
        users.create_user(db, "vera", "vendor", password=password())
    ext = users.create_user(db, "ldap-user", "vendor", source="ldap", groups=["g1"])
    assert ext.source == "ldap" and ext.groups == ["g1"]
    with pytest.raises(ConflictError, match="ldap account"):
        users.reset_password(db, "ldap-user", password(), 12)
    new = password()
    with db.session() as s:
        row = s.scalar(select(User).where(User.username == "vera"))
    token = tokens.issue_login_token(db, row, 3600, None)
    users.reset_password(db, "vera", new, 12)
    with pytest.raises(AuthError):
        tokens.user_for_token(db, token)
    assert accounts.authenticate(db, "vera", new).username == "vera"


def test_a_database_from_the_release_before_accounts_opens_with_its_rows(tmp_path):
    """create_all adds this issue's columns to existing tables (users, connections) with their defaults."""
    import sqlite3

    settings = Settings(var_dir=tmp_path, secret_key=secrets.token_urlsafe(32), s3_secret_key="unused")
    path = tmp_path / "gui-recorder.db"
    with sqlite3.connect(path) as old:  # the two tables as the previous release created them
        old.executescript("""
            CREATE TABLE users (id INTEGER PRIMARY KEY, username VARCHAR(64) UNIQUE NOT NULL,
                password_hash VARCHAR(255) NOT NULL, role VARCHAR(16) NOT NULL, disabled BOOLEAN NOT NULL,
                created_at DATETIME NOT NULL);
            INSERT INTO users VALUES (1, 'old-admin', 'x', 'admin', 0, '2026-01-01 00:00:00');
            CREATE TABLE connections (id VARCHAR(64) PRIMARY KEY, name VARCHAR(128) NOT NULL,
                protocol VARCHAR(8) NOT NULL, host VARCHAR(255) NOT NULL, port INTEGER NOT NULL,
                credentials TEXT NOT NULL, parameters JSON NOT NULL, allowed_users JSON NOT NULL,
                allowed_roles JSON NOT NULL, recording_policy JSON NOT NULL, created_at DATETIME NOT NULL,
                updated_at DATETIME NOT NULL);
            INSERT INTO connections VALUES ('old', 'Old', 'vnc', 'h', 5900, 'c', '{}', '[]', '[]', '{}',
                '2026-01-01 00:00:00', '2026-01-01 00:00:00');
        """)
    assert settings.resolved_database_url.endswith(str(path)), settings.resolved_database_url
    db = Database(settings)
    try:
        db.create_all()
        db.create_all()  # and again: nothing left to add
        (old_admin,) = users.list_users(db)
        assert (old_admin.username, old_admin.source, old_admin.scope_tags, old_admin.last_sign_in_at) == (
            "old-admin", "local", [], None)
        assert connections.get_connection(db, "old").tags == []
    finally:
        db.dispose()
