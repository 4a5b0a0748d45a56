"""OpenTelemetry tracing: off by default, on with the standard environment variables
(https://opentelemetry.io/docs/specs/otel/configuration/sdk-environment-variables/):
`OTEL_TRACES_EXPORTER` (`otlp` or `console`; `none` turns it off) or an
`OTEL_EXPORTER_OTLP_ENDPOINT`, with `OTEL_SERVICE_NAME` and the exporter's other `OTEL_*`
settings read by the SDK itself.

A span per RPC (continuing the caller's trace from its `traceparent` metadata), with child spans
for each Stripe call and each trip to Postgres; every log line written inside one carries its
`trace_id`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from typing import Any

from opentelemetry import context, propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SpanExporter,
)

_TRACER_NAME = "checkout"


def exporter_from(environ: Mapping[str, str]) -> str | None:
    """Which exporter the environment asks for: `otlp`, `console`, or None (tracing off)."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None
    chosen = environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if chosen in ("otlp", "console"):
        return chosen
    if chosen == "" and environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip():
        return "otlp"
    return None


def start_tracing(exporter: str) -> TracerProvider:
    """Install a tracer provider for the process; shut it down to flush what is buffered."""
    provider = TracerProvider(resource=Resource.create())  # reads OTEL_SERVICE_NAME
    provider.add_span_processor(BatchSpanProcessor(_exporter(exporter)))
    trace.set_tracer_provider(provider)
    return provider


def _exporter(name: str) -> SpanExporter:
    if name == "console":
        return ConsoleSpanExporter()
    # Imported only when asked for: it brings gRPC channels of its own.
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter()


def tracer() -> trace.Tracer:
    return trace.get_tracer(_TRACER_NAME)


@contextmanager
def server_span(name: str, carrier: Mapping[str, str]) -> Iterator[trace.Span]:
    """A span for serving one call, in the trace the caller's `traceparent` names, if any."""
    parent = propagate.extract(carrier)
    token = context.attach(parent)
    try:
        with tracer().start_as_current_span(name, kind=trace.SpanKind.SERVER) as span:
            yield span
    finally:
        context.detach(token)


def client_span(name: str, **attributes: str) -> Any:
    """A span for one call out (Stripe, Postgres), a child of the current one."""
    return tracer().start_as_current_span(name, kind=trace.SpanKind.CLIENT, attributes=attributes)


def add_trace_ids(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: the current trace and span ids on every line written in a span."""
    span_context = trace.get_current_span().get_span_context()
    if span_context.is_valid:
        event["trace_id"] = format(span_context.trace_id, "032x")
        event["span_id"] = format(span_context.span_id, "016x")
    return event
