"""Static checks of the browser client in web/: no browser, no server.

They catch what otherwise shows up only as a blank page: a missing file, a
module import that does not resolve, an element id the script looks up but the
page lacks, a vendored guacamole-common-js that is not Apache's pinned build, or a
Guacamole status code that would reach the user without a human message.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

WEB = Path(__file__).resolve().parent.parent / "web"
VENDOR = WEB / "vendor" / "guacamole-common.js"

# page -> the module that drives it
PAGES = {
    "index.html": "js/index.js",
    "client.html": "js/client.js",
    "sessions.html": "js/sessions.js",
    "admin.html": "js/admin.js",
    "guardrails.html": "js/guardrails.js",
}


class _PageScan(HTMLParser):
    """Collects element ids and the local files a page loads."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.assets: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if a.get("id"):
            self.ids.add(a["id"])
        if tag == "script" and a.get("src"):
            self.assets.append(a["src"])
        if tag == "link" and a.get("rel") == "stylesheet" and a.get("href"):
            self.assets.append(a["href"])


def _scan(page: str) -> _PageScan:
    scan = _PageScan()
    scan.feed((WEB / page).read_text(encoding="utf-8"))
    return scan


def _module_graph(entry: Path) -> set[Path]:
    """Every module reachable from ``entry`` through relative static imports."""
    seen: set[Path] = set()
    todo = [entry]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        assert path.is_file(), f"module {path.relative_to(WEB)} is imported but missing"
        seen.add(path)
        for spec in re.findall(r"""^\s*import\s[^'"]*?from\s+['"](\.[^'"]+)['"]""", path.read_text(), re.M):
            todo.append((path.parent / spec).resolve())
    return seen


@pytest.mark.parametrize("page", sorted(PAGES))
def test_page_assets_exist(page: str) -> None:
    scan = _scan(page)
    assert PAGES[page] in scan.assets, f"{page} does not load {PAGES[page]}"
    for asset in scan.assets:
        assert not asset.startswith(("http:", "https:", "//")), f"{page} loads {asset} from the network (no CDN)"
        assert (WEB / asset).is_file(), f"{page} loads {asset}, which does not exist"


@pytest.mark.parametrize("page", sorted(PAGES))
def test_ids_the_scripts_use_exist_in_the_page(page: str) -> None:
    ids = _scan(page).ids
    used: set[str] = set()
    for module in _module_graph((WEB / PAGES[page]).resolve()):
        text = module.read_text()
        used |= set(re.findall(r"""\$\(\s*'([\w-]+)'\s*\)""", text))
        used |= set(re.findall(r"""getElementById\(\s*'([\w-]+)'\s*\)""", text))
    assert used, f"no element lookups found in {PAGES[page]}: the pattern above is stale"
    assert used <= ids, f"{page} lacks ids {sorted(used - ids)} that its scripts use"


def test_client_page_has_the_contract_tests_rely_on() -> None:
    """Hooks the browser tests and auditors depend on: status, notice, state, guiRecorder."""
    ids = _scan("client.html").ids
    assert {"status-message", "recording-notice", "disconnect", "display"} <= ids
    html = (WEB / "client.html").read_text()
    assert "This session is recorded" in html
    assert 'data-state="connecting"' in html
    client_js = (WEB / "js" / "client.js").read_text()
    assert "window.guiRecorder" in client_js and "dataset.state" in client_js
    # The vendored library must load before the modules that use the global.
    assets = _scan("client.html").assets
    assert assets.index("vendor/guacamole-common.js") < assets.index("js/client.js")


def test_vendored_guacamole_is_apaches_own_build() -> None:
    """Apache's all.js from Maven Central, byte for byte as setup pinned it, not an npm republish."""
    import hashlib

    setup = (WEB.parent / "scripts" / "setup.sh").read_text()
    pinned = re.search(r"^GJS_SHA256=([0-9a-f]{64})$", setup, re.M).group(1)
    assert hashlib.sha256(VENDOR.read_bytes()).hexdigest() == pinned
    text = VENDOR.read_text(encoding="utf-8")
    # A classic script that defines the global (the CommonJS republish needed a `module` shim).
    assert "var Guacamole = Guacamole || {};" in text and "module.exports" not in text
    assert "Guacamole.SessionRecording = function" in text


def test_every_guacamole_error_code_has_a_message() -> None:
    """Each error code guacamole-common-js knows must map to its own sentence."""
    vendor = VENDOR.read_text(encoding="utf-8")
    block = vendor[vendor.index("Guacamole.Status.Code = {"):]
    block = block[: block.index("};")]
    codes = {int(v, 16) for v in re.findall(r'"[A-Z_]+"\s*:\s*0x([0-9A-Fa-f]+)', block)}
    assert 0x0207 in codes and 0x020B in codes, "could not read Guacamole.Status.Code"
    status_js = (WEB / "js" / "status.js").read_text()
    known = {int(v, 16) for v in re.findall(r"^\s*\[0x([0-9A-Fa-f]+),", status_js, re.M)}
    missing = {c for c in codes if c > 0x00FF} - known
    assert not missing, f"no human message for {sorted(hex(c) for c in missing)}"
