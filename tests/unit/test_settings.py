from __future__ import annotations

import pytest

from lib.errors import ConfigError
from lib.settings import GIB, MIB, Settings, load_settings

CLOUD_ENV = {
    "AWS_ACCESS_KEY_ID": "AKIAEXAMPLE",
    "AWS_SECRET_ACCESS_KEY": "very-secret-value",
    "AWS_REGION": "eu-west-1",
    "AWS_S3_BUCKET": "lab-bucket",
    "SUPABASE_URL": "https://project.supabase.co",
    "SUPABASE_ANON_KEY": "anon-key-value",
    "SUPABASE_SERVICE_ROLE_KEY": "service-role-key-value",
}


def test_nothing_configured_is_demo_mode() -> None:
    settings = load_settings({}, {})
    assert settings.mode == "demo" and settings.is_demo
    assert settings.s3 is None and settings.supabase is None


def test_full_environment_is_cloud_mode() -> None:
    settings = load_settings({}, CLOUD_ENV)
    assert settings.mode == "cloud"
    assert settings.s3.bucket == "lab-bucket" and settings.s3.region == "eu-west-1"
    assert settings.s3.endpoint_url is None
    assert settings.supabase.url == "https://project.supabase.co"


def test_secrets_mapping_wins_over_environment() -> None:
    secrets = {
        "s3": {"access_key_id": "A", "secret_access_key": "B", "region": "us-east-2", "bucket": "from-secrets",
               "endpoint_url": "http://minio:9000"},
        "supabase": {"url": "https://x.supabase.co", "anon_key": "k", "service_role_key": "s"},
    }
    settings = load_settings(secrets, CLOUD_ENV)
    assert settings.s3.bucket == "from-secrets"
    assert settings.s3.endpoint_url == "http://minio:9000"


def test_ca_bundle_for_a_labs_own_tls_certificates() -> None:
    assert load_settings({}, CLOUD_ENV).s3.ca_bundle is None
    assert load_settings({}, {**CLOUD_ENV, "AWS_CA_BUNDLE": "/etc/lab/ca.pem"}).s3.ca_bundle == "/etc/lab/ca.pem"
    secrets = {"s3": {"ca_bundle": "/srv/pulsevault/lab-ca.pem"}}
    assert load_settings(secrets, {**CLOUD_ENV, "AWS_CA_BUNDLE": "/etc/lab/ca.pem"}).s3.ca_bundle.endswith("lab-ca.pem")
    assert load_settings({}, {"AWS_CA_BUNDLE": "/etc/lab/ca.pem"}).is_demo  # optional keys do not decide the mode


def test_half_configuration_names_each_missing_key() -> None:
    env = {k: v for k, v in CLOUD_ENV.items() if k not in ("AWS_SECRET_ACCESS_KEY", "SUPABASE_ANON_KEY")}
    with pytest.raises(ConfigError) as info:
        load_settings({}, env)
    message = str(info.value)
    assert "secret_access_key" in message and "AWS_SECRET_ACCESS_KEY" in message
    assert "anon_key" in message and "SUPABASE_ANON_KEY" in message
    assert "bucket" not in message


def test_only_supabase_configured_is_an_error_not_demo() -> None:
    env = {"SUPABASE_URL": "https://p.supabase.co", "SUPABASE_ANON_KEY": "k"}
    with pytest.raises(ConfigError, match="AWS_S3_BUCKET"):
        load_settings({}, env)


def test_secrets_never_appear_in_repr() -> None:
    settings = load_settings({}, CLOUD_ENV)
    text = repr(settings)
    assert "very-secret-value" not in text and "anon-key-value" not in text and "service-role-key" not in text
    assert settings.supabase.service_role_key == "service-role-key-value"


def test_cloud_mode_needs_the_service_role_key() -> None:
    """The server's own writes (facts, the row lifecycle) use it; without it cloud mode does not start."""
    env = {k: v for k, v in CLOUD_ENV.items() if k != "SUPABASE_SERVICE_ROLE_KEY"}
    with pytest.raises(ConfigError, match=r"service_role_key \(or SUPABASE_SERVICE_ROLE_KEY\)"):
        load_settings({}, env)


@pytest.mark.parametrize(
    ("configured", "expected"),
    [(None, 3600), ("10", 60), ("0", 60), ("7200", 7200), ("999999", 86_400)],
)
def test_presign_expiry_default_and_clamp(configured: str | None, expected: int) -> None:
    env = {} if configured is None else {"PULSEVAULT_PRESIGN_EXPIRY_S": configured}
    assert load_settings({}, env).presign_expiry_s == expected


def test_clamp_expiry_for_requests() -> None:
    settings = Settings(mode="demo")
    assert settings.clamp_expiry(None) == 3600
    assert settings.clamp_expiry(5) == 60
    assert settings.clamp_expiry(10**9) == 86_400


def test_app_settings_from_secrets() -> None:
    secrets = {"app": {"max_upload_mb": 100, "quota_gb": 1.5, "require_consent": True,
                       "direct_upload_threshold_mb": 50}}
    settings = load_settings(secrets, {})
    assert settings.max_upload_bytes == 100 * MIB
    assert settings.quota_bytes == int(1.5 * GIB)
    assert settings.require_consent
    assert settings.direct_upload_threshold_bytes == 50 * MIB


@pytest.mark.parametrize(("secrets", "env"), [
    ({"app": {"admin_emails": ["pi@lab.org"]}}, {}),
    ({}, {"PULSEVAULT_ADMIN_EMAILS": "a@x.org, b@y.org"}),
])
def test_admin_emails_is_refused_with_what_replaced_it(secrets, env) -> None:
    """Issue 14, attack 4: an e-mail list made whoever signed up with the address an admin. The setting is
    gone, and an install that still sets it is told so instead of silently losing (or keeping) admins."""
    with pytest.raises(ConfigError, match=r"admin_emails.*removed.*app_metadata"):
        load_settings(secrets, env)


@pytest.mark.parametrize(("env", "match"), [
    ({"PULSEVAULT_MAX_UPLOAD_MB": "lots"}, "max_upload_mb"),
    ({"PULSEVAULT_QUOTA_GB": "-1"}, "quota_gb"),
    ({"PULSEVAULT_CHECK_CONCURRENCY": "0"}, "check_concurrency"),
    ({"PULSEVAULT_CHECK_WORKER_IDLE_S": "soon"}, "check_worker_idle_s"),
])
def test_invalid_app_setting_is_a_clear_error(env: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        load_settings({}, env)


def test_upload_limit_default_matches_streamlit_config() -> None:
    import tomllib
    from pathlib import Path

    config = tomllib.loads(Path(".streamlit/config.toml").read_text())
    assert load_settings({}, {}).max_upload_bytes == config["server"]["maxUploadSize"] * MIB


def test_session_settings_from_environment_and_secrets() -> None:
    key, old = "k" * 40, "o" * 32
    env = {"PULSEVAULT_SESSION_KEY": f"{key}, {old}", "PULSEVAULT_SESSION_IDLE_TIMEOUT_S": "600"}
    settings = load_settings({}, env)
    assert settings.session_keys == (key, old)
    assert settings.session_idle_timeout_s == 600
    assert key not in repr(settings)
    settings = load_settings({"app": {"session_key": [key], "session_lifetime_s": 3600}}, {})
    assert settings.session_keys == (key,) and settings.session_lifetime_s == 3600


def test_short_session_key_is_refused_with_how_to_make_one() -> None:
    with pytest.raises(ConfigError, match="at least 32") as caught:
        load_settings({}, {"PULSEVAULT_SESSION_KEY": "short"})
    assert "short" not in str(caught.value)


def test_heart_rate_band_default_preset_and_pair() -> None:
    assert load_settings({}, {}).hr_band_hz is None  # lib.rppg's default, at rest
    assert load_settings({}, {"PULSEVAULT_HR_BAND": "exercise"}).hr_band_hz == (0.7, 4.0)
    assert load_settings({"app": {"hr_band": [0.8, 3.0]}}, {}).hr_band_hz == (0.8, 3.0)
    assert load_settings({}, {"PULSEVAULT_HR_BAND": "0.75-2.5"}).hr_band_hz == (0.75, 2.5)
    with pytest.raises(ConfigError, match="hr_band"):
        load_settings({}, {"PULSEVAULT_HR_BAND": "2.5-0.75"})


def test_check_caps_come_from_the_settings_and_size_the_pool() -> None:
    from lib.services import check_pool

    settings = load_settings({"app": {"check_concurrency": 3}}, {"PULSEVAULT_CHECK_CONCURRENCY_PER_USER": "5"})
    assert (settings.check_concurrency, settings.check_concurrency_per_user) == (3, 5)
    pool = check_pool(settings)
    assert (pool.limits.total, pool.limits.per_user) == (3, 3)  # one user never gets more than the server
    assert pool.idle_exit_s == settings.check_worker_idle_s == 30
