"""Audit events streamed to the SIEM as they happen (issue 18): syslog RFC 5424 (CEF or JSON) over UDP,
TCP or TLS, a JSON-lines file, Splunk HEC or Elastic over HTTP; per sink a bounded queue, a spool on disk
and retries, so that recording an event never waits for a sink. Imports only the foundations: the
database (rank above) feeds it, for every process."""

from gui_recorder.siem.delivery import SinkHealth
from gui_recorder.siem.stream import AuditStream

__all__ = ["AuditStream", "SinkHealth"]
