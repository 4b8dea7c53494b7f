"""Settings from ``BAYLINK_*`` environment variables (and a ``.env`` file if present).

Defaults are for development on one machine: the embedded SQLite database under ``var/``
and Celery tasks run eagerly in-process. In production set ``BAYLINK_ENVIRONMENT=production``
with a PostgreSQL URL and a broker; the settings then refuse the development defaults.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_SQLITE_PATH = Path("var") / "baylink.db"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BAYLINK_", env_file=".env", extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    database_url: str = f"sqlite:///{DEFAULT_SQLITE_PATH}"
    broker_url: str = "redis://127.0.0.1:6379/0"
    celery_eager: bool = True
    # The public FHIR base URL, used in fullUrl, Location and paging links. Empty: derived
    # from each request (scheme, host and /fhir).
    public_base_url: str = ""
    host: str = "127.0.0.1"
    port: int = 8000
    default_page_size: int = 20
    max_page_size: int = 1000
    # A search keeps the ordered ids of all its matches for stable paging; one that matches
    # more than this is refused with a 400 asking for a narrower search.
    max_search_results: int = 1_000_000
    # The ES256 private key (PEM) that signs access tokens. Required in production; in
    # development a key is made on first use at ``token_signing_key_file`` (never in git).
    token_signing_key: SecretStr | None = None
    token_signing_key_file: Path = Path("var") / "token-signing-key.pem"
    # The purposes of use a client may declare (v3 ActReason; issue 3 names these four).
    purposes_of_use: str = "TREAT ETREAT HPAYMT HOPERAT"

    @model_validator(mode="after")
    def _refuse_development_defaults_in_production(self) -> Settings:
        if self.environment == "production":
            if self.database_url.startswith("sqlite"):
                raise ValueError("BAYLINK_DATABASE_URL must name a PostgreSQL database in production")
            if self.celery_eager:
                raise ValueError("BAYLINK_CELERY_EAGER must be false in production (use the worker)")
            if self.token_signing_key is None:
                raise ValueError("BAYLINK_TOKEN_SIGNING_KEY (an ES256 private key, PEM) must be set in production")
        return self


@lru_cache
def get_settings() -> Settings:
    return Settings()


def token_signing_key(settings: Settings) -> bytes:
    if settings.token_signing_key is not None:
        return settings.token_signing_key.get_secret_value().encode()
    from fhir_exchange.auth.tokens import development_key

    return development_key(settings.token_signing_key_file)
