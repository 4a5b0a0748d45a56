"""Postgres: the order↔session ledger, its migrations, and the embedded server for laptops."""
