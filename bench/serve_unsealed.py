"""`gui-recorder serve` with its spool NOT sealed: a measuring variant for bench/gateway.py --unsealed.

The product always seals (issue 13); this entry point exists only so that the benchmark can price
sealing end to end, the same gateway relaying the same load with and without it. Never run it for
real sessions: what it records is plaintext in the spool and in MinIO.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gui_recorder import cli  # noqa: E402
from gui_recorder.recording import service  # noqa: E402

_init = service.RecordingService.__init__


def _unsealed_init(self, *args, **kwargs):
    _init(self, *args, **kwargs)
    self.spool.sealing = None  # the keys stay (readers need a key ring); new spool sessions are plaintext


service.RecordingService.__init__ = _unsealed_init

if __name__ == "__main__":
    sys.exit(cli.main(["serve"]))
