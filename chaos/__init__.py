"""`make chaos` (issue 9, item 10): the service under the faults payment systems meet.

Three `python -m service` replicas share one Postgres and one Stripe sandbox while a bounded
load of well-behaved callers creates sessions (changed carts, retries with the same
`request_id`, payments), and Stripe answers 500s, 429s, slowly or not at all, Postgres restarts
and a replica is killed with SIGKILL. Afterwards the ledger is checked against the sandbox: no
order may have two open sessions, every paid session must be complete in the ledger, nothing
open at Stripe may lack its ledger row, and no call may have been answered INTERNAL or UNKNOWN.

A tool of its own, never shipped (only `service` and `checkout` are) and independent of
`tests/`, which imports it for the short run in `make test` (tests/chaos/).
"""
