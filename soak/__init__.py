"""`make soak` (issue 22): the service for half an hour (SOAK_MINUTES) under a fixed, mixed
load on two replicas, each replica's memory, file descriptors, asyncio tasks and Postgres
connections sampled every 30 s, and a verdict on whether any of them grows without bound.

A tool of its own, never shipped, that starts what chaos/ starts (a pgserver Postgres of its
own, the sandbox, `python -m service` replicas); `tests/soak/` runs a short one in `make test`.
"""
