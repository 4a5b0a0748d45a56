"""The gRPC and HTTP edge: parse, call one use case, translate. No rules, no SQL."""
