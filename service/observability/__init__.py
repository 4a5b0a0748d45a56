"""What operators watch: Prometheus metrics and OpenTelemetry traces. Neither is an adapter of
the domain's; the edge, the gateway and the store report to them, and the composition root
makes them."""
