"""Postgres: the order↔session ledger and the cache over it, the migrations, the change feed and
the sweep's lock."""
