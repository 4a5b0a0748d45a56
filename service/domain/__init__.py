"""The rules of taking payment for an order. Imports nothing from gRPC, Stripe or asyncpg."""
