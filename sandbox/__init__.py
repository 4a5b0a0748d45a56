"""The local Stripe sandbox: a stateful HTTP server for the slice of the Stripe API we use.

It is a separate program (`python -m sandbox`) that the checkout service reaches only over
HTTP through stripe-python, exactly as it reaches real Stripe (docs/architecture.md, "The Stripe
sandbox"). Nothing in `service` may import it (pyproject.toml's import contracts).

Known differences from Stripe. Each module's docstring says where it differs; these are the ones
that remain after modelling the behaviours of issues 10 and 20, with why each is safe for the
service's tests. "Strict" means the sandbox refuses at least what Stripe refuses, so the service
cannot come to rely on something Stripe would not do; "fixed" means a number Stripe computes
live is a constant here, so tests stay deterministic.

- Charge limits (`charge_limits.py`): the account settles each currency of Stripe's minimum table
  in that currency and every other one in USD, converted at fixed approximate rates
  (`currencies.py`): near a non-table currency's minimum Stripe's live rate may decide otherwise.
  The refusal names no `param` (strict: the service must recognise it by its code); the larger
  card-only maximums of COP, HUF, JPY and LBP are not granted (strict); a price's `unit_amount`
  stays within eight digits in every currency (strict).
- Trials (`trials.py`): the line items of recurring prices show what is due now, 0 during a
  trial, so that they add up to the session's amounts (Stripe documents the session's amounts,
  not the line items').
- Adaptive Pricing (`adaptive_pricing.py`): eleven presentment currencies at fixed rates, no
  conversion fee; the customer's location is given (`?country=`, the control API), not read from
  their IP address. The amounts the session and its line items carry stay in its own currency,
  as on Stripe.
- `return_url` (`payment_methods.py`): an `elements` session without
  `allowed_payment_method_types` needs one, as the Dashboard might enable redirect-based methods
  (strict); such a session still shows `payment_method_types: ["card"]`.
- Tax settings (`tax_settings.py`): a sandbox-only route instead of `/v1/tax/settings` and
  `/v1/tax/registrations`; registrations are per country, never per US state; automatic tax
  taxes a shipping rate only when it has a `tax_behavior` of its own; a failing calculation is
  a fault the control route injects per country, and the customer cannot pay while it fails
  (strict).
- The customer's choices (`customer_choices.py`): a promotion code's `first_time_transaction`
  and `max_redemptions` are not enforced, and the shipping options do not depend on the address.
- Webhooks (`webhook_schedule.py`, `webhook_signing.py`): Stripe publishes no exact intervals,
  so the doubling from one minute is the sandbox's; a sandbox (test-mode) account on Stripe
  retries only for a few hours, the sandbox uses live mode's three days (strict: the service
  must cope with late deliveries); disabling follows three days of failures, where Stripe emails
  first and says "multiple days"; no test-mode `v0` signature; a secret is rolled through the
  control API, as Stripe's Dashboard does.
- Keys (`auth.py`, `restricted_keys.py`, `failure_hints.py`): any well-formed `sk_test_…` or
  `rk_test_…` key gets in, and a restricted key the sandbox was told nothing about has every
  permission; permissions are per resource and not checked for expansions; `request_log_url`
  has Stripe's form but leads nowhere; `Stripe-Should-Retry` is the sandbox's reading of when
  Stripe sends it.
- Currencies (`currencies.py`): every presentment currency is accepted whatever the account's
  country and the payment method, which on Stripe may narrow the list.
- What Checkout collects (`checkout_options.py`): `custom_text[shipping_address]` needs
  `shipping_address_collection`, offering to save or remove payment methods needs `customer`,
  saving with consent excludes `payment_intent_data[setup_future_usage]`, `statement_descriptor`
  is refused whenever a card may be offered, and recovery needs `ui_mode=hosted_page` (all
  strict); of `payment_method_options` only `card[request_three_d_secure]` is modelled, the rest
  is refused as unknown (strict).
- What the buyer enters (`buyer_entries.py`, `cards.py`): an email is never required; a tax ID
  is required with `required=if_supported` whatever the country (strict) and its value is not
  checked against its type's format; the address is one, for shipping and billing; a shipping
  address is not required; `customer_update` saves nothing onto the Customer; 3D Secure has no
  frictionless flow (`request_three_d_secure=any` always challenges) and no risk engine: only
  the two test cards that require it challenge otherwise. A card's expiry and CVC are not asked
  for.
- Saved cards (`saved_payment_methods.py`): they cannot be removed (`payment_method_remove` is
  echoed only); every card expires in 12/2034.
- Invoices (`invoices.py`): a reduced object (amounts, status, customer details, lines,
  `invoice_data`), numbered `SANDBOX-0001`…, without a PDF or hosted page; a guest's invoice
  names a `gcus_` id without an object behind it.
- Recovery (`recovery.py`): the recovery URL is the sandbox's own `/c/recover/{session}`, and a
  second visit while the copy is open leads to that copy.
- Payments after checkout (`payment_objects.py`, `payment_intents.py`, `refunds.py`,
  `disputes.py`): every card payment is the same test Visa and every bank debit a `sepa_debit`
  (euros) or `us_bank_account` (fixed); an authorisation lapses exactly 7 days after it was
  made, whatever the card network (fixed); `final_capture=false` is refused, the sandbox's cards
  offering no multicapture, and a bank debit still settling cannot be refunded, where Stripe
  would queue the refund (both strict); a bank debit's refund stays pending for 3 days on the
  sandbox clock (fixed), and a refund fails only when the control API says so. The refund that
  releases an authorisation (a partial capture's rest, a cancel) has `reason` null where Stripe
  documents none. Balance transactions exist only inside a dispute, which costs no fee;
  disputes are chargebacks only (no inquiries, appeals or Smart Disputes), decided through the
  control API, with nothing happening at their `due_by`. Where Stripe documents no error code,
  the sandbox chose one (`charge_not_refundable` for an uncaptured, pending or failed charge,
  `amount_too_small` for a capture under the minimum charge): the service should refuse these
  cases itself before asking, and recognise Stripe's answer by its HTTP status.
"""
