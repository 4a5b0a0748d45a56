"""Settings from an environment given as a dict: defaults, overrides, fail-fast, masking."""

from __future__ import annotations

import pytest

from service.config import ConfigError, Settings, describe_dsn

DSN = "postgresql://svc:hunter2@db:5432/checkout"


def test_only_the_database_is_required_and_the_sandbox_is_the_default_stripe() -> None:
    settings = Settings.from_environ({"DATABASE_URL": DSN})
    assert str(settings.grpc_addr) == "127.0.0.1:50051"
    assert str(settings.http_addr) == "127.0.0.1:8080"
    assert settings.stripe_is_sandbox
    assert settings.stripe_api_base == "http://127.0.0.1:12111"
    assert settings.stripe_api_key.value.startswith("sk_test_")
    assert settings.describe_postgres() == "Postgres svc@db:5432/checkout"
    assert settings.describe_stripe() == "Stripe sandbox at http://127.0.0.1:12111"


def test_without_a_database_url_the_error_names_it() -> None:
    with pytest.raises(ConfigError, match="DATABASE_URL"):
        Settings.from_environ({})


def test_a_real_key_means_real_stripe_and_is_never_shown() -> None:
    settings = Settings.from_environ(
        {
            "STRIPE_API_KEY": "sk_live_supersecret",
            "STRIPE_WEBHOOK_SECRET": "whsec_supersecret",
            "DATABASE_URL": DSN,
        }
    )
    assert not settings.stripe_is_sandbox
    assert settings.stripe_api_base == "https://api.stripe.com"
    assert settings.describe_stripe() == "Stripe at https://api.stripe.com (live mode key)"
    for text in (repr(settings), str(settings), settings.describe_postgres()):
        assert "supersecret" not in text
        assert "hunter2" not in text


def test_every_variable_is_honoured() -> None:
    settings = Settings.from_environ(
        {
            "DATABASE_URL": DSN,
            "GRPC_ADDR": "0.0.0.0:6000",
            "HTTP_ADDR": "[::]:6001",
            "STRIPE_API_BASE": "http://sandbox:12111/",
            "STRIPE_TIMEOUT_SECONDS": "2.5",
            "STRIPE_MAX_NETWORK_RETRIES": "0",
            "DB_POOL_MAX_SIZE": "20",
            "SHUTDOWN_GRACE_SECONDS": "3",
            "LOG_LEVEL": "DEBUG",
            "LOG_FORMAT": "console",
        }
    )
    assert (settings.grpc_addr.host, settings.grpc_addr.port) == ("0.0.0.0", 6000)
    assert settings.http_addr.bind_host == "::"
    assert settings.stripe_api_base == "http://sandbox:12111"
    assert settings.stripe_is_sandbox
    assert settings.stripe_timeout_seconds == 2.5
    assert settings.stripe_max_network_retries == 0
    assert settings.db_pool_max_size == 20
    assert settings.shutdown_grace_seconds == 3
    assert (settings.log_level, settings.log_format) == ("debug", "console")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DATABASE_URL", "mysql://db/checkout"),
        ("GRPC_ADDR", "50051"),
        ("HTTP_ADDR", "host:port"),
        ("STRIPE_API_KEY", "pk_test_publishable"),
        ("STRIPE_API_BASE", "api.stripe.com"),
        ("STRIPE_TIMEOUT_SECONDS", "soon"),
        ("STRIPE_MAX_NETWORK_RETRIES", "-1"),
        ("LOG_LEVEL", "loud"),
        ("LOG_FORMAT", "xml"),
    ],
)
def test_a_malformed_variable_fails_fast_naming_it(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        Settings.from_environ({"DATABASE_URL": DSN, name: value})


def test_a_malformed_key_is_not_echoed() -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_environ({"DATABASE_URL": DSN, "STRIPE_API_KEY": "pk_test_secretvalue"})
    assert "secretvalue" not in str(caught.value)


@pytest.mark.parametrize(
    ("dsn", "shown"),
    [
        ("postgresql://svc:hunter2@db:5432/checkout", "svc@db:5432/checkout"),
        ("postgresql://svc@db/checkout?password=hunter2", "svc@db:5432/checkout"),
        ("postgresql://db/checkout?user=svc&sslpassword=hunter2&port=6432", "svc@db:6432/checkout"),
        ("postgresql://postgres:@/postgres?host=/tmp/pg", "postgres@/tmp/pg:5432/postgres"),
        ("postgres://svc:hun%40ter2@[::1]:5433/x", "svc@::1:5433/x"),
    ],
)
def test_a_dsn_is_described_by_host_port_database_and_user_only(dsn: str, shown: str) -> None:
    assert describe_dsn(dsn) == shown
    assert "hunter2" not in describe_dsn(dsn) and "hun%40ter2" not in describe_dsn(dsn)
