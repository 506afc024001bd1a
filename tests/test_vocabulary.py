"""One vocabulary: defined once in gui_recorder/vocabulary.py, served to the pages, copied nowhere."""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from gui_recorder.gateway.app import create_app
from gui_recorder.settings import Settings
from gui_recorder.vocabulary import (FINAL_STATUSES, ROLE_CAPABILITIES, Capability, Role, SessionStatus,
                                     capabilities_of, vocabulary)

WEB = Path(__file__).resolve().parent.parent / "web"


async def test_the_pages_get_the_vocabulary_from_the_api(tmp_path):
    app = create_app(Settings(var_dir=tmp_path, secret_key="k" * 32, s3_secret_key="s"))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as client:
        resp = await client.get("/api/vocabulary")
    assert resp.status_code == 200 and resp.json() == vocabulary()
    assert "interrupted" in resp.json()["session_statuses"]


def test_statuses_roles_and_capabilities_are_not_copied_into_the_pages():
    statuses = [s.value for s in SessionStatus if s is not SessionStatus.ACTIVE]
    roles = [r.value for r in Role]
    copies = []
    for path in [*WEB.glob("*.html"), *WEB.glob("js/*.js")]:
        text = path.read_text()
        # A list of two or more status (or role) names in one place is a copy of the vocabulary.
        for words, kind in ((statuses, "statuses"), (roles, "roles")):
            found = {w for w in words if re.search(rf"['\">]{w}['\"<]", text)}
            if len(found) >= 2:
                copies.append(f"{path.name}: {kind} {sorted(found)}")
    assert not copies, copies


def test_every_status_but_active_is_final_and_admins_hold_every_capability():
    assert set(FINAL_STATUSES) == {s.value for s in SessionStatus} - {"active"}
    assert capabilities_of("admin") == frozenset(Capability)
    assert capabilities_of("no-such-role") == frozenset()
    assert set(ROLE_CAPABILITIES) == set(Role)
