"""OpenTelemetry: one trace followed from the gateway through HTTP calls, outbox rows and event
headers into consumers. W3C trace context is always propagated; spans are exported only when
OTEL_EXPORTER_ENABLED is set. Without an exporter spans are not sampled: they still carry (and
pass on) trace and span ids, for the logs, but record nothing, which is cheaper on every request
and every event."""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON, ParentBased

_configured = False


def configure_tracing(service: str, exporter_enabled: bool, endpoint: str) -> None:
    global _configured
    if _configured:
        return
    provider = TracerProvider(
        resource=Resource.create({"service.name": service}),
        sampler=ParentBased(ALWAYS_ON if exporter_enabled else ALWAYS_OFF),
    )
    if exporter_enabled:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{endpoint.rstrip('/')}/v1/traces")))
    trace.set_tracer_provider(provider)
    _configured = True


def tracer() -> trace.Tracer:
    return trace.get_tracer("co-creation-platform")


def inject_headers(carrier: MutableMapping[str, str] | None = None) -> dict[str, str]:
    """The current trace context as headers (traceparent/tracestate)."""
    out: dict[str, str] = dict(carrier or {})
    propagate.inject(out)
    return out


def extract_context(headers: Mapping[str, str] | None) -> otel_context.Context:
    return propagate.extract(dict(headers or {}))


def current_trace_id() -> str | None:
    ctx = trace.get_current_span().get_span_context()
    return format(ctx.trace_id, "032x") if ctx.is_valid else None
