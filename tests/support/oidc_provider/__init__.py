"""A real OpenID Connect provider for the SSO tests: django-oauth-toolkit with OIDC on, in its own process.

``serve.py`` migrates its SQLite database, creates the test users, their groups and the gateway's
client from the environment the fixture gives it, and serves on the loopback port it is told.
Never imported by the tests themselves (it runs in the provider's process, with Django).
"""
