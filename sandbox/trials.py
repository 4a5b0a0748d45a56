"""Trials on a subscription-mode session (`subscription_data[trial_period_days]` or
`subscription_data[trial_end]`).

During a trial the recurring prices charge nothing now: the session's amounts, and its line
items', are what is due today, which is 0 for a subscription of recurring prices alone (one-time
prices are still charged at once). Such a session completes with `payment_status:
no_payment_required`, "the payment is delayed to a future date"
(https://docs.stripe.com/api/checkout/sessions/object#checkout_session_object-payment_status),
and its Subscription is `trialing` (https://docs.stripe.com/billing/subscriptions/trials).

Stripe's rules (https://docs.stripe.com/api/checkout/sessions/create#create_checkout_session-subscription_data):
`trial_end` at least 48 hours after the session is created; `trial_period_days` at least 1 (and
at most 730, `checkout_params.py`); the strict reading here refuses both at once.
"""

from typing import Any

from .errors import invalid, parameters_exclusive

_DAY = 24 * 60 * 60
MIN_TRIAL_END = 48 * 60 * 60


def check_trial(params: dict[str, Any], now: int) -> None:
    data = params.get("subscription_data", {})
    if "trial_end" in data and "trial_period_days" in data:
        raise parameters_exclusive(
            "trial_end", "trial_period_days", param="subscription_data[trial_end]"
        )
    if "trial_end" in data and data["trial_end"] < now + MIN_TRIAL_END:
        raise invalid(
            "`subscription_data[trial_end]` must be at least 48 hours in the future.",
            "subscription_data[trial_end]",
        )


def trialing(params: dict[str, Any]) -> bool:
    """Whether the session's recurring prices start with a trial (nothing due now for them)."""
    data = params.get("subscription_data", {})
    return params.get("mode") == "subscription" and (
        "trial_end" in data or "trial_period_days" in data
    )


def trial_end(data: dict[str, Any], now: int) -> int | None:
    """When the trial that `subscription_data` asks for ends, if it asks for one."""
    if "trial_period_days" in data:
        return now + int(data["trial_period_days"]) * _DAY
    end = data.get("trial_end")
    return None if end is None else int(end)
