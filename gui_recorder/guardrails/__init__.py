"""Guardrails (issue 14): policies on what is typed and shown, alerts, and what they enforce.

``rules`` (validated, compiled, time-limited matching), ``typed`` (the relay's
check of the line before its Enter is forwarded), ``policies`` (stored rules),
``alerts`` (stored matches), ``notify`` (webhook and syslog).
"""
