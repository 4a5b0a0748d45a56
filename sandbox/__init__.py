"""The local Stripe sandbox: a stateful HTTP server for the slice of the Stripe API we use.

It is a separate program (`python -m sandbox`) that the checkout service reaches only over
HTTP through stripe-python, exactly as it reaches real Stripe (DESIGN §7). Nothing in `domain`,
`edge` or `store` may import it.
"""
