"""Settings from ``BAYLINK_*`` environment variables (and a ``.env`` file if present).

Defaults are for development on one machine: the embedded SQLite database under ``var/``
and Celery tasks run eagerly in-process. In production set ``BAYLINK_ENVIRONMENT=production``
with a PostgreSQL URL and a broker; the settings then refuse the development defaults.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

if TYPE_CHECKING:
    from fhir_exchange.crypto import IdentifierVault

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
    # Keys for identity document numbers at rest (fhir_exchange/crypto.py): AES-256-GCM keys as
    # "kid:base64url,…", the id of the current one, and the HMAC key of the blind index.
    # Required in production; in development made on first use in ``identifier_keys_file``.
    identifier_keys: SecretStr | None = None
    identifier_key_id: str = ""
    blind_index_key: SecretStr | None = None
    identifier_keys_file: Path = Path("var") / "identifier-keys.json"
    # The release gate BayLink serves with: "consent" (always, in production), or "allow-all"
    # for measuring the gate's own cost (make bench) and nothing else.
    release_gate: Literal["consent", "allow-all"] = "consent"
    # What happens where no consent of the patient applies: IHE PCF "deny" (default) or "permit".
    consent_implicit_policy: Literal["deny", "permit"] = "deny"
    # The consent page's cookies carry the Secure flag (browsers keep Secure cookies on
    # http://127.0.0.1 and localhost too, so development needs no exception).
    consent_cookie_secure: bool = True
    # How long a receiving institution has to accept a referral, by priority (referral/sla.py):
    # JSON such as {"routine": "5wd", "urgent": "24h"}; empty for the defaults.
    referral_sla: str = ""
    # The purposes of use a client may declare (v3 ActReason; issue 3 names these four).
    purposes_of_use: str = "TREAT ETREAT HPAYMT HOPERAT"
    # The server process's cyclic garbage collector (baylink/process.py): the first generation's
    # threshold, with what start-up made frozen; 0 keeps CPython's default policy (700).
    gc_threshold: Annotated[int, Field(ge=0)] = 7000

    @model_validator(mode="after")
    def _refuse_development_defaults_in_production(self) -> Settings:
        if self.environment == "production":
            if self.database_url.startswith("sqlite"):
                raise ValueError("BAYLINK_DATABASE_URL must name a PostgreSQL database in production")
            if self.celery_eager:
                raise ValueError("BAYLINK_CELERY_EAGER must be false in production (use the worker)")
            if self.release_gate != "consent":
                raise ValueError("BAYLINK_RELEASE_GATE must be 'consent' in production")
            if self.token_signing_key is None:
                raise ValueError("BAYLINK_TOKEN_SIGNING_KEY (an ES256 private key, PEM) must be set in production")
            if self.identifier_keys is None or self.blind_index_key is None or not self.identifier_key_id:
                raise ValueError("BAYLINK_IDENTIFIER_KEYS, BAYLINK_IDENTIFIER_KEY_ID and BAYLINK_BLIND_INDEX_KEY "
                                 "must be set in production")
        return self


@lru_cache
def get_settings() -> Settings:
    return Settings()


def token_signing_key(settings: Settings) -> bytes:
    if settings.token_signing_key is not None:
        return settings.token_signing_key.get_secret_value().encode()
    from fhir_exchange.auth.tokens import development_key

    return development_key(settings.token_signing_key_file)


def identifier_vault(settings: Settings) -> IdentifierVault:
    """The identifier keys from settings, or in development from a key file made on first use."""
    from fhir_exchange.crypto import IdentifierVault, new_key

    if settings.identifier_keys is not None and settings.blind_index_key is not None:
        return IdentifierVault.from_text(settings.identifier_keys.get_secret_value(), settings.identifier_key_id,
                                         settings.blind_index_key.get_secret_value())
    path = settings.identifier_keys_file
    if not path.exists():
        import json
        import os

        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            json.dump({"keys": f"dev1:{new_key()}", "current": "dev1", "blind_index_key": new_key()}, handle)
    import json

    stored = json.loads(path.read_text())
    return IdentifierVault.from_text(stored["keys"], stored["current"], stored["blind_index_key"])
