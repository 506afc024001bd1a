"""Directory sign-in (LDAP / Active Directory, issue 12): bind as the user, their groups give the role.

The password is judged by the directory alone: a bind as the user's DN (found by a service
account's search, or made from ``ldap_user_dn_template``). Then the user's groups are read
(``memberOf`` on the entry, and a search under ``ldap_group_base`` if set) and matched, in the
order of ``ldap_group_roles``, by cn or full DN. A user in no mapped group cannot sign in, and
their sign-ins in force end: removing someone from the group takes effect at their next try.

ldap3's errors are translated here: a refused bind is ``AuthError`` (a failed sign-in, charged by
the throttle), a directory that cannot be reached or searched is ``IdentityProviderError``.
"""

from __future__ import annotations

import logging
import math
import ssl
from dataclasses import dataclass

from ldap3 import BASE, SUBTREE, Connection, Server, Tls
from ldap3.core.exceptions import LDAPException
from ldap3.utils.conv import escape_filter_chars
from ldap3.utils.dn import escape_rdn, parse_dn

from gui_recorder.db import Database, User
from gui_recorder.errors import AuthError, ForbiddenError, IdentityProviderError
from gui_recorder.gateway import external_users
from gui_recorder.settings import Settings

log = logging.getLogger(__name__)
INVALID_CREDENTIALS = 49


@dataclass(frozen=True)
class DirectoryUser:
    username: str
    dn: str
    groups: list[str]  # full DNs, as the directory gave them


def enabled(settings: Settings) -> bool:
    return settings.ldap_url is not None


def _server(settings: Settings) -> Server:
    tls = Tls(validate=ssl.CERT_REQUIRED, version=ssl.PROTOCOL_TLS_CLIENT,
              ca_certs_file=str(settings.ldap_ca_file) if settings.ldap_ca_file else None)
    return Server(settings.ldap_url, use_ssl=settings.ldap_url.startswith("ldaps://"), tls=tls,
                  connect_timeout=settings.ldap_timeout_seconds, get_info="NO_INFO")


def _connect(settings: Settings, dn: str, password: str) -> Connection:
    """A connection bound as ``dn``; ``AuthError`` when the directory refuses the password."""
    # Whole seconds: ldap3 packs the receive timeout into SO_RCVTIMEO as an integer.
    conn = Connection(_server(settings), user=dn, password=password, raise_exceptions=False,
                      receive_timeout=math.ceil(settings.ldap_timeout_seconds), read_only=True)
    try:
        if not conn.open(read_server_info=False) and conn.closed:
            raise IdentityProviderError(f"the directory at {settings.ldap_url} cannot be reached: {conn.result}")
        if settings.ldap_start_tls and not settings.ldap_url.startswith("ldaps://") and not conn.start_tls():
            raise IdentityProviderError(f"the directory refused StartTLS: {conn.result}")
        if conn.bind():
            return conn
        result = conn.result or {}
    except LDAPException as exc:
        _close(conn)
        raise IdentityProviderError(f"the directory at {settings.ldap_url} failed: {exc}") from exc
    except IdentityProviderError:
        _close(conn)
        raise
    _close(conn)
    if result.get("result") == INVALID_CREDENTIALS:
        raise AuthError("incorrect username or password")
    raise IdentityProviderError(f"the directory refused the bind of {dn!r}: {result.get('description')} "
                                f"{result.get('message') or ''}".strip())


def _close(conn: Connection) -> None:
    try:
        conn.unbind()
    except LDAPException:
        pass  # a failed StartTLS has broken the connection already
    # ldap3 leaves the plain socket open when the TLS handshake of StartTLS fails.
    sock = getattr(conn, "socket", None)
    if sock is not None:
        sock.close()


def _search(conn: Connection, base: str, flt: str, scope, attributes: list[str]) -> list:
    try:
        conn.search(base, flt, search_scope=scope, attributes=attributes, size_limit=500)
    except LDAPException as exc:
        raise IdentityProviderError(f"the directory search under {base!r} failed: {exc}") from exc
    return [e for e in conn.response or () if e.get("type") == "searchResEntry"]


def _user_dn(settings: Settings, username: str) -> str:
    if settings.ldap_bind_dn:
        if settings.ldap_bind_password is None:
            raise IdentityProviderError("ldap_bind_dn is set without ldap_bind_password")
        service = _connect(settings, settings.ldap_bind_dn, settings.ldap_bind_password.get_secret_value())
        try:
            flt = settings.ldap_user_filter.format(username=escape_filter_chars(username))
            found = _search(service, settings.ldap_user_base, flt, SUBTREE, [])
        finally:
            _close(service)
        if len(found) != 1:
            # None, or ambiguous: either way no one signs in, and the answer says nothing about which.
            if len(found) > 1:
                log.warning("directory: %d entries match %r; refusing the sign-in", len(found), flt)
            raise AuthError("incorrect username or password")
        return found[0]["dn"]
    if not settings.ldap_user_dn_template:
        raise IdentityProviderError("ldap_url is set but neither ldap_bind_dn nor ldap_user_dn_template")
    return settings.ldap_user_dn_template.format(username=escape_rdn(username))


def authenticate(settings: Settings, username: str, password: str) -> DirectoryUser:
    """Bind as the user; their name as the directory spells it and their groups."""
    if not password:
        raise AuthError("incorrect username or password")  # an empty password is an anonymous bind
    dn = _user_dn(settings, username)
    conn = _connect(settings, dn, password)
    try:
        attr = settings.ldap_username_attribute
        entries = _search(conn, dn, "(objectClass=*)", BASE, [attr, "memberOf"])
        entry = entries[0]["attributes"] if entries else {}
        groups = list(entry.get("memberOf") or ())
        if settings.ldap_group_base:
            flt = settings.ldap_group_filter.format(user_dn=escape_filter_chars(dn))
            groups += [e["dn"] for e in _search(conn, settings.ldap_group_base, flt, SUBTREE, [])]
    finally:
        _close(conn)
    name = entry.get(attr)
    name = (name[0] if isinstance(name, list) and name else name) or username
    return DirectoryUser(username=str(name), dn=dn, groups=sorted(set(groups), key=str.lower))


def _cn(dn: str) -> str | None:
    try:
        rdn = parse_dn(dn)
    except LDAPException:
        return None
    return rdn[0][1] if rdn and rdn[0][0].lower() == "cn" else None


def role_for(group_roles: dict[str, str], groups: list[str]) -> str | None:
    """The role of the first mapped group the user is in (matched by full DN or by cn, any case)."""
    names = {g.lower() for g in groups} | {cn.lower() for cn in map(_cn, groups) if cn}
    return next((role for group, role in group_roles.items() if group.lower() in names), None)


def sign_in(db: Database, settings: Settings, username: str, password: str) -> User:
    found = authenticate(settings, username, password)
    role = role_for(settings.ldap_group_roles, found.groups)
    if role is None:
        existing = external_users.find(db, found.username)
        if existing is not None and existing.source == external_users.LDAP:
            external_users.end_sign_ins(db, existing.id)
        raise ForbiddenError(f"the directory account {found.username!r} is in no group that has access "
                             "here; ask an administrator to add you to one")
    return external_users.provision_external_user(db, found.username, source=external_users.LDAP, role=role,
                                                  groups=found.groups)
