"""Settings, read once from the environment into a frozen object; a bad value stops the start
with a message that names the variable.

`DATABASE_URL` is the one required variable. Without `STRIPE_API_KEY` the service talks to the
local Stripe sandbox; `make run` (the `localdev` package, never shipped) starts that sandbox and
an embedded Postgres and passes their addresses in.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from service.observability.redaction import redact_url
from service.observability.tracing import exporter_from

DEFAULT_GRPC_ADDR = "127.0.0.1:50051"
DEFAULT_HTTP_ADDR = "127.0.0.1:8080"
SANDBOX_API_BASE = "http://127.0.0.1:12111"
SANDBOX_API_KEY = "sk_test_sandbox"
STRIPE_API_BASE = "https://api.stripe.com"
CRASH_AFTER_STRIPE_CREATE = "crash-after-stripe-create"
"""Test-only fault (CHECKOUT_FAULT): die between Stripe's answer and the ledger write."""
CRASH_AFTER_STRIPE_REFUND = "crash-after-stripe-refund"
"""Test-only fault: die between Stripe's refund and the ledger's record of it."""
FAULTS = frozenset({CRASH_AFTER_STRIPE_CREATE, CRASH_AFTER_STRIPE_REFUND})


class ConfigError(Exception):
    """A variable is malformed; the message names it and says what is expected."""


@dataclass(frozen=True, slots=True)
class Secret:
    """A value that must never reach a log line, an error message or a repr."""

    value: str

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__


@dataclass(frozen=True, slots=True)
class Address:
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def bind_host(self) -> str:
        """The host without IPv6 brackets, as socket APIs want it."""
        return self.host.strip("[]")

    @property
    def is_loopback(self) -> bool:
        if self.bind_host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.bind_host).is_loopback
        except ValueError:
            return False


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """PEM files, read again whenever they change (cert-manager rotates them in place)."""

    cert: Path
    key: Path
    client_ca: Path | None
    """Set: mutual TLS, and a client without a certificate fails the handshake."""


@dataclass(frozen=True, slots=True)
class Settings:
    grpc_addr: Address
    http_addr: Address
    database_url: Secret
    stripe_api_key: Secret
    stripe_api_base: str
    stripe_is_sandbox: bool
    stripe_webhook_secret: Secret | None
    stripe_timeout_seconds: float
    stripe_max_network_retries: int
    db_pool_max_size: int
    db_command_timeout_seconds: float
    shutdown_grace_seconds: float
    sweep_interval_seconds: float
    sweep_quiet_seconds: float
    log_level: str
    log_format: str
    callers_file: Path | None = None
    """None: authentication is off, which only a loopback GRPC_ADDR allows."""
    callers_reload_seconds: float = 2.0
    reflection: str = "authenticated"
    """`authenticated`, `open` (to anyone who reaches the port) or `off`."""
    tls: TlsFiles | None = None
    health_addr: Address | None = None
    """A plaintext gRPC listener serving health only, for kubelet probes when TLS is on."""
    max_receive_bytes: int = 1 << 20
    tracing: str | None = None
    """The OpenTelemetry exporter the OTEL_* variables ask for (`otlp`, `console`); None: off."""
    migrate_on_start: bool = True
    """False: a Job migrates (`python -m service migrate`); the service only checks."""
    drain_delay_seconds: float = 0.0
    """After SIGTERM, how long to keep serving while load balancers stop routing here."""
    watch_max_streams: int = 5000
    watch_max_seconds: float = 1800.0
    default_tax_behavior: str | None = None
    """`exclusive` or `inclusive`: the tax behaviour of inline prices that give none; None
    leaves it to the account's default in its Stripe Tax settings."""
    caller_max_streams: int = 1000
    """Each caller's open streams on one replica, unless its entry in CALLERS_FILE says."""
    caller_stripe_calls_per_second: float = 10.0
    """Each caller's calls to Stripe a second on one replica (a token bucket), unless its
    entry in CALLERS_FILE says: Stripe's rate limit is the whole account's."""
    caller_stripe_burst: int = 20
    event_retention_days: float = 30.0
    """How long the event feed keeps an event; older ones are pruned by the sweep."""
    http_header_timeout_seconds: float = 10.0
    """How long an HTTP connection may take to deliver a complete request head, from when it
    opens or the previous response was sent: also how long an idle keep-alive connection is
    kept."""
    tls_terminated_by_mesh: bool = False
    """A service mesh's sidecar terminates TLS in front of a plaintext GRPC_ADDR."""
    fault: str | None = None
    """Test-only fault injection (FAULTS); never set in production."""

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Settings:
        reader = _Reader(os.environ if environ is None else environ)
        api_key, api_base, webhook_secret = _stripe(reader)
        settings = cls(
            grpc_addr=reader.address("GRPC_ADDR", DEFAULT_GRPC_ADDR),
            http_addr=reader.address("HTTP_ADDR", DEFAULT_HTTP_ADDR),
            database_url=Secret(_database_url(reader)),
            stripe_api_key=Secret(api_key or SANDBOX_API_KEY),
            stripe_api_base=api_base.rstrip("/"),
            stripe_is_sandbox=api_key is None,
            stripe_webhook_secret=Secret(webhook_secret) if webhook_secret else None,
            stripe_timeout_seconds=reader.number("STRIPE_TIMEOUT_SECONDS", 10.0, low=0.1),
            stripe_max_network_retries=int(
                reader.number("STRIPE_MAX_NETWORK_RETRIES", 2, low=0, high=10)
            ),
            db_pool_max_size=int(reader.number("DB_POOL_MAX_SIZE", 10, low=1, high=1000)),
            db_command_timeout_seconds=reader.number("DB_COMMAND_TIMEOUT_SECONDS", 5.0, low=0.1),
            shutdown_grace_seconds=reader.number("SHUTDOWN_GRACE_SECONDS", 10.0, low=0),
            sweep_interval_seconds=reader.number("SWEEP_INTERVAL_SECONDS", 30.0, low=0.1),
            sweep_quiet_seconds=reader.number("SWEEP_QUIET_SECONDS", 600.0, low=0),
            log_level=reader.choice("LOG_LEVEL", "info", ("debug", "info", "warning", "error")),
            log_format=reader.choice("LOG_FORMAT", "json", ("json", "console"), lower=False),
            callers_file=reader.path("CALLERS_FILE"),
            callers_reload_seconds=reader.number("CALLERS_RELOAD_SECONDS", 2.0, low=0.1),
            reflection=reader.choice(
                "REFLECTION", "authenticated", ("authenticated", "open", "off")
            ),
            tls=_tls_files(reader),
            health_addr=(
                reader.address("HEALTH_ADDR", "") if reader.optional("HEALTH_ADDR") else None
            ),
            max_receive_bytes=int(
                reader.number("GRPC_MAX_RECEIVE_BYTES", 1 << 20, low=1024, high=64 << 20)
            ),
            tracing=exporter_from(reader.env),
            migrate_on_start=reader.flag("MIGRATE_ON_START", True),
            drain_delay_seconds=reader.number("DRAIN_DELAY_SECONDS", 0.0, low=0, high=60),
            watch_max_streams=int(reader.number("WATCH_MAX_STREAMS", 5000, low=1, high=1_000_000)),
            watch_max_seconds=reader.number("WATCH_MAX_SECONDS", 1800.0, low=1),
            # Unset leaves it to the account's default in its Stripe Tax settings.
            default_tax_behavior=reader.choice(
                "DEFAULT_TAX_BEHAVIOR", "", ("exclusive", "inclusive"), unset_ok=True
            )
            or None,
            caller_max_streams=int(
                reader.number("CALLER_MAX_STREAMS", 1000, low=0, high=1_000_000)
            ),
            caller_stripe_calls_per_second=reader.number(
                "CALLER_STRIPE_CALLS_PER_SECOND", 10.0, low=0.001, high=10_000
            ),
            caller_stripe_burst=int(reader.number("CALLER_STRIPE_BURST", 20, low=1, high=100_000)),
            event_retention_days=reader.number("EVENT_RETENTION_DAYS", 30.0, low=1, high=3650),
            http_header_timeout_seconds=reader.number(
                "HTTP_HEADER_TIMEOUT_SECONDS", 10.0, low=0.1, high=3600
            ),
            tls_terminated_by_mesh=reader.flag("TLS_TERMINATED_BY_MESH", False),
            fault=_fault(reader),
        )
        _refuse_unsafe(settings)
        return settings

    @property
    def is_live(self) -> bool:
        return self.stripe_api_key.value.startswith(("sk_live_", "rk_live_"))

    @property
    def webhook_secrets(self) -> list[str]:
        """The endpoint's signing secrets: one, or two while it is rolled."""
        return (
            []
            if self.stripe_webhook_secret is None
            else _secrets_in(self.stripe_webhook_secret.value)
        )

    def describe_postgres(self) -> str:
        return f"Postgres {describe_dsn(self.database_url.value)}"

    def describe_callers(self) -> str:
        if self.callers_file is None:
            return f"off: {self.grpc_addr} is loopback, every call is the local caller's"
        return f"callers from {self.callers_file}"

    def describe_tls(self) -> str:
        if self.tls is None:
            return (
                "terminated by the mesh (TLS_TERMINATED_BY_MESH)"
                if (self.tls_terminated_by_mesh)
                else "off"
            )
        return "mutual TLS" if self.tls.client_ca is not None else "on"

    def describe_stripe(self) -> str:
        base = redact_url(self.stripe_api_base)
        if self.stripe_is_sandbox:
            return f"Stripe sandbox at {base}"
        mode = "live" if self.is_live else "test"
        return f"Stripe at {base} ({mode} mode key)"


def _stripe(reader: _Reader) -> tuple[str | None, str, str | None]:
    """STRIPE_API_KEY (None: the sandbox), STRIPE_API_BASE and STRIPE_WEBHOOK_SECRET."""
    api_key = reader.optional("STRIPE_API_KEY")
    if api_key is not None and not api_key.startswith(("sk_", "rk_")):
        raise ConfigError("STRIPE_API_KEY must be a secret key (sk_… or rk_…)")
    # No key means the local sandbox: a test key, and the sandbox's address unless told.
    default_base = STRIPE_API_BASE if api_key is not None else SANDBOX_API_BASE
    api_base = reader.optional("STRIPE_API_BASE") or default_base
    if urlsplit(api_base).scheme not in ("http", "https"):
        # Not echoed: a URL may carry credentials.
        raise ConfigError("STRIPE_API_BASE must be an http(s) URL, such as https://api.stripe.com")
    webhook_secret = reader.optional("STRIPE_WEBHOOK_SECRET")
    if webhook_secret is not None and not _secrets_in(webhook_secret):
        raise ConfigError(
            "STRIPE_WEBHOOK_SECRET holds no secret: give the endpoint's signing secret "
            "(whsec_…), or two separated by a comma while it is rolled"
        )
    return api_key, api_base, webhook_secret


def _database_url(reader: _Reader) -> str:
    database_url = reader.optional("DATABASE_URL")
    if database_url is None:
        raise ConfigError(
            "DATABASE_URL is not set: give the service its Postgres "
            "(postgresql://user:password@host:5432/db); on a laptop, `make run` starts an "
            "embedded one"
        )
    if urlsplit(database_url).scheme not in ("postgres", "postgresql"):
        raise ConfigError("DATABASE_URL must be a postgresql:// URL")
    return database_url


def _fault(reader: _Reader) -> str | None:
    fault = reader.optional("CHECKOUT_FAULT")
    if fault is not None and fault not in FAULTS:
        raise ConfigError(f"CHECKOUT_FAULT must be one of {sorted(FAULTS)}, got {fault!r}")
    return fault


def _tls_files(reader: _Reader) -> TlsFiles | None:
    cert, key = reader.path("TLS_CERT_FILE"), reader.path("TLS_KEY_FILE")
    client_ca = reader.path("TLS_CLIENT_CA_FILE")
    if cert is None and key is None:
        if client_ca is not None:
            raise ConfigError("TLS_CLIENT_CA_FILE needs TLS_CERT_FILE and TLS_KEY_FILE")
        return None
    if cert is None or key is None:
        raise ConfigError("TLS_CERT_FILE and TLS_KEY_FILE go together: set both or neither")
    for name, path in (
        ("TLS_CERT_FILE", cert),
        ("TLS_KEY_FILE", key),
        ("TLS_CLIENT_CA_FILE", client_ca),
    ):
        if path is not None and not path.is_file():
            raise ConfigError(f"{name} {path} is not a readable file")
    return TlsFiles(cert, key, client_ca)


def _secrets_in(value: str) -> list[str]:
    return [secret.strip() for secret in value.split(",") if secret.strip()]


def _is_stripe_host(url: str) -> bool:
    """Whether `url` reaches Stripe itself (any host of stripe.com), not a stand-in."""
    host = (urlsplit(url).hostname or "").rstrip(".")
    return host == "stripe.com" or host.endswith(".stripe.com")


def _refuse_unsafe(settings: Settings) -> None:
    """Nothing unsafe by accident: each refusal says why and what to set instead."""
    if settings.tls_terminated_by_mesh and settings.tls is not None:
        raise ConfigError(
            "TLS_TERMINATED_BY_MESH=true says a mesh terminates TLS, yet TLS_CERT_FILE and "
            "TLS_KEY_FILE are set: choose one"
        )
    if settings.callers_file is None and not settings.grpc_addr.is_loopback:
        raise ConfigError(
            f"GRPC_ADDR {settings.grpc_addr} is not a loopback address and CALLERS_FILE is not "
            "set: anyone who reaches the port could create and expire any order's sessions. "
            "Set CALLERS_FILE, or listen on 127.0.0.1"
        )
    if settings.is_live:
        missing = [
            name
            for name, unmet in (
                ("an https STRIPE_API_BASE", urlsplit(settings.stripe_api_base).scheme != "https"),
                ("STRIPE_WEBHOOK_SECRET", settings.stripe_webhook_secret is None),
                ("CALLERS_FILE", settings.callers_file is None),
            )
            if unmet
        ]
        if missing:
            raise ConfigError(f"a live STRIPE_API_KEY needs {', '.join(missing)}")
        plaintext = settings.tls is None and not settings.tls_terminated_by_mesh
        if plaintext and not settings.grpc_addr.is_loopback:
            raise ConfigError(
                f"a live STRIPE_API_KEY needs TLS on GRPC_ADDR {settings.grpc_addr}, which is not "
                "loopback: callers' tokens would cross the network in clear. Set TLS_CERT_FILE "
                "and TLS_KEY_FILE, or TLS_TERMINATED_BY_MESH=true if a service mesh terminates "
                "TLS in front of the service"
            )
    if settings.fault is not None and (
        settings.is_live or _is_stripe_host(settings.stripe_api_base)
    ):
        raise ConfigError(
            "CHECKOUT_FAULT is a test hook: it is refused with a live key or a STRIPE_API_BASE "
            "on stripe.com; use it with the sandbox"
        )


def describe_dsn(dsn: str) -> str:
    """User, hosts and ports, database (and `target_session_attrs`, which says how a host is
    chosen among several) of a DSN, fit for a log line: `svc@db1:5432,db2:5432/checkout`.
    Nothing else is taken from it: a password may hide in the user info, in `?password=`,
    `sslpassword=` or elsewhere
    (https://www.postgresql.org/docs/current/libpq-connect.html#LIBPQ-CONNSTRING-URIS)."""
    parts = urlsplit(dsn)
    query = parse_qs(parts.query)

    def first(name: str) -> str | None:
        values = query.get(name)
        return values[0] if values else None

    userinfo, _, hostlist = parts.netloc.rpartition("@")
    username = userinfo.partition(":")[0]
    user = first("user") or (unquote(username) if username else "(default)")
    database = first("dbname") or parts.path.lstrip("/") or "(default)"
    hosts = ",".join(_hosts(hostlist, first("host"), first("port")))
    attrs = first("target_session_attrs")
    return f"{user}@{hosts}/{database}" + (f" (target_session_attrs={attrs})" if attrs else "")


def _hosts(hostlist: str, hosts: str | None, ports: str | None) -> list[str]:
    """`host:port` of each host a DSN lists, in its netloc (`h1:5432,h2`) or in `host=` and
    `port=` (comma-separated too); 5432 where no port is given, `?` where one cannot be read."""
    if hosts is not None:
        names = hosts.split(",")
        given = (ports or "").split(",")
        # One port for every host, or one each:
        # https://www.postgresql.org/docs/current/libpq-connect.html#LIBPQ-MULTIPLE-HOSTS
        numbers = given * len(names) if len(given) == 1 else given + [""] * len(names)
        pairs = list(zip(names, numbers, strict=False))
    else:
        pairs = [_split_host(entry) for entry in hostlist.split(",")]
        if ports is not None:
            pairs = [(name, ports) for name, _ in pairs]
    return [f"{name or 'localhost'}:{_port(port)}" for name, port in pairs]


def _split_host(entry: str) -> tuple[str, str]:
    """`host:port`, `[::1]:port` or a bare host, as a netloc lists them."""
    if entry.startswith("["):
        name, _, rest = entry[1:].partition("]")
        return name, rest.removeprefix(":")
    name, _, port = entry.partition(":")
    return name, port


def _port(port: str) -> str:
    if not port:
        return "5432"
    return port if port.isdigit() else "?"


class _Reader:
    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env

    def optional(self, name: str) -> str | None:
        value = self.env.get(name, "").strip()
        return value or None

    def choice(
        self,
        name: str,
        default: str,
        allowed: tuple[str, ...],
        *,
        lower: bool = True,
        unset_ok: bool = False,
    ) -> str:
        """One of `allowed` (`default` when unset; with `unset_ok`, the empty default is allowed
        too), or a ConfigError naming the variable and what it may be."""
        raw = self.optional(name) or default
        value = raw.lower() if lower else raw
        if value in allowed or (unset_ok and value == default):
            return value
        options = ", ".join(allowed[:-1]) + f" or {allowed[-1]}"
        unset = " (or unset)" if unset_ok else ""
        raise ConfigError(f"{name} must be {options}{unset}, got {value!r}")

    def address(self, name: str, default: str) -> Address:
        raw = self.optional(name) or default
        host, sep, port = raw.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
            raise ConfigError(f"{name} must be HOST:PORT, got {raw!r}")
        return Address(host, int(port))

    def flag(self, name: str, default: bool) -> bool:
        raw = self.optional(name)
        if raw is None:
            return default
        if raw.lower() in ("true", "1", "yes"):
            return True
        if raw.lower() in ("false", "0", "no"):
            return False
        raise ConfigError(f"{name} must be true or false, got {raw!r}")

    def path(self, name: str) -> Path | None:
        raw = self.optional(name)
        return None if raw is None else Path(raw)

    def number(self, name: str, default: float, *, low: float, high: float | None = None) -> float:
        raw = self.optional(name)
        if raw is None:
            return default
        try:
            value = float(raw)
        except ValueError:
            raise ConfigError(f"{name} must be a number, got {raw!r}") from None
        if value < low or (high is not None and value > high):
            bounds = f"at least {low}" if high is None else f"between {low} and {high}"
            raise ConfigError(f"{name} must be {bounds}, got {raw!r}")
        return value
