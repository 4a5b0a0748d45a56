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
            "CALLERS_FILE": "/etc/checkout/callers.json",
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
            "CALLERS_FILE": "/etc/checkout/callers.json",
            "REFLECTION": "off",
            "HEALTH_ADDR": "0.0.0.0:6002",
            "GRPC_ADDR": "0.0.0.0:6000",
            "HTTP_ADDR": "[::]:6001",
            "STRIPE_API_BASE": "http://sandbox:12111/",
            "STRIPE_TIMEOUT_SECONDS": "2.5",
            "STRIPE_MAX_NETWORK_RETRIES": "0",
            "DB_POOL_MAX_SIZE": "20",
            "SHUTDOWN_GRACE_SECONDS": "3",
            "LOG_LEVEL": "DEBUG",
            "LOG_FORMAT": "console",
            "DEFAULT_TAX_BEHAVIOR": "Exclusive",
            "EVENT_RETENTION_DAYS": "45",
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
    assert str(settings.callers_file) == "/etc/checkout/callers.json"
    assert settings.reflection == "off"
    assert str(settings.health_addr) == "0.0.0.0:6002"
    assert settings.default_tax_behavior == "exclusive"
    assert settings.event_retention_days == 45
    assert Settings.from_environ({"DATABASE_URL": DSN}).default_tax_behavior is None
    assert Settings.from_environ({"DATABASE_URL": DSN}).event_retention_days == 30


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
        ("DEFAULT_TAX_BEHAVIOR", "inferred_by_currency"),
        ("EVENT_RETENTION_DAYS", "0"),
        ("EVENT_RETENTION_DAYS", "a month"),
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
        # A primary and its standby: every host is named, and how one is chosen.
        (
            "postgresql://svc:hunter2@db1:5432,db2:5433/checkout?target_session_attrs=read-write",
            "svc@db1:5432,db2:5433/checkout (target_session_attrs=read-write)",
        ),
        ("postgresql://svc:hunter2@db1,[::1]/checkout", "svc@db1:5432,::1:5432/checkout"),
        (
            "postgresql://svc@/checkout?host=db1,db2&port=5432,6432&password=hunter2",
            "svc@db1:5432,db2:6432/checkout",
        ),
        ("postgresql://svc:hunter2@db1:x,db2/checkout", "svc@db1:?,db2:5432/checkout"),
    ],
)
def test_a_dsn_is_described_by_host_port_database_and_user_only(dsn: str, shown: str) -> None:
    assert describe_dsn(dsn) == shown
    assert "hunter2" not in describe_dsn(dsn) and "hun%40ter2" not in describe_dsn(dsn)


TLS_FILES = {"TLS_CERT_FILE": __file__, "TLS_KEY_FILE": __file__}
LIVE = {
    "DATABASE_URL": DSN,
    "STRIPE_API_KEY": "sk_live_x",
    "STRIPE_WEBHOOK_SECRET": "whsec_x",
    "CALLERS_FILE": "/etc/checkout/callers.json",
}


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"DATABASE_URL": DSN, "GRPC_ADDR": "0.0.0.0:50051"}, "CALLERS_FILE"),
        ({"DATABASE_URL": DSN, "GRPC_ADDR": "[::]:50051"}, "CALLERS_FILE"),
        ({"DATABASE_URL": DSN, "GRPC_ADDR": "10.1.2.3:50051"}, "CALLERS_FILE"),
        ({**LIVE, "CALLERS_FILE": ""}, "CALLERS_FILE"),
        ({**LIVE, "STRIPE_WEBHOOK_SECRET": ""}, "STRIPE_WEBHOOK_SECRET"),
        ({**LIVE, "STRIPE_API_BASE": "http://127.0.0.1:12111"}, "https STRIPE_API_BASE"),
        ({**LIVE, "STRIPE_API_KEY": "rk_live_x", "CALLERS_FILE": ""}, "CALLERS_FILE"),
        ({**LIVE, "CHECKOUT_FAULT": "crash-after-stripe-create"}, "CHECKOUT_FAULT"),
        (
            {
                "DATABASE_URL": DSN,
                "STRIPE_API_KEY": "sk_test_x",
                "CHECKOUT_FAULT": "crash-after-stripe-create",
            },
            "CHECKOUT_FAULT",
        ),
        ({"DATABASE_URL": DSN, "TLS_CERT_FILE": "/nope/tls.crt"}, "TLS_KEY_FILE"),
        ({"DATABASE_URL": DSN, "TLS_CLIENT_CA_FILE": "/nope/ca.crt"}, "TLS_CERT_FILE"),
        (
            {
                "DATABASE_URL": DSN,
                "TLS_CERT_FILE": "/nope/tls.crt",
                "TLS_KEY_FILE": "/nope/tls.key",
            },
            "TLS_CERT_FILE",
        ),
        ({"DATABASE_URL": DSN, "REFLECTION": "sometimes"}, "REFLECTION"),
        # A live key and plaintext gRPC beyond loopback: tokens would cross the network in clear.
        ({**LIVE, "GRPC_ADDR": "0.0.0.0:50051"}, "TLS_TERMINATED_BY_MESH"),
        ({**LIVE, "GRPC_ADDR": "10.1.2.3:50051"}, "TLS_CERT_FILE"),
        ({**LIVE, "STRIPE_WEBHOOK_SECRET": ","}, "STRIPE_WEBHOOK_SECRET holds no secret"),
        ({"DATABASE_URL": DSN, "STRIPE_WEBHOOK_SECRET": " , ,"}, "STRIPE_WEBHOOK_SECRET"),
        (
            {"DATABASE_URL": DSN, "TLS_TERMINATED_BY_MESH": "true", **TLS_FILES},
            "TLS_TERMINATED_BY_MESH",
        ),
        # The test hook with Stripe itself, key or no key.
        *(
            (
                {
                    "DATABASE_URL": DSN,
                    "STRIPE_API_BASE": base,
                    "CHECKOUT_FAULT": "crash-after-stripe-create",
                },
                "CHECKOUT_FAULT",
            )
            for base in (
                "https://api.stripe.com",
                "https://API.Stripe.com.",
                "http://files.stripe.com:80/",
                "https://user:pw@api.stripe.com",
            )
        ),
        ({"DATABASE_URL": DSN, "CALLER_STRIPE_CALLS_PER_SECOND": "0"}, "CALLER_STRIPE_CALLS"),
        ({"DATABASE_URL": DSN, "HTTP_HEADER_TIMEOUT_SECONDS": "0"}, "HTTP_HEADER_TIMEOUT"),
    ],
)
def test_an_unsafe_configuration_refuses_to_start_saying_why(
    environ: dict[str, str], named: str
) -> None:
    with pytest.raises(ConfigError, match=named):
        Settings.from_environ(environ)


def test_authentication_may_be_off_on_loopback_only() -> None:
    for address in ("127.0.0.1:50051", "localhost:1", "[::1]:50051", "127.0.0.2:0"):
        settings = Settings.from_environ({"DATABASE_URL": DSN, "GRPC_ADDR": address})
        assert settings.callers_file is None
        assert settings.describe_callers().startswith("off")


def test_a_live_key_with_everything_it_needs_starts() -> None:
    settings = Settings.from_environ(LIVE)
    assert settings.is_live
    assert settings.stripe_api_base == "https://api.stripe.com"


def test_the_test_hook_is_allowed_with_the_sandbox() -> None:
    settings = Settings.from_environ(
        {"DATABASE_URL": DSN, "CHECKOUT_FAULT": "crash-after-stripe-create"}
    )
    assert settings.fault == "crash-after-stripe-create"


def test_a_live_key_may_serve_plaintext_behind_a_mesh_that_terminates_tls_and_says_so() -> None:
    settings = Settings.from_environ(
        {**LIVE, "GRPC_ADDR": "0.0.0.0:50051", "TLS_TERMINATED_BY_MESH": "true"}
    )
    assert "TLS_TERMINATED_BY_MESH" in settings.describe_tls()
    assert Settings.from_environ({**LIVE, "GRPC_ADDR": "0.0.0.0:50051", **TLS_FILES}).tls


def test_the_test_hook_is_allowed_with_a_sandbox_wherever_it_is() -> None:
    for extra in (
        {"STRIPE_API_BASE": "http://sandbox:12111"},
        {"STRIPE_API_KEY": "sk_test_x", "STRIPE_API_BASE": "http://127.0.0.1:12111"},
    ):
        settings = Settings.from_environ(
            {"DATABASE_URL": DSN, "CHECKOUT_FAULT": "crash-after-stripe-create", **extra}
        )
        assert settings.fault == "crash-after-stripe-create"


def test_two_webhook_secrets_while_rolling_and_blanks_ignored() -> None:
    settings = Settings.from_environ(
        {"DATABASE_URL": DSN, "STRIPE_WEBHOOK_SECRET": " whsec_new, ,whsec_old,"}
    )
    assert settings.webhook_secrets == ["whsec_new", "whsec_old"]


def test_credentials_in_stripe_api_base_are_never_shown() -> None:
    settings = Settings.from_environ(
        {"DATABASE_URL": DSN, "STRIPE_API_BASE": "https://sk_test_hidden:pw9@stripe-proxy:8443/"}
    )
    assert settings.stripe_api_base == "https://sk_test_hidden:pw9@stripe-proxy:8443"
    shown = settings.describe_stripe()
    assert "sk_test_hidden" not in shown and "pw9" not in shown
    assert "stripe-proxy:8443" in shown
    with pytest.raises(ConfigError) as caught:
        Settings.from_environ({"DATABASE_URL": DSN, "STRIPE_API_BASE": "ftp://u:pw9@x"})
    assert "pw9" not in str(caught.value)
