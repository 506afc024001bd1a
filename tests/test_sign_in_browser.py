"""Issue 12's sign-in, done-when, in Chromium through the sign-in page: a directory user (real slapd)
and an SSO user (real django-oauth-toolkit provider, its own login page) each land with the role
their group maps to; an admin enrols the TOTP second factor from the QR code on the page.

Screenshots go to test-artifacts/ (sign-in-*.png) to be looked at.
"""

from __future__ import annotations

import pyotp
import pytest

from support.identity_gateway import identity_settings, serve


@pytest.fixture(scope="module")
def identity_gateway(oidc_provider, directory, tmp_path_factory):
    # The provider has this port's callback registered. Admins need a second factor here (as in the
    # product's default); directory users of other roles and SSO users do not.
    settings = identity_settings(tmp_path_factory.mktemp("identity-browser"), oidc_provider.gateway_port,
                                 directory=directory, provider=oidc_provider, mfa_roles=["admin"])
    with serve(settings) as (url, app):
        yield url


@pytest.fixture
def page(browser):
    context = browser.new_context(bypass_csp=True, viewport={"width": 1100, "height": 800})
    yield context.new_page()
    context.close()


def signed_in_as(page, username: str, role: str) -> None:
    page.wait_for_selector("body[data-view=connections]", timeout=30_000)
    assert page.text_content("#user-name") == username
    assert page.text_content("#user-role") == role


def test_a_directory_user_signs_in_on_the_page_with_the_role_their_group_maps_to(page, identity_gateway, directory,
                                                                                 artifacts):
    page.goto(identity_gateway)
    page.wait_for_selector("body[data-view=login]")
    page.fill("#username", "carol")
    page.fill("#password", directory.passwords["carol"])
    page.click("#login-submit")
    signed_in_as(page, "carol", "auditor")
    # The auditor's link to the recordings shows: the capabilities came with the mapped role.
    assert page.is_visible("#sessions-link")
    page.screenshot(path=str(artifacts / "sign-in-ldap-auditor.png"))


def test_an_sso_user_signs_in_through_the_providers_page_and_lands_with_the_mapped_role(page, identity_gateway,
                                                                                      oidc_provider, artifacts):
    page.goto(identity_gateway)
    page.wait_for_selector("#sso-login", state="visible")
    page.screenshot(path=str(artifacts / "sign-in-page.png"))
    page.click("#sso-login")
    page.wait_for_selector("#provider-submit")  # the provider's own page, on its own site
    assert page.url.startswith("http://localhost:")
    page.fill("#id_username", "sso-anna")
    page.fill("#id_password", oidc_provider.passwords["sso-anna"])
    page.click("#provider-submit")
    signed_in_as(page, "sso-anna", "auditor")
    assert page.url.rstrip("/") == identity_gateway.rstrip("/")
    page.screenshot(path=str(artifacts / "sign-in-sso-auditor.png"))
    page.click("#logout")
    page.wait_for_selector("body[data-view=login]")
    page.reload()
    page.wait_for_selector("body[data-view=login]")  # signed out for good, not just on the page


def test_an_sso_user_in_no_mapped_group_is_told_why_on_the_sign_in_page(page, identity_gateway, oidc_provider):
    page.goto(identity_gateway)
    page.click("#sso-login")
    page.wait_for_selector("#provider-submit")
    page.fill("#id_username", "sso-guest")
    page.fill("#id_password", oidc_provider.passwords["sso-guest"])
    page.click("#provider-submit")
    page.wait_for_selector("body[data-view=login]")
    page.wait_for_selector("#login-error", state="visible")
    assert "no group" in page.text_content("#login-error")
    assert "sso-error" not in page.url  # the page took the reason out of the address bar


def test_a_directory_admin_enrols_the_second_factor_from_the_qr_code(page, identity_gateway, directory, artifacts):
    page.goto(identity_gateway)
    page.wait_for_selector("body[data-view=login]")
    page.fill("#username", "alice")
    page.fill("#password", directory.passwords["alice"])
    page.click("#login-submit")
    page.wait_for_selector("body[data-view=mfa]")
    page.wait_for_function("document.getElementById('mfa-qr').complete && "
                           "document.getElementById('mfa-qr').naturalWidth > 100")
    page.screenshot(path=str(artifacts / "sign-in-mfa-enrol.png"))
    secret = page.text_content("#mfa-secret").replace(" ", "")
    page.fill("#mfa-code", "000000" if pyotp.TOTP(secret).now() != "000000" else "111111")
    page.click("#mfa-submit")
    page.wait_for_selector("#mfa-error", state="visible")
    page.fill("#mfa-code", pyotp.TOTP(secret).now())
    page.click("#mfa-submit")
    page.wait_for_selector("#mfa-recovery", state="visible")
    assert len(page.query_selector_all("#mfa-recovery-codes li")) == 10
    assert not page.is_visible("#mfa-cancel")  # signed in already
    page.screenshot(path=str(artifacts / "sign-in-mfa-recovery-codes.png"))
    page.click("#mfa-continue")
    signed_in_as(page, "alice", "admin")
