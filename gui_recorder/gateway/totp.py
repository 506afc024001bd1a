"""The TOTP second factor (RFC 6238, issue 12 item 5) for the roles ``mfa_roles`` names.

A right password of such an account gives no sign-in yet: it gives a *ticket* (sealed with a key
derived from the secret key, valid ``mfa_ticket_seconds``) that ``POST /api/auth/mfa`` exchanges,
with a code, for the sign-in. An account not yet enrolled gets, with its ticket, a new secret as
an ``otpauth://`` URI and its QR code (SVG); the secret travels sealed in the ticket and is stored
only once a code from it has been given, at which point the recovery codes are shown, once.

Codes: the current 30 s step and one on either side (clock drift); a step once used is refused
after (``totp_secrets.last_step``: a code overheard is worth nothing). Recovery codes are random,
single-use, stored as keyed SHA-256. Wrong codes are failed sign-ins to the throttle, like wrong
passwords, and the password's success does not clear the account's failures until the code passes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass

import pyotp
import segno
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import delete, select, update

from gui_recorder.db import Database, RecoveryCode, TotpSecret, User
from gui_recorder.errors import AuthError
from gui_recorder.settings import Settings

STEP_SECONDS = 30
DRIFT_STEPS = 1
ENROLL, VERIFY = "enroll", "verify"
# Recovery codes: 10 characters of base32 (50 bits) shown as XXXXX-XXXXX.
_RECOVERY_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"


def _key(secret_key: str, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"gui-recorder", info=purpose).derive(secret_key.encode())


def _fernet(settings: Settings, purpose: bytes) -> Fernet:
    return Fernet(base64.urlsafe_b64encode(_key(settings.secret_key.get_secret_value(), purpose)))


def required(settings: Settings, user: User) -> bool:
    return user.role in settings.mfa_roles


@dataclass(frozen=True)
class Challenge:
    step: str  # ENROLL or VERIFY
    ticket: str
    otpauth_uri: str | None = None  # enrolment only
    qr_svg: str | None = None  # the URI as a QR code, an SVG data: URI (enrolment only)


def enrolled(db: Database, user_id: int) -> bool:
    with db.session() as s:
        return s.get(TotpSecret, user_id) is not None


def challenge(db: Database, settings: Settings, user: User) -> Challenge:
    """What the sign-in answers after a right password of an account that needs a second factor."""
    # Stamped with the database's clock, like every other expiry (tests move it).
    tickets, now = _fernet(settings, b"mfa-ticket"), int(db.now().timestamp())
    if enrolled(db, user.id):
        return Challenge(VERIFY, tickets.encrypt_at_time(json.dumps({"u": user.id}).encode(), now).decode())
    secret = pyotp.random_base32()
    uri = pyotp.TOTP(secret).provisioning_uri(name=user.username, issuer_name=settings.mfa_issuer)
    ticket = tickets.encrypt_at_time(json.dumps({"u": user.id, "s": secret}).encode(), now).decode()
    return Challenge(ENROLL, ticket, uri, segno.make(uri, error="m").svg_data_uri(scale=5, border=2))


@dataclass(frozen=True)
class Ticket:
    user_id: int
    new_secret: str | None  # set while enrolling


def open_ticket(db: Database, settings: Settings, ticket: str) -> Ticket:
    try:
        data = json.loads(_fernet(settings, b"mfa-ticket").decrypt_at_time(
            ticket.encode(), settings.mfa_ticket_seconds, int(db.now().timestamp())))
    except (InvalidToken, ValueError) as exc:
        raise AuthError("the sign-in step has expired or is not valid; sign in again with your password") from exc
    return Ticket(int(data["u"]), data.get("s"))


def _matching_step(secret: str, code: str, now_ts: float) -> int | None:
    totp, step = pyotp.TOTP(secret), int(now_ts // STEP_SECONDS)
    for candidate in range(step - DRIFT_STEPS, step + DRIFT_STEPS + 1):
        if hmac.compare_digest(totp.generate_otp(candidate), code):
            return candidate
    return None


def _normal(code: str) -> str:
    return "".join(code.split()).replace("-", "").upper()


def _recovery_hash(settings: Settings, code: str) -> str:
    return hmac.new(_key(settings.secret_key.get_secret_value(), b"recovery-codes"), _normal(code).encode(),
                    hashlib.sha256).hexdigest()


def _new_recovery_codes(settings: Settings, s, user_id: int) -> list[str]:
    codes = ["".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(10)) for _ in range(settings.mfa_recovery_codes)]
    s.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user_id))
    s.add_all(RecoveryCode(user_id=user_id, code_hash=_recovery_hash(settings, c), used_at=None) for c in codes)
    return [f"{c[:5]}-{c[5:]}" for c in codes]


@dataclass(frozen=True)
class Passed:
    user: User
    recovery_codes: list[str] | None = None  # shown once, at enrolment
    used_recovery_code: bool = False


def verify(db: Database, settings: Settings, ticket: Ticket, code: str) -> Passed:
    """The second factor for a ticket: a TOTP code, or (once enrolled) a recovery code.
    ``AuthError`` when it is wrong, reused or the account is gone."""
    now = db.now()
    with db.session() as s:
        user = s.get(User, ticket.user_id)
        if user is None or user.disabled:
            raise AuthError("the account no longer exists or is disabled")
        digits = "".join(code.split())
        if ticket.new_secret is not None:  # enrolment: the code proves the app holds the secret
            if s.get(TotpSecret, user.id) is not None:
                raise AuthError("this account is enrolled already; sign in again with your password")
            step = _matching_step(ticket.new_secret, digits, now.timestamp()) if digits.isdigit() else None
            if step is None:
                raise AuthError("the code is not right; check the authenticator app's clock and try again")
            s.add(TotpSecret(user_id=user.id, secret=_fernet(settings, b"totp-secrets").encrypt(
                ticket.new_secret.encode()).decode(), enrolled_at=now, last_step=step))
            return Passed(user, _new_recovery_codes(settings, s, user.id))
        row = s.get(TotpSecret, user.id)
        if row is None:
            raise AuthError("this account has no second factor enrolled; sign in again with your password")
        if digits.isdigit() and len(digits) == 6:
            secret = _fernet(settings, b"totp-secrets").decrypt(row.secret.encode()).decode()
            step = _matching_step(secret, digits, now.timestamp())
            # One UPDATE that only moves forward: two racing uses of one code cannot both pass.
            if step is not None and s.execute(update(TotpSecret).where(
                    TotpSecret.user_id == user.id, TotpSecret.last_step < step).values(last_step=step)).rowcount:
                return Passed(user)
            raise AuthError("the code is not right or was used already; wait for the next one")
        claimed = s.execute(update(RecoveryCode).where(
            RecoveryCode.user_id == user.id, RecoveryCode.code_hash == _recovery_hash(settings, code),
            RecoveryCode.used_at.is_(None)).values(used_at=now)).rowcount
        if not claimed:
            raise AuthError("the code is not right or was used already")
        return Passed(user, used_recovery_code=True)


def recovery_codes_left(db: Database, user_id: int) -> int:
    with db.session() as s:
        return len(s.scalars(select(RecoveryCode.id).where(RecoveryCode.user_id == user_id,
                                                           RecoveryCode.used_at.is_(None))).all())


def reset(db: Database, user_id: int) -> bool:
    """Forget the account's second factor and recovery codes (a lost phone): it enrols again at its
    next sign-in. True when there was one."""
    with db.session() as s:
        s.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user_id))
        return bool(s.execute(delete(TotpSecret).where(TotpSecret.user_id == user_id)).rowcount)


def new_recovery_codes(db: Database, settings: Settings, user: User, code: str) -> list[str]:
    """A fresh set of recovery codes (the old ones stop working), for a current TOTP code of the
    account's own: a stolen sign-in cookie alone cannot mint them. ``AuthError`` when it is wrong."""
    now = db.now()
    with db.session() as s:
        row = s.get(TotpSecret, user.id)
        digits = "".join(code.split())
        if row is None:
            raise AuthError("this account has no second factor enrolled")
        secret = _fernet(settings, b"totp-secrets").decrypt(row.secret.encode()).decode()
        step = _matching_step(secret, digits, now.timestamp()) if digits.isdigit() and len(digits) == 6 else None
        if step is None or not s.execute(update(TotpSecret).where(
                TotpSecret.user_id == user.id, TotpSecret.last_step < step).values(last_step=step)).rowcount:
            raise AuthError("the code is not right or was used already; wait for the next one")
        return _new_recovery_codes(settings, s, user.id)
