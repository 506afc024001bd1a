"""The gateway: the only path from a browser to a target; relays and records."""
