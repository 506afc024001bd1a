"""What tests and benchmarks share, written once.

- ``keys``: keysym names, key presses as wire text, what a recording's key presses typed;
- ``clients``: scripted Guacamole clients that echo guacd's ``sync`` (a browser on the
  gateway's tunnel, and a client talking to guacd directly);
- ``sessions``: a whole session through the gateway (``drive_session``), a recording written
  by real guacd (``record_with_guacd``);
- ``pages``: signing in and opening a desktop in the real Chromium (Playwright);
- ``inprocess``: for the gateway app run in the test's process: a clock the test moves,
  bearer tokens for its users.

Benchmarks import ``keys`` and ``clients`` (bench/ puts tests/ on ``sys.path``), so nothing
here imports pytest or conftest.
"""
