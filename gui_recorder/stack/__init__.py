"""The local stack: real guacd, MinIO and demo RDP/VNC targets on loopback.

The same supervisor backs ``gui-recorder dev`` and the pytest session fixtures.
"""

from gui_recorder.stack.supervisor import Stack, StackInfo

__all__ = ["Stack", "StackInfo"]
