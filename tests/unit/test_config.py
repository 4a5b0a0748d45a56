"""Settings from an environment given as a dict: defaults, overrides, fail-fast, masking."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.config import ConfigError, Settings, redact_dsn


def test_nothing_set_means_embedded_postgres_and_the_sandbox() -> None:
    settings = Settings.from_environ({})
    assert str(settings.grpc_addr) == "127.0.0.1:50051"
    assert str(settings.http_addr) == "127.0.0.1:8080"
    assert settings.database_url is None
    assert settings.data_dir == Path(".data")
    assert settings.stripe_is_sandbox
    assert settings.stripe_api_base == "http://127.0.0.1:12111"
    assert settings.stripe_api_key.value.startswith("sk_test_")
    assert settings.describe_postgres() == "embedded Postgres under .data/postgres"
    assert settings.describe_stripe() == "Stripe sandbox at http://127.0.0.1:12111"


def test_a_real_key_means_real_stripe_and_is_never_shown() -> None:
    settings = Settings.from_environ(
        {
            "STRIPE_API_KEY": "sk_live_supersecret",
            "STRIPE_WEBHOOK_SECRET": "whsec_supersecret",
            "DATABASE_URL": "postgresql://svc:hunter2@db:5432/checkout",
        }
    )
    assert not settings.stripe_is_sandbox
    assert settings.stripe_api_base == "https://api.stripe.com"
    assert settings.describe_stripe() == "Stripe at https://api.stripe.com (live mode key)"
    assert settings.describe_postgres() == "Postgres at postgresql://svc:***@db:5432/checkout"
    for text in (repr(settings), str(settings)):
        assert "supersecret" not in text
        assert "hunter2" not in text


def test_every_variable_is_honoured() -> None:
    settings = Settings.from_environ(
        {
            "GRPC_ADDR": "0.0.0.0:6000",
            "HTTP_ADDR": "[::]:6001",
            "STRIPE_API_BASE": "http://sandbox:12111/",
            "STRIPE_TIMEOUT_SECONDS": "2.5",
            "STRIPE_MAX_NETWORK_RETRIES": "0",
            "DB_POOL_MAX_SIZE": "20",
            "SHUTDOWN_GRACE_SECONDS": "3",
            "LOG_LEVEL": "DEBUG",
            "LOG_FORMAT": "console",
            "DATA_DIR": "/tmp/x",
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
    assert settings.data_dir == Path("/tmp/x")


@pytest.mark.parametrize(
    ("name", "value"),
    [
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
        Settings.from_environ({name: value})


def test_a_malformed_key_is_not_echoed() -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_environ({"STRIPE_API_KEY": "pk_test_secretvalue"})
    assert "secretvalue" not in str(caught.value)


def test_redact_dsn_keeps_dsns_without_password() -> None:
    assert redact_dsn("postgresql://postgres:@/postgres?host=/tmp") == (
        "postgresql://postgres:@/postgres?host=/tmp"
    )
