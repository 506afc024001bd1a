"""Secrets are masked in what reviewers read; the original stays in the recording and needs `text.unmask`."""

from __future__ import annotations

import pytest

from gui_recorder.guardrails.masking import luhn_ok, mask, mask_item


@pytest.mark.parametrize("text,expected", [
    ("export AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE", "export AWS_ACCESS_KEY_ID=[masked:aws-key]"),
    ("aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "aws_secret_access_key = [masked:aws-secret]"),
    ("mysql -u root --password=Sup3r.S3cret -h db", "mysql -u root --password=[masked:password] -h db"),
    ("pwd: 'hunter 2' next", "pwd: [masked:password] next"),
    ("card 4111 1111 1111 1111 ok", "card [masked:card] ok"),
    ("order 4111 1111 1111 1112 ok", "order 4111 1111 1111 1112 ok"),  # fails the Luhn check
    ("-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA\n-----END RSA PRIVATE KEY-----\nafter",
     "[masked:private-key]\nafter"),
    ("-----BEGIN OPENSSH PRIVATE KEY----- b3BlbnNzaC1rZXktdjEAAAAA (cut off)", "[masked:private-key]"),
    ("ls -l /etc/passwd", "ls -l /etc/passwd"),
])
def test_detectors_mask_secrets_and_leave_the_rest(text, expected):
    assert mask(text) == expected


def test_luhn_and_masked_items_keep_their_marks_on_the_query():
    assert luhn_ok("4111111111111111") and not luhn_ok("4111111111111112")
    item = {"text": "login --password=Sup3r.S3cret now", "snippet": "<mark>login</mark> --password=Sup3r.S3cret now"}
    out = mask_item(item, ["login"])
    assert out["masked"] and "Sup3r" not in out["snippet"] and "Sup3r" not in out["text"]
    assert out["snippet"].startswith("<mark>login</mark>") and "[masked:password]" in out["snippet"]
    assert mask_item({"text": "nothing here", "snippet": "x"}) == {"text": "nothing here", "snippet": "x"}


async def test_a_typed_key_and_password_are_masked_in_search_timeline_and_export_and_unmask_is_audited(gateway, worker):
    import io
    import json
    import secrets
    import zipfile

    from conftest import wait_for
    from support.sessions import drive_session

    key = "AKIA" + "".join(secrets.choice("ABCDEFGHJKMNPQRSTUVWXYZ23456789") for _ in range(16))
    word = "maskcheck" + "".join(secrets.choice("abcdefghjkmnpqrstuvwxyz") for _ in range(5))
    secret = "Pw" + secrets.token_hex(6)
    typed_password = "Typed" + secrets.token_hex(5)
    session_id = await drive_session(gateway, "demo-vnc", f"echo {word} {key}\necho {word} password={secret}\n"
                                     f"su -c true\n{typed_password}\n", seconds=3)
    with gateway.api("auditor") as auditor:
        def typed():
            results = auditor.get("/api/search", params={"q": word, "source": "typed"}).json().get("results") or []
            mine = [r for r in results if r["session_id"] == session_id]
            return mine if len(mine) == 2 else None

        results = wait_for(typed, 180, 1, "the typed lines in the index")
        shown = json.dumps(results)
        assert key not in shown and secret not in shown, "neither text nor snippet shows a secret"
        assert "[masked:aws-key]" in shown and "password=[masked:password]" in shown
        assert all(r["masked"] for r in results)
        timeline = json.dumps(auditor.get(f"/api/sessions/{session_id}/text").json())
        assert key not in timeline and secret not in timeline and "[masked:aws-key]" in timeline
        assert typed_password not in timeline, "the password typed at su's prompt is masked"
        found = auditor.get("/api/search", params={"q": typed_password}).json()["results"]
        assert [r["text"] for r in found if r["session_id"] == session_id and r["source"] == "typed"] == \
            ["[masked:password]"], "found by its value, shown masked"
        assert typed_password not in json.dumps(found)
        bundle = zipfile.ZipFile(io.BytesIO(auditor.get(f"/api/sessions/{session_id}/export").content))
        exported = bundle.read("text-timeline.json").decode()
        assert key not in exported and secret not in exported and "[masked:password]" in exported
        assert typed_password not in exported
        refused = auditor.get(f"/api/sessions/{session_id}/text", params={"unmask": "true"})
        assert refused.status_code == 403 and "text.unmask" in refused.json()["detail"]
    with gateway.api("admin") as admin:
        original = json.dumps(admin.get(f"/api/sessions/{session_id}/text", params={"unmask": "true"}).json())
        assert key in original and secret in original and typed_password in original, "unmask shows the original"
        events = admin.get("/api/audit", params={"action": "text.unmask", "limit": 5}).json()
        assert any(e["target"] == session_id and e["username"] == "admin" for e in events)


def test_a_typed_line_answering_a_password_prompt_is_masked():
    from gui_recorder.guardrails.masking import mask_timeline, password_entries

    entries = [{"source": "typed", "offset_ms": 1000, "text": "su -c true"},
               {"source": "typed", "offset_ms": 3000, "text": "Tr0ub4dor&3"},
               {"source": "typed", "offset_ms": 9000, "text": "ls -l"},
               {"source": "screen", "offset_ms": 12000, "text": "Enter passphrase for key '/root/.ssh/id_ed25519':"},
               {"source": "typed", "offset_ms": 14000, "text": "correct horse"},
               {"source": "typed", "offset_ms": 20000, "text": "echo done"}]
    assert password_entries(entries) == {3000, 14000}
    shown = [e["text"] for e in mask_timeline(entries)]
    assert shown == ["su -c true", "[masked:password]", "ls -l", entries[3]["text"], "[masked:password]", "echo done"]
