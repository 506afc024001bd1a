"""The sessions domain, below the routes and the worker: rows, evidence bundles, imports, forgetting.

rows.py      create/end/update rows, the uploader's hooks, listing, facts for readers, reviews
evidence.py  the evidence bundle (zip with SHA256SUMS) of one session
imports.py   guacd-native recordings become ended sessions (the row half of recording/importer.py)
forget.py    forget_session(): deleted means forgotten, in every tier and the index

Plain functions over the database, the object stores and the index; the
gateway's routes and the worker's tasks call them, never each other.
"""
