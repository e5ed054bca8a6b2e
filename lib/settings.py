"""Settings: one frozen value built from ``st.secrets`` (any mapping) and the
environment. This is the only module that reads secrets; everything else gets
them as the clients built from a :class:`Settings`.

The mode is decided here. With ``[s3]`` and ``[supabase]`` fully configured the
app runs in ``cloud`` mode; with neither it runs in ``demo`` mode on embedded
backends; with half a configuration it refuses to start and names what is
missing, rather than silently falling back to demo data.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from lib.errors import ConfigError, ValidationError

Mode = Literal["cloud", "demo"]

MIN_PRESIGN_EXPIRY_S = 60
"""Shortest presigned-URL lifetime we hand out: shorter links fail mid-playback."""
MAX_PRESIGN_EXPIRY_S = 86_400
"""Longest presigned-URL lifetime we hand out: a day bounds a leaked link."""
DEFAULT_PRESIGN_EXPIRY_S = 3_600

MIB = 1024 * 1024
GIB = 1024 * MIB
DEFAULT_MAX_UPLOAD_MB = 2_048
"""Matches ``server.maxUploadSize`` in ``.streamlit/config.toml``."""
DEFAULT_QUOTA_GB = 50
DEFAULT_STUDY_QUOTA_BYTES = 500 * GIB
"""A study's default quota (``study_quota_gb``): a lab's members upload into it together."""
DEFAULT_DIRECT_UPLOAD_THRESHOLD_MB = 200
"""Above this the Upload page sends bytes browser-to-S3 (the server holds none)."""
DEFAULT_STALE_PENDING_S = 3_600
DEFAULT_EXPORT_ZIP_MAX_GB = 20
"""Exports larger than this are handed out as a manifest with a fetch script, not one browser download:
a browser that loses a download this big starts over from the first byte."""
DEFAULT_CHECK_CONCURRENCY = 2
"""Checks running at once on the server: one per core of a 2-core lab server (workers run at low priority)."""
DEFAULT_CHECK_CONCURRENCY_PER_USER = 1
"""Checks of one user running at once: on 2 cores, one researcher's folder leaves a core for everyone else."""
DEFAULT_CHECK_WORKER_IDLE_S = 30
"""A check worker with nothing to do for this long exits, and its memory goes back to the system."""
DEFAULT_APP_ORIGINS = ("http://localhost:8501", "http://127.0.0.1:8501")
DEFAULT_SESSION_IDLE_TIMEOUT_S = 12 * 3_600
"""Signed out after this long without using the app: a lab machine left overnight asks again."""
DEFAULT_SESSION_LIFETIME_S = 7 * 86_400
"""Signed out this long after signing in, however active: bounds what a stolen cookie is worth."""
MIN_SESSION_KEY_CHARS = 32
"""A ``session_key`` shorter than this is refused: it guards every stored refresh token."""


@dataclass(frozen=True)
class S3Settings:
    bucket: str
    region: str
    access_key_id: str = field(repr=False)
    secret_access_key: str = field(repr=False)
    endpoint_url: str | None = None
    ca_bundle: str | None = None
    """A PEM file of the CA(s) that signed the endpoint's TLS certificate (a lab's own CA); None: the usual ones."""


@dataclass(frozen=True)
class SupabaseSettings:
    url: str
    anon_key: str = field(repr=False)
    """Public: what a browser session's client (and so the user's JWT) talks to PostgREST with."""
    service_role_key: str = field(repr=False, default="")
    """Secret, like the S3 secret key: the server's own writes of facts and the row lifecycle
    (lib.repository.ServerRecords). Never used for a user's reads, never shown or logged."""


@dataclass(frozen=True)
class Settings:
    mode: Mode
    s3: S3Settings | None = None
    """None in demo mode until the embedded S3 server has started."""
    supabase: SupabaseSettings | None = None
    presign_expiry_s: int = DEFAULT_PRESIGN_EXPIRY_S
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_MB * MIB
    quota_bytes: int = DEFAULT_QUOTA_GB * GIB
    study_quota_bytes: int = DEFAULT_STUDY_QUOTA_BYTES
    """What one study's recordings may hold together (every member's uploads into it)."""
    require_consent: bool = False
    direct_upload_threshold_bytes: int = DEFAULT_DIRECT_UPLOAD_THRESHOLD_MB * MIB
    transfer_concurrency: int | None = None
    """None: the measured default in ``lib.transfer``."""
    transfer_part_size_bytes: int | None = None
    """None: computed from the file size in ``lib.transfer``."""
    transfer_checksums: bool = True
    """Each multipart part carries a CRC32 that S3 verifies; turn off for endpoints that reject checksums."""
    stale_pending_s: int = DEFAULT_STALE_PENDING_S
    app_origins: tuple[str, ...] = DEFAULT_APP_ORIGINS
    session_keys: tuple[str, ...] = field(default=(), repr=False)
    """Secret: encrypts the refresh tokens the server keeps for signed-in browsers (lib.sessions). The
    first encrypts, every one decrypts (rotation). Empty: a key for this process only (demo mode's
    sessions end with the process anyway)."""
    session_idle_timeout_s: int = DEFAULT_SESSION_IDLE_TIMEOUT_S
    session_lifetime_s: int = DEFAULT_SESSION_LIFETIME_S
    check_concurrency: int = DEFAULT_CHECK_CONCURRENCY
    check_concurrency_per_user: int = DEFAULT_CHECK_CONCURRENCY_PER_USER
    check_worker_idle_s: int = DEFAULT_CHECK_WORKER_IDLE_S
    hr_band_hz: tuple[float, float] | None = None
    export_zip_max_bytes: int = DEFAULT_EXPORT_ZIP_MAX_GB * GIB
    """Above this an export is a manifest (CSV of presigned links and a fetch script) instead of a zip."""
    """The quick look's heart-rate band in Hz; None: ``lib.rppg``'s default, 0.75–2.5 Hz (at rest)."""
    ray_address: str | None = None
    """``[ray] address`` (or ``RAY_ADDRESS``): the Ray cluster batch jobs run on; None: a local Ray, started
    when the first job starts."""
    job_cpus: int | None = None
    """``[ray] num_cpus`` (or ``PULSEVAULT_JOB_CPUS``): the local Ray's worker slots; None: every core."""

    @property
    def is_demo(self) -> bool:
        return self.mode == "demo"

    def clamp_expiry(self, seconds: int | float | None) -> int:
        """An expiry within the configured bounds (None means the default)."""
        if seconds is None:
            return self.presign_expiry_s
        return clamp_expiry(seconds)

    def with_s3(self, s3: S3Settings) -> Settings:
        return replace(self, s3=s3)


def clamp_expiry(seconds: int | float | str) -> int:
    """An expiry in seconds within 60 s .. 1 day; anything that is not a number is refused."""
    try:
        value = float(seconds)
    except (TypeError, ValueError):
        value = math.nan
    if math.isnan(value):
        raise ValidationError("A link expiry must be a number of seconds.")
    return int(min(max(value, MIN_PRESIGN_EXPIRY_S), MAX_PRESIGN_EXPIRY_S))


# (section, key) -> environment variable. Required keys decide the mode.
_S3_REQUIRED = {
    "access_key_id": "AWS_ACCESS_KEY_ID",
    "secret_access_key": "AWS_SECRET_ACCESS_KEY",
    "region": "AWS_REGION",
    "bucket": "AWS_S3_BUCKET",
}
_S3_OPTIONAL = {"endpoint_url": "AWS_S3_ENDPOINT_URL", "ca_bundle": "AWS_CA_BUNDLE"}
_SUPABASE_REQUIRED = {"url": "SUPABASE_URL", "anon_key": "SUPABASE_ANON_KEY",
                      "service_role_key": "SUPABASE_SERVICE_ROLE_KEY"}

# [app] key -> (environment variable, parser)
_APP_KEYS: dict[str, tuple[str, Any]] = {
    "presign_expiry_s": ("PULSEVAULT_PRESIGN_EXPIRY_S", int),
    "max_upload_mb": ("PULSEVAULT_MAX_UPLOAD_MB", int),
    "quota_gb": ("PULSEVAULT_QUOTA_GB", float),
    "study_quota_gb": ("PULSEVAULT_STUDY_QUOTA_GB", float),
    "require_consent": ("PULSEVAULT_REQUIRE_CONSENT", str),
    "direct_upload_threshold_mb": ("PULSEVAULT_DIRECT_UPLOAD_THRESHOLD_MB", int),
    "transfer_concurrency": ("PULSEVAULT_TRANSFER_CONCURRENCY", int),
    "transfer_part_size_mb": ("PULSEVAULT_TRANSFER_PART_SIZE_MB", int),
    "transfer_checksums": ("PULSEVAULT_TRANSFER_CHECKSUMS", str),
    "stale_pending_s": ("PULSEVAULT_STALE_PENDING_S", int),
    "app_origins": ("PULSEVAULT_APP_ORIGINS", str),
    "session_key": ("PULSEVAULT_SESSION_KEY", str),
    "session_idle_timeout_s": ("PULSEVAULT_SESSION_IDLE_TIMEOUT_S", int),
    "session_lifetime_s": ("PULSEVAULT_SESSION_LIFETIME_S", int),
    "check_concurrency": ("PULSEVAULT_CHECK_CONCURRENCY", int),
    "check_concurrency_per_user": ("PULSEVAULT_CHECK_CONCURRENCY_PER_USER", int),
    "check_worker_idle_s": ("PULSEVAULT_CHECK_WORKER_IDLE_S", int),
    "hr_band": ("PULSEVAULT_HR_BAND", str),
    "export_zip_max_gb": ("PULSEVAULT_EXPORT_ZIP_MAX_GB", float),
}
_POSITIVE_INTS = ("transfer_concurrency", "stale_pending_s", "check_concurrency", "check_concurrency_per_user",
                  "check_worker_idle_s")
"""[app] keys taken as they are, each a whole number above zero."""


# Settings that no longer exist, with what replaced them: refused rather than silently ignored,
# because an operator who set one expects it to do something.
_REMOVED_APP_KEYS: dict[str, tuple[str, str]] = {
    "admin_emails": (
        "PULSEVAULT_ADMIN_EMAILS",
        "an e-mail address is something anyone can sign up with. Administrators are now a role only the "
        "server can set: in Supabase, app_metadata {\"role\": \"admin\"} on the user (see the README); "
        "in demo mode, the seeded admin account",
    ),
}


def load_settings(
    secrets: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Build :class:`Settings` from a secrets mapping, then the environment.

    A value in ``secrets`` wins over the environment. Raises
    :class:`ConfigError` naming every missing key when the configuration is
    neither complete nor empty.
    """
    secrets = secrets or {}
    environ = os.environ if environ is None else environ
    s3_values = _section(secrets, environ, "s3", {**_S3_REQUIRED, **_S3_OPTIONAL})
    sb_values = _section(secrets, environ, "supabase", _SUPABASE_REQUIRED)
    required = [("s3", k, env) for k, env in _S3_REQUIRED.items()] + [
        ("supabase", k, env) for k, env in _SUPABASE_REQUIRED.items()
    ]
    values = {"s3": s3_values, "supabase": sb_values}
    missing = [(sec, k, env) for sec, k, env in required if not values[sec].get(k)]
    app = {**_app_options(secrets, environ), **_ray_options(secrets, environ)}
    if len(missing) == len(required):
        return Settings(mode="demo", **app)
    if missing:
        names = ", ".join(f"[{sec}] {k} (or {env})" for sec, k, env in missing)
        raise ConfigError(
            "PulseVault is half configured, so it will not start: missing "
            f"{names}. Set them in .streamlit/secrets.toml or the environment, "
            "or remove the [s3] and [supabase] settings to run in demo mode."
        )
    return Settings(
        mode="cloud",
        s3=S3Settings(**{k: s3_values.get(k) for k in (*_S3_REQUIRED, *_S3_OPTIONAL)}),
        supabase=SupabaseSettings(**sb_values),
        **app,
    )


def _section(
    secrets: Mapping[str, Any], environ: Mapping[str, str], name: str, keys: dict[str, str]
) -> dict[str, str]:
    section = secrets.get(name) or {}
    out: dict[str, str] = {}
    for key, env in keys.items():
        value = section.get(key) if key in section else environ.get(env)
        if value not in (None, ""):
            out[key] = str(value).strip()
    return out


def _app_options(secrets: Mapping[str, Any], environ: Mapping[str, str]) -> dict[str, Any]:
    section = secrets.get("app") or {}
    for key, (env, why) in _REMOVED_APP_KEYS.items():
        if section.get(key) not in (None, "") or environ.get(env):
            raise ConfigError(f"Setting [app] {key} (or {env}) was removed: {why}. Remove the setting.")
    raw: dict[str, Any] = {}
    for key, (env, parse) in _APP_KEYS.items():
        value = section[key] if key in section else environ.get(env)
        if value in (None, ""):
            continue
        try:
            raw[key] = value if isinstance(value, (list, tuple, bool)) else parse(value)
        except (TypeError, ValueError):
            raise ConfigError(f"Setting [app] {key} (or {env}) must be a {parse.__name__}, got {value!r}.") from None
    return _app_fields(raw)


def _ray_options(secrets: Mapping[str, Any], environ: Mapping[str, str]) -> dict[str, Any]:
    section = secrets.get("ray") or {}
    out: dict[str, Any] = {}
    address = section.get("address") or environ.get("RAY_ADDRESS")
    if address:
        out["ray_address"] = str(address).strip()
    cpus = section["num_cpus"] if "num_cpus" in section else environ.get("PULSEVAULT_JOB_CPUS")
    if cpus not in (None, ""):
        try:
            out["job_cpus"] = int(cpus)
        except (TypeError, ValueError):
            out["job_cpus"] = 0
        if out["job_cpus"] <= 0:
            raise ConfigError(f"Setting [ray] num_cpus (or PULSEVAULT_JOB_CPUS) must be a whole number above zero, "
                              f"got {cpus!r}.")
    return out


def _app_fields(raw: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if "presign_expiry_s" in raw:
        out["presign_expiry_s"] = clamp_expiry(raw["presign_expiry_s"])
    if "max_upload_mb" in raw:
        out["max_upload_bytes"] = _positive(raw, "max_upload_mb") * MIB
    if "quota_gb" in raw:
        out["quota_bytes"] = int(_positive(raw, "quota_gb") * GIB)
    if "study_quota_gb" in raw:
        out["study_quota_bytes"] = int(_positive(raw, "study_quota_gb") * GIB)
    if "require_consent" in raw:
        out["require_consent"] = _as_bool(raw["require_consent"])
    if "direct_upload_threshold_mb" in raw:
        out["direct_upload_threshold_bytes"] = _positive(raw, "direct_upload_threshold_mb") * MIB
    if "transfer_part_size_mb" in raw:
        out["transfer_part_size_bytes"] = _positive(raw, "transfer_part_size_mb") * MIB
    if "transfer_checksums" in raw:
        out["transfer_checksums"] = _as_bool(raw["transfer_checksums"])
    if "app_origins" in raw:
        out["app_origins"] = tuple(o.strip().rstrip("/") for o in _as_list(raw["app_origins"]) if o.strip())
    out.update({key: _positive(raw, key) for key in _POSITIVE_INTS if key in raw})
    if "hr_band" in raw:
        out["hr_band_hz"] = _hr_band(raw["hr_band"])
    return out | _session_fields(raw) | _export_fields(raw)


def _export_fields(raw: dict[str, Any]) -> dict[str, Any]:
    if "export_zip_max_gb" not in raw:
        return {}
    return {"export_zip_max_bytes": int(_positive(raw, "export_zip_max_gb") * GIB)}


def _session_fields(raw: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if "session_key" in raw:
        keys = tuple(k.strip() for k in _as_list(raw["session_key"]) if k.strip())
        if any(len(k) < MIN_SESSION_KEY_CHARS for k in keys):
            raise ConfigError(
                f"Setting [app] session_key (or PULSEVAULT_SESSION_KEY) must be at least {MIN_SESSION_KEY_CHARS} "
                "random characters; make one with: python -c \"import secrets; print(secrets.token_urlsafe(32))\"")
        out["session_keys"] = keys
    for key in ("session_idle_timeout_s", "session_lifetime_s"):
        if key in raw:
            out[key] = _positive(raw, key)
    return out


def _hr_band(value: Any) -> tuple[float, float]:
    # Imported here, only when the band is configured: lib.rppg brings OpenCV and SciPy, which the app's
    # cold start does not otherwise load.
    from lib.rppg.spectrum import check_band

    try:
        return check_band(value)
    except ValidationError as exc:
        raise ConfigError(f"Setting [app] hr_band (or PULSEVAULT_HR_BAND): {exc}") from None


def _positive(raw: dict[str, Any], key: str) -> Any:
    if raw[key] <= 0:
        raise ConfigError(f"Setting [app] {key} must be greater than zero, got {raw[key]!r}.")
    return raw[key]


def _as_list(value: Any) -> list[str]:
    return [str(v) for v in value] if isinstance(value, (list, tuple)) else str(value).split(",")


def _as_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in {"1", "true", "yes", "on"}
