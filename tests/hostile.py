"""Hypothesis strategies for hostile input: any request message of the contract, filled from its
descriptor (so a field added to the contract is fuzzed without touching this file) with NUL and
other control characters, format characters, huge strings and maps, thousands of repeated
entries, extreme and unknown numbers. Lone surrogates cannot be put in a message at all
(protobuf refuses to encode them); tests send them as raw bytes instead."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from google.protobuf import message_factory
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from hypothesis import assume
from hypothesis import strategies as st

from checkout.v1 import checkout_service_pb2 as api
from checkout.v1 import session_pb2 as pb

M = TypeVar("M", bound=Message)

# Below any sane gRPC maximum receive size: these tests are about the service's answers, not
# about gRPC refusing a message before the service sees it.
MAX_MESSAGE_BYTES = 512 * 1024
# Each string, repeated or map field is huge with this chance (1 in N).
HUGE_ONE_IN = 25

SPECIAL_STRINGS = (
    "",
    " ",
    "\x00",
    "a\x00b",
    "\t",
    "\n",
    "\r\n",
    "\x07",
    "\x1b[31m",
    "\x7f",
    "\x85",  # NEL, a C1 control
    "\xa0",  # no-break space
    "\u200b",  # zero-width space (Cf)
    "\u200d",  # zero-width joiner (Cf)
    "\u202e",  # right-to-left override (Cf)
    "\u2028",  # line separator (Zl)
    "\ufeff",  # byte-order mark (Cf)
    "\ue000",  # private use (Co)
    "\uffff",  # a noncharacter
    "\U0010ffff",
    "\U0001f600",
    "e\u0301",  # a combining accent
    "[",
    "a[b]",
    "order_id",
    "%00",
    "../../etc/passwd",
    "' OR 1=1 --",
    "{CHECKOUT_SESSION_ID}",
    "http://[::1",
    "https://",
    "https://shop.example/\x00",
    "https://shop.example/done",
    "javascript:alert(1)",
    "txcd_\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668",  # Arabic-Indic digits
    "usd\n",
    "US\n",
    "card\n",
    "cs_test_a1",
    "price_demo_coffee_club",
    "a@b.co\x00",
)

small_text = st.one_of(
    st.sampled_from(SPECIAL_STRINGS),
    st.text(max_size=16),  # any code point but surrogates
    st.text(st.characters(max_codepoint=0x9F), max_size=16),  # ASCII, C0 and C1 controls
    st.text(st.characters(categories=["Cc", "Cf", "Co", "Zl", "Zp", "Zs"]), max_size=8),
)


def _huge(unit: str, size: int) -> str:
    return unit * max(1, size // len(unit.encode()))


huge_text = st.builds(
    _huge,
    st.sampled_from(["x", "\x00", "\xe9", "\U0001f600", "a\u0301", "\u202e", "ab\n"]),
    st.integers(1_000, 100_000),
)

INT64_EDGES = (
    0,
    1,
    -1,
    2**31 - 1,
    -(2**31),
    2**31,
    2**53 + 1,
    2**63 - 1,
    -(2**63),
    99_999_999,
    100_000_000,
    999_999,
    1_000_000,
    253_402_300_799,  # the last second a Timestamp may hold
    253_402_300_800,
    -62_135_596_801,
)
_RANGES = {
    FieldDescriptor.CPPTYPE_INT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.CPPTYPE_INT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.CPPTYPE_UINT32: (0, 2**32 - 1),
    FieldDescriptor.CPPTYPE_UINT64: (0, 2**64 - 1),
}


def _integers(cpp_type: int) -> st.SearchStrategy[int]:
    low, high = _RANGES[cpp_type]
    return st.one_of(
        st.sampled_from([n for n in INT64_EDGES if low <= n <= high]),
        st.integers(-3, 1_000),
        st.integers(low, high),
    )


class _Budget:
    """At most one huge part per message."""

    def __init__(self) -> None:
        self.huge_left = 1

    def huge(self, draw: st.DrawFn) -> bool:
        if self.huge_left and draw(st.integers(0, HUGE_ONE_IN - 1)) == 0:
            self.huge_left -= 1
            return True
        return False


def _is_map(field: FieldDescriptor) -> bool:
    return field.message_type is not None and field.message_type.GetOptions().map_entry


def _scalar(draw: st.DrawFn, field: Any, budget: _Budget) -> Any:
    if field.cpp_type == FieldDescriptor.CPPTYPE_STRING:
        return draw(huge_text if budget.huge(draw) else small_text)
    if field.cpp_type == FieldDescriptor.CPPTYPE_BOOL:
        return draw(st.booleans())
    if field.cpp_type == FieldDescriptor.CPPTYPE_ENUM:
        # Known values, and unknown ones: proto3 enums are open, so any int32 arrives.
        assert field.enum_type is not None
        known = [v.number for v in field.enum_type.values]
        return draw(st.one_of(st.sampled_from(known), _integers(FieldDescriptor.CPPTYPE_INT32)))
    if field.cpp_type in _RANGES:
        return draw(_integers(field.cpp_type))
    raise AssertionError(f"no strategy for {field.full_name} (cpp_type {field.cpp_type})")


def _fill(
    draw: st.DrawFn, message: Message, field: FieldDescriptor, presence: float, budget: _Budget
) -> None:
    if _is_map(field):
        assert field.message_type is not None
        key_field = field.message_type.fields_by_name["key"]
        value_field = field.message_type.fields_by_name["value"]
        entries = getattr(message, field.name)
        if budget.huge(draw):
            # Thousands of entries.
            for i in range(draw(st.integers(51, 3_000))):
                entries[f"k{i}"] = "v"
            return
        for _ in range(draw(st.integers(0, 4))):
            key = _scalar(draw, key_field, budget)
            entries[key] = _scalar(draw, value_field, budget)
        return
    if field.is_repeated:
        count = draw(st.integers(1_000, 3_000) if budget.huge(draw) else st.integers(0, 4))
        # Thousands of entries repeat a few drawn ones, to stay cheap to generate.
        drawn = [_value(draw, field, presence, budget) for _ in range(min(count, 3))]
        values = [drawn[i % len(drawn)] for i in range(count)] if drawn else []
        target = getattr(message, field.name)
        if field.message_type is not None:
            for value in values:
                target.add().CopyFrom(value)
        else:
            target.extend(values)
        return
    value = _value(draw, field, presence, budget)
    if field.message_type is not None:
        getattr(message, field.name).CopyFrom(value)
    else:
        setattr(message, field.name, value)


def _value(draw: st.DrawFn, field: FieldDescriptor, presence: float, budget: _Budget) -> Any:
    if field.message_type is not None:
        return _message(draw, field.message_type, presence, budget)
    return _scalar(draw, field, budget)


def _message(draw: st.DrawFn, descriptor: Any, presence: float, budget: _Budget) -> Message:
    message = message_factory.GetMessageClass(descriptor)()
    for field in descriptor.fields:
        if draw(st.floats(0, 1)) < presence:
            _fill(draw, message, field, presence, budget)
    return message


@st.composite
def hostile_messages(draw: st.DrawFn, kind: type[M], presence: float = 0.5) -> M:
    """A `kind` message whose fields are each set with chance `presence`, to hostile values."""
    message = _message(draw, kind.DESCRIPTOR, presence, _Budget())
    assert isinstance(message, kind)
    assume(message.ByteSize() <= MAX_MESSAGE_BYTES)
    return message


@st.composite
def lookup_requests(draw: st.DrawFn, kind: type[M]) -> M:
    """A lookup (GetSession, ExpireSession, WatchSession, ListSessions) with each string absent
    or hostile and each number absent, in range or extreme: a lookup has few fields, and one
    refused early would hide what a hostile string does further in."""
    budget = _Budget()
    message = kind()
    for field in kind.DESCRIPTOR.fields:
        if field.cpp_type == FieldDescriptor.CPPTYPE_STRING:
            value: Any = draw(st.one_of(st.just(""), st.just(None), small_text))
            if value is None:
                value = _scalar(draw, field, budget)
        elif field.cpp_type in _RANGES:
            value = draw(st.one_of(st.just(0), st.integers(1, 100), _integers(field.cpp_type)))
        else:
            value = _scalar(draw, field, budget)
        if value:
            setattr(message, field.name, value)
    return message


def string_field_paths(descriptor: Any, prefix: str = "") -> set[str]:
    """Every string in a message, as `line_items[].price_data.product_name`, with map keys and
    values as `metadata{key}` and `metadata{value}`: what a test must cover."""
    paths = set()
    for field in descriptor.fields:
        path = f"{prefix}{field.name}"
        if _is_map(field):
            for part in ("key", "value"):
                if field.message_type.fields_by_name[part].type == FieldDescriptor.TYPE_STRING:
                    paths.add(f"{path}{{{part}}}")
            continue
        if field.is_repeated:
            path += "[]"
        if field.type == FieldDescriptor.TYPE_STRING:
            paths.add(path)
        elif field.message_type is not None:
            paths |= string_field_paths(field.message_type, f"{path}.")
    return paths


# Valid requests, and where each string of CreateSessionRequest goes in one.
Req = api.CreateSessionRequest


def cart(**overrides: Any) -> Req:
    fields: dict[str, Any] = {
        "order_id": "order-1",
        "currency": "usd",
        "line_items": [
            Req.LineItem(
                price_data=Req.PriceData(unit_amount=1500, product_name="T-shirt"), quantity=2
            )
        ],
        "success_url": "https://shop.example/done",
    }
    fields.update(overrides)
    return Req(**fields)


def subscription(**overrides: Any) -> Req:
    recurring = Req.Recurring(interval=Req.Recurring.MONTH)
    fields: dict[str, Any] = {
        "mode": pb.Session.SUBSCRIPTION,
        "line_items": [
            Req.LineItem(
                price_data=Req.PriceData(
                    unit_amount=900, product_name="Coffee club", recurring=recurring
                ),
                quantity=1,
            )
        ],
    }
    return cart(**{**fields, **overrides})


PRICE = Req.PriceData(unit_amount=500, product_name="Mug")


def line(**fields: Any) -> list[Req.LineItem]:
    return [Req.LineItem(**{"quantity": 1, **fields})]


def priced(**fields: Any) -> list[Req.LineItem]:
    return line(price_data=Req.PriceData(**{"unit_amount": 500, **fields}))


def rate(**fields: Any) -> list[Req.ShippingOption]:
    return [
        Req.ShippingOption(shipping_rate_data=Req.ShippingRateData(**{"amount": 500, **fields}))
    ]


Build = Callable[[str], Req]


def text_field(**fields: Any) -> Req.CustomField:
    given: dict[str, Any] = {"key": "giftnote", "label": "Gift note", "type": Req.CustomField.TEXT}
    return Req.CustomField(**{**given, **fields})


def dropdown_field(*options: Req.DropdownOption, default_value: str = "") -> Req.CustomField:
    return text_field(
        type=Req.CustomField.DROPDOWN,
        dropdown=Req.Dropdown(options=options, default_value=default_value),
    )


def custom_text(name: str) -> Build:
    """A cart with `name`'s custom text, and what that text stands beside: the terms of service
    checkbox (which needs a terms of service URL in the Stripe account), or the shipping
    address."""
    beside: dict[str, dict[str, Any]] = {
        "terms_of_service_acceptance": {
            "consent_collection": Req.ConsentCollection(
                terms_of_service=Req.ConsentCollection.TERMS_OF_SERVICE_REQUIRED
            )
        },
        "shipping_address": {
            "shipping_address_collection": Req.ShippingAddressCollection(allowed_countries=["US"])
        },
    }
    needs = beside.get(name, {})

    def build(value: str) -> Req:
        return cart(custom_text=Req.CustomText(**{name: value}), **needs)

    return build


def invoice(**data: Any) -> Req.InvoiceCreation:
    return Req.InvoiceCreation(enabled=True, invoice_data=Req.InvoiceData(**data))


# Each string of CreateSessionRequest (as tests.hostile.string_field_paths names it): how to put
# a value there in an otherwise valid request, the field an error names, and a valid value.
STRINGS: dict[str, tuple[Build, str, str]] = {
    "order_id": (lambda v: cart(order_id=v), "order_id", "order-1001"),
    "request_id": (lambda v: cart(request_id=v), "request_id", "4a1e7d9c-req"),
    "currency": (lambda v: cart(currency=v), "currency", "eur"),
    "success_url": (lambda v: cart(success_url=v), "success_url", "https://shop.example/ok"),
    "cancel_url": (lambda v: cart(cancel_url=v), "cancel_url", "https://shop.example/cart"),
    "return_url": (
        lambda v: cart(ui_mode=pb.Session.EMBEDDED_PAGE, success_url="", return_url=v),
        "return_url",
        "https://shop.example/return?s={CHECKOUT_SESSION_ID}",
    ),
    "customer_email": (lambda v: cart(customer_email=v), "customer_email", "ada@shop.example"),
    "metadata{key}": (lambda v: cart(metadata={v: "c-77"}), "metadata[", "cart"),
    "metadata{value}": (lambda v: cart(metadata={"cart": v}), "metadata[cart]", "c-77 \U0001f6d2"),
    "customer_id": (lambda v: cart(customer_id=v), "customer_id", "cus_demo_ada"),
    "locale": (lambda v: cart(locale=v), "locale", "pt-BR"),
    "allowed_payment_method_types[]": (
        lambda v: cart(allowed_payment_method_types=["card", v]),
        "allowed_payment_method_types[1]",
        "sepa_debit",
    ),
    "line_items[].price_id": (
        lambda v: cart(line_items=line(price_id=v)),
        "line_items[0].price_id",
        "price_1Q2w3E",
    ),
    "line_items[].price_data.product_name": (
        lambda v: cart(line_items=priced(product_name=v)),
        "line_items[0].price_data.product_name",
        "Caf\xe9 \u202b\u05e7\u05e4\u05d4\u202c mug \U0001f375",
    ),
    "line_items[].price_data.product_description": (
        lambda v: cart(line_items=priced(product_name="Mug", product_description=v)),
        "line_items[0].price_data.product_description",
        "Stoneware.\n\tDishwasher safe.",
    ),
    "line_items[].price_data.product_images[]": (
        lambda v: cart(line_items=priced(product_name="Mug", product_images=[v])),
        "line_items[0].price_data.product_images[0]",
        "https://shop.example/mug.png",
    ),
    "line_items[].price_data.tax_code": (
        lambda v: cart(line_items=priced(product_name="Mug", tax_code=v)),
        "line_items[0].price_data.tax_code",
        "txcd_99999999",
    ),
    "line_items[].tax_rate_ids[]": (
        lambda v: cart(line_items=line(price_data=PRICE, tax_rate_ids=[v])),
        "line_items[0].tax_rate_ids[0]",
        "txr_demo_us_sales_tax",
    ),
    "discounts[].coupon": (
        lambda v: cart(discounts=[Req.Discount(coupon=v)]),
        "discounts[0].coupon",
        "SUMMER10",
    ),
    "discounts[].promotion_code": (
        lambda v: cart(discounts=[Req.Discount(promotion_code=v)]),
        "discounts[0].promotion_code",
        "promo_demo_welcome5",
    ),
    "shipping_address_collection.allowed_countries[]": (
        lambda v: cart(
            shipping_address_collection=Req.ShippingAddressCollection(allowed_countries=[v])
        ),
        "shipping_address_collection.allowed_countries[0]",
        "DE",
    ),
    "shipping_options[].shipping_rate_id": (
        lambda v: cart(shipping_options=[Req.ShippingOption(shipping_rate_id=v)]),
        "shipping_options[0].shipping_rate_id",
        "shr_demo_ground",
    ),
    "shipping_options[].shipping_rate_data.display_name": (
        lambda v: cart(shipping_options=rate(display_name=v)),
        "shipping_options[0].shipping_rate_data.display_name",
        "Express \u2708",
    ),
    "shipping_options[].shipping_rate_data.tax_code": (
        lambda v: cart(shipping_options=rate(display_name="Ground", tax_code=v)),
        "shipping_options[0].shipping_rate_data.tax_code",
        "txcd_92010001",
    ),
    "subscription_data.description": (
        lambda v: subscription(subscription_data=Req.SubscriptionData(description=v)),
        "subscription_data.description",
        "Coffee club,\nmonthly",
    ),
    "subscription_data.metadata{key}": (
        lambda v: subscription(subscription_data=Req.SubscriptionData(metadata={v: "x"})),
        "subscription_data.metadata[",
        "plan",
    ),
    "subscription_data.metadata{value}": (
        lambda v: subscription(subscription_data=Req.SubscriptionData(metadata={"plan": v})),
        "subscription_data.metadata[plan]",
        "basic",
    ),
    "line_items[].metadata{key}": (
        lambda v: cart(line_items=line(price_data=PRICE, metadata={v: "x"})),
        "line_items[0].metadata[",
        "sku",
    ),
    "line_items[].price_data.product_metadata{key}": (
        lambda v: cart(line_items=priced(product_name="Mug", product_metadata={v: "x"})),
        "line_items[0].price_data.product_metadata[",
        "sku",
    ),
    "line_items[].metadata{value}": (
        lambda v: cart(line_items=line(price_data=PRICE, metadata={"sku": v})),
        "line_items[0].metadata[sku]",
        "MUG-BLUE-350",
    ),
    "line_items[].price_data.product_metadata{value}": (
        lambda v: cart(line_items=priced(product_name="Mug", product_metadata={"sku": v})),
        "line_items[0].price_data.product_metadata[sku]",
        "MUG-BLUE-350",
    ),
    "line_items[].price_data.product_id": (
        lambda v: cart(line_items=priced(product_id=v)),
        "line_items[0].price_data.product_id",
        "sku_mug_blue",
    ),
    "shipping_options[].shipping_rate_data.metadata{key}": (
        lambda v: cart(shipping_options=rate(display_name="Ground", metadata={v: "x"})),
        "shipping_options[0].shipping_rate_data.metadata[",
        "carrier",
    ),
    "shipping_options[].shipping_rate_data.metadata{value}": (
        lambda v: cart(shipping_options=rate(display_name="Ground", metadata={"carrier": v})),
        "shipping_options[0].shipping_rate_data.metadata[carrier]",
        "DHL",
    ),
    "custom_fields[].key": (
        lambda v: cart(custom_fields=[text_field(key=v)]),
        "custom_fields[0].key",
        "giftnote",
    ),
    "custom_fields[].label": (
        lambda v: cart(custom_fields=[text_field(label=v)]),
        "custom_fields[0].label",
        "Gift note 🎁",
    ),
    "custom_fields[].text.default_value": (
        lambda v: cart(custom_fields=[text_field(text=Req.TextSettings(default_value=v))]),
        "custom_fields[0].text.default_value",
        "Happy birthday!",
    ),
    "custom_fields[].numeric.default_value": (
        lambda v: cart(
            custom_fields=[
                text_field(type=Req.CustomField.NUMERIC, numeric=Req.TextSettings(default_value=v))
            ]
        ),
        "custom_fields[0].numeric.default_value",
        "4711",
    ),
    "custom_fields[].dropdown.options[].label": (
        lambda v: cart(custom_fields=[dropdown_field(Req.DropdownOption(label=v, value="blue"))]),
        "custom_fields[0].dropdown.options[0].label",
        "Blue 💙",
    ),
    "custom_fields[].dropdown.options[].value": (
        lambda v: cart(custom_fields=[dropdown_field(Req.DropdownOption(label="Blue", value=v))]),
        "custom_fields[0].dropdown.options[0].value",
        "blue",
    ),
    "custom_fields[].dropdown.default_value": (
        lambda v: cart(
            custom_fields=[
                dropdown_field(Req.DropdownOption(label="Blue", value="blue"), default_value=v)
            ]
        ),
        "custom_fields[0].dropdown.default_value",
        "blue",
    ),
    **{
        f"custom_text.{name}": (
            custom_text(name),
            f"custom_text.{name}",
            "Orders ship within 2 days.\nThank you!",
        )
        for name in ("submit", "after_submit", "shipping_address", "terms_of_service_acceptance")
    },
    "invoice_creation.invoice_data.description": (
        lambda v: cart(invoice_creation=invoice(description=v)),
        "invoice_creation.invoice_data.description",
        "Order 1001,\nthank you",
    ),
    "invoice_creation.invoice_data.footer": (
        lambda v: cart(invoice_creation=invoice(footer=v)),
        "invoice_creation.invoice_data.footer",
        "Shop GmbH \u00b7 Berlin",
    ),
    "invoice_creation.invoice_data.custom_fields[].name": (
        lambda v: cart(
            invoice_creation=invoice(custom_fields=[Req.InvoiceCustomField(name=v, value="x")])
        ),
        "invoice_creation.invoice_data.custom_fields[0].name",
        "PO number",
    ),
    "invoice_creation.invoice_data.custom_fields[].value": (
        lambda v: cart(
            invoice_creation=invoice(custom_fields=[Req.InvoiceCustomField(name="PO", value=v)])
        ),
        "invoice_creation.invoice_data.custom_fields[0].value",
        "PO-4711",
    ),
    "invoice_creation.invoice_data.metadata{key}": (
        lambda v: cart(invoice_creation=invoice(metadata={v: "x"})),
        "invoice_creation.invoice_data.metadata[",
        "ledger",
    ),
    "invoice_creation.invoice_data.metadata{value}": (
        lambda v: cart(invoice_creation=invoice(metadata={"ledger": v})),
        "invoice_creation.invoice_data.metadata[ledger]",
        "EU-2026",
    ),
    "invoice_creation.invoice_data.account_tax_ids[]": (
        lambda v: cart(invoice_creation=invoice(account_tax_ids=[v])),
        "invoice_creation.invoice_data.account_tax_ids[0]",
        "txi_1Nb2C3",
    ),
    "payment_intent_data.description": (
        lambda v: cart(payment_intent_data=Req.PaymentIntentData(description=v)),
        "payment_intent_data.description",
        "Order 1001:\n2 T-shirts",
    ),
    "payment_intent_data.statement_descriptor_suffix": (
        lambda v: cart(payment_intent_data=Req.PaymentIntentData(statement_descriptor_suffix=v)),
        "payment_intent_data.statement_descriptor_suffix",
        "ORDER 1001",
    ),
    "payment_intent_data.receipt_email": (
        lambda v: cart(payment_intent_data=Req.PaymentIntentData(receipt_email=v)),
        "payment_intent_data.receipt_email",
        "ada@shop.example",
    ),
    "excluded_payment_method_types[]": (
        lambda v: cart(excluded_payment_method_types=["affirm", v]),
        "excluded_payment_method_types[1]",
        "klarna",
    ),
}
# Free text shown to customers may hold tabs and line breaks; ids and keys may not.
FREE_TEXT = {
    "line_items[].price_data.product_name",
    "line_items[].price_data.product_description",
    "shipping_options[].shipping_rate_data.display_name",
    "subscription_data.description",
    "metadata{value}",
    "subscription_data.metadata{value}",
    "line_items[].metadata{value}",
    "line_items[].price_data.product_metadata{value}",
    "shipping_options[].shipping_rate_data.metadata{value}",
    "custom_fields[].label",
    "custom_fields[].text.default_value",
    "custom_fields[].dropdown.options[].label",
    "custom_text.submit",
    "custom_text.after_submit",
    "custom_text.shipping_address",
    "custom_text.terms_of_service_acceptance",
    "invoice_creation.invoice_data.description",
    "invoice_creation.invoice_data.footer",
    "invoice_creation.invoice_data.custom_fields[].name",
    "invoice_creation.invoice_data.custom_fields[].value",
    "invoice_creation.invoice_data.metadata{value}",
    "payment_intent_data.description",
}
# Where surrounding blanks are dropped before use, a line break at the end is no problem.
STRIPPED = {"order_id", "currency"}
