"""Migrate, seed from the environment, serve: ``python -m oidc_provider.serve HOST:PORT``.

OIDC_PROVIDER_USERS is JSON {username: {"password": ..., "email": ..., "groups": [...]}};
OIDC_CLIENT_ID / OIDC_CLIENT_SECRET / OIDC_REDIRECT_URIS (space-separated) register the gateway.
"""

import json
import os
import sys

import django


def seed() -> None:
    from django.contrib.auth.models import Group, User
    from oauth2_provider.models import Application

    for name, spec in json.loads(os.environ["OIDC_PROVIDER_USERS"]).items():
        user = User.objects.create_user(name, spec.get("email", ""), spec["password"])
        for group in spec.get("groups", ()):
            user.groups.add(Group.objects.get_or_create(name=group)[0])
    Application.objects.create(
        name="gui-recorder", client_id=os.environ["OIDC_CLIENT_ID"], client_secret=os.environ["OIDC_CLIENT_SECRET"],
        client_type=Application.CLIENT_CONFIDENTIAL, authorization_grant_type=Application.GRANT_AUTHORIZATION_CODE,
        redirect_uris=os.environ["OIDC_REDIRECT_URIS"], algorithm=Application.RS256_ALGORITHM,
        skip_authorization=True)


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "oidc_provider.settings")
    django.setup()
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)
    seed()
    call_command("runserver", sys.argv[1], use_reloader=False, use_threading=True, skip_checks=True)


if __name__ == "__main__":
    main()
