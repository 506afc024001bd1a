"""The password policy for gui-recorder's own accounts (issue 10: there was none).

Length first (the one rule that matters most), then two cheap refusals: the
username itself, and a password from the shipped list of the most common ones
(``common_passwords``), also with digits or symbols tacked on at the end
("password1234!"). Each refusal says what to change.
"""

from __future__ import annotations

import re

from gui_recorder.errors import PasswordPolicyError
from gui_recorder.gateway.common_passwords import COMMON_PASSWORDS

MAX_LENGTH = 1024  # the sign-in form's own bound (auth.Credentials): a longer one could never be typed in
_TAIL = re.compile(r"[\d\W_]+$")


def check_password(password: str, username: str, min_length: int) -> None:
    """Raise ``PasswordPolicyError`` (HTTP 422) naming the rule a new password breaks."""
    if len(password) < min_length:
        raise PasswordPolicyError(f"the password must have at least {min_length} characters; it has {len(password)}")
    if len(password) > MAX_LENGTH:
        raise PasswordPolicyError(f"the password must have at most {MAX_LENGTH} characters")
    lowered, name = password.lower(), username.lower()
    if lowered in (name, name[::-1]):
        raise PasswordPolicyError("the password must not be the username")
    if len(set(lowered)) < 4:
        raise PasswordPolicyError("the password repeats too few characters; use at least 4 different ones")
    base = _TAIL.sub("", lowered)
    if lowered in COMMON_PASSWORDS or (base != lowered and base in COMMON_PASSWORDS):
        raise PasswordPolicyError("the password is one of the most common passwords; choose another "
                                  "(a few unrelated words make a good one)")
