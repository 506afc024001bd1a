"""The one typed settings object, built at start-up and passed in.

Values come from the environment (prefix ``GUI_RECORDER_``) or a ``.env`` file.
Secrets have no default: ``gui-recorder dev`` generates them for the local stack.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GUI_RECORDER_", env_file=".env", extra="ignore")

    # Where local state lives: database, spool, dev stack data.
    var_dir: Path = Path("var")

    # Gateway (HTTP and WebSocket).
    host: str = "127.0.0.1"
    port: int = 8080
    database_url: str | None = Field(None, description="SQLAlchemy URL; SQLite under var_dir when unset")
    secret_key: SecretStr = Field(description="Encrypts target credentials at rest and signs tokens")
    admin_username: str = "admin"
    admin_password: SecretStr | None = Field(None, description="Seeds the first admin on first run")
    token_ttl_seconds: int = 8 * 3600
    tunnel_token_ttl_seconds: int = 60

    # The edge: sign-in throttling, the password policy, what anonymous clients may reach.
    login_free_failures_per_account: int = Field(
        5, ge=1, description="Failed sign-ins an account name may have before each further one locks it")
    login_free_failures_per_address: int = Field(
        20, ge=1, description="Failed sign-ins one client address may have before each further one locks it")
    login_backoff_base_seconds: float = Field(
        1.0, gt=0, description="First lock after the free failures; each further failure doubles it")
    login_backoff_max_seconds: float = Field(900.0, gt=0, description="The longest sign-in lock")
    login_failure_window_seconds: float = Field(
        900.0, gt=0, description="Failures are forgotten after this many seconds without a new one")
    password_min_length: int = Field(12, ge=8, le=128, description="Shortest password an account may be given")
    metrics_token: SecretStr | None = Field(
        None, description="Bearer token that /metrics requires (Prometheus `authorization` credentials)")
    metrics_loopback_only: bool = Field(
        True, description="Without metrics_token: serve /metrics only to loopback clients (false: to anyone)")
    api_docs: bool = Field(True, description="Serve /docs (Swagger UI from web/vendor) and /openapi.json")
    trusted_proxies: str = Field(
        "", description="Comma-separated addresses or networks of reverse proxies whose X-Forwarded-For/-Proto "
                        "are believed (client address in audit, Secure cookies behind TLS); empty: none")
    audit_view_window_seconds: float = Field(
        300.0, ge=0,
        description="Repeated reads of one session's media by one viewer within this many seconds "
                    "(a video's Range requests, thumbnails on hover) are one audit event, not one per "
                    "request; 0 records every request")

    # guacd.
    guacd_host: str = "127.0.0.1"
    guacd_port: int = 4822
    guacd_timeout_seconds: float = 15.0

    # Object storage: a hot and a cold bucket, each on its own endpoint if need be.
    s3_endpoint: str = "127.0.0.1:9000"
    s3_access_key: str = "gui-recorder"
    s3_secret_key: SecretStr = Field(description="Secret key of the hot-tier object store")
    s3_secure: bool = False
    hot_bucket: str = "recordings-hot"
    cold_endpoint: str | None = None
    cold_access_key: str | None = None
    cold_secret_key: SecretStr | None = None
    cold_bucket: str = "recordings-cold"
    hot_days: int = 30
    retention_days: int = 365
    # Capacity of each tier, for the dashboard's "full in N days" (0: unknown).
    hot_capacity_bytes: int = 0
    cold_capacity_bytes: int = 0
    tiering_interval_seconds: float = 3600.0

    # Background worker: a job whose lease lapses (its worker died) is taken again.
    worker_lease_seconds: float = 60.0
    live_text_interval_seconds: float = 5.0

    # Recording: segments are fsync'd to the spool, then uploaded.
    segment_max_bytes: int = 1 << 20
    segment_max_seconds: float = 10.0
    spool_dir: Path | None = None

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.var_dir / 'gui-recorder.db').resolve()}"

    @property
    def resolved_spool_dir(self) -> Path:
        return self.spool_dir or self.var_dir / "spool"
