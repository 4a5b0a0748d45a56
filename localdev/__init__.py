"""What a laptop needs around the service and production never does: the `make run` launcher
and the embedded Postgres. Not part of the wheel or the image."""
