"""What `POST /v1/checkout/sessions` accepts: stripe-python 16.1.0's `SessionCreateParams`,
minus the parameters the sandbox does not model (`NOT_MODELLED`), which it refuses."""

from decimal import Decimal

from .catalog import (
    INTERVALS,
    MAX_UNIT_AMOUNT,
    PRODUCT_DATA,
    STATEMENT_DESCRIPTOR_MAX_LENGTH,
    TAX_BEHAVIORS,
    TRIAL_PERIOD_DAYS_MAX,
)
from .params import (
    EXPAND,
    Array,
    Boolean,
    Choice,
    Currency,
    Email,
    Integer,
    Metadata,
    Number,
    Text,
    Url,
    hash_of,
)
from .shipping import SHIPPING_RATE_DATA

UI_MODES = ("elements", "embedded_page", "form", "hosted_page")

# A line item's `adjustable_quantity`: `maximum` is 99 unless given, and at most 999999
# (https://docs.stripe.com/api/checkout/sessions/create#create_checkout_session-line_items-adjustable_quantity).
ADJUSTABLE_QUANTITY_DEFAULT_MAXIMUM = 99
ADJUSTABLE_QUANTITY_LIMIT = 999_999
# Tax rates on one line item, as the service assumes too (TAX_RATES_MAX in
# service/domain/validation.py); Stripe's guide: https://docs.stripe.com/payments/checkout/use-manual-tax-rates
LINE_ITEM_TAX_RATES_MAX = 5
# Lengths from the `maxLength`s of Stripe's OpenAPI description (https://github.com/stripe/openapi).
# One known difference: that description allows 1000 characters for the `description` of
# `payment_intent_data` and `setup_intent_data`, and the sandbox applies 500 to those as to
# `subscription_data`'s, so it is stricter than Stripe there.
DESCRIPTION_MAX_LENGTH = 500
CLIENT_REFERENCE_ID_MAX_LENGTH = 200
INTEGRATION_IDENTIFIER_MAX_LENGTH = 200

# From SessionCreateParams.allowed_payment_method_types / shipping_address_collection (16.1.0),
# as space-separated text: one list element per line would bury the module.
PAYMENT_METHOD_TYPES = (  # noqa: SIM905
    "acss_debit affirm afterpay_clearpay alipay alma amazon_pay au_becs_debit bacs_debit "
    "bancontact billie bizum blik boleto card cashapp crypto customer_balance eps fpx giropay "
    "grabpay ideal kakao_pay klarna konbini kr_card link mb_way mobilepay multibanco naver_pay "
    "nz_bank_account oxxo pay_by_bank payco paynow paypal paypay payto pix promptpay revolut_pay "
    "samsung_pay satispay scalapay sepa_debit sequra sofort sunbit swish twint upi "
    "us_bank_account wechat_pay zip"
).split()
COUNTRIES = (  # noqa: SIM905
    "AC AD AE AF AG AI AL AM AO AQ AR AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ "
    "BR BS BT BV BW BY BZ CA CD CF CG CH CI CK CL CM CN CO CR CV CW CY CZ DE DJ DK DM DO DZ EC "
    "EE EG EH ER ES ET FI FJ FK FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY "
    "HK HN HR HT HU ID IE IL IM IN IO IQ IS IT JE JM JO JP KE KG KH KI KM KN KR KW KY KZ LA LB "
    "LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MK ML MM MN MO MQ MR MS MT MU MV MW MX MY MZ "
    "NA NC NE NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PY QA RE RO RS RU "
    "RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SZ TA TC TD TF TG TH TJ TK TL "
    "TM TN TO TR TT TV TW TZ UA UG US UY UZ VA VC VE VG VN VU WF WS XK YE YT ZA ZM ZW ZZ"
).split()
# Stripe's locales (https://docs.stripe.com/api/checkout/sessions/create#create_checkout_session-locale;
# SessionCreateParams.locale in stripe-python 16.1.0). The service keeps its own copy in
# service/domain/stripe_tables.py on purpose: the sandbox stands in for Stripe, so neither side may
# import the other, and with one shared list a wrong entry would pass the service's check and the
# sandbox's alike, so no test could catch it.
LOCALES = (  # noqa: SIM905
    "auto bg cs da de el en en-GB es es-419 et fi fil fr fr-CA hi-IN hr hu id it ja ko lt lv ms "
    "mt nb nl pl pt pt-BR ro ru sk sl sv th tr vi zh zh-HK zh-TW"
).split()

# Real Stripe parameters the sandbox does not model. Refusing them loudly beats accepting them
# and silently behaving unlike Stripe; model one here when the service starts sending it.
NOT_MODELLED = frozenset(
    [
        "branding_settings",
        "customer_account",
        "managed_payments",
        "optional_items",
        "payment_method_configuration",
        "payment_method_data",
        "permissions",
        "wallet_options",
    ]
)

# Custom fields (https://docs.stripe.com/payments/checkout/custom-fields; SessionCreateParams
# .custom_fields in stripe-python 16.1.0): up to 3; a key is alphanumeric and up to 200
# characters, a label up to 100, a dropdown has up to 200 options whose labels and values are up
# to 100 characters; text and numeric entries are at most 255 characters long.
CUSTOM_FIELDS_MAX = 3
CUSTOM_FIELD_KEY_MAX_LENGTH = 200
CUSTOM_FIELD_LABEL_MAX_LENGTH = 100
DROPDOWN_OPTIONS_MAX = 200
DROPDOWN_OPTION_MAX_LENGTH = 100
CUSTOM_FIELD_VALUE_MAX_LENGTH = 255
# `custom_text[*][message]`: up to 1200 characters.
CUSTOM_TEXT_MAX_LENGTH = 1200
# `invoice_creation[invoice_data]`: up to 4 custom fields of a 40-character name and a
# 140-character value, a 1500-character description, a 5000-character footer
# (https://docs.stripe.com/api/checkout/sessions/create#create_checkout_session-invoice_creation).
INVOICE_CUSTOM_FIELDS_MAX = 4
INVOICE_CUSTOM_FIELD_NAME_MAX_LENGTH = 40
INVOICE_CUSTOM_FIELD_VALUE_MAX_LENGTH = 140
INVOICE_DESCRIPTION_MAX_LENGTH = 1500
INVOICE_FOOTER_MAX_LENGTH = 5000

_AUTO_NEVER = Choice(("auto", "never"))
_LENGTH = Integer(0, CUSTOM_FIELD_VALUE_MAX_LENGTH)
_TYPED_ENTRY = hash_of(
    default_value=Text(CUSTOM_FIELD_VALUE_MAX_LENGTH),
    maximum_length=_LENGTH,
    minimum_length=_LENGTH,
)
_CUSTOM_FIELD = hash_of(
    "key",
    "label",
    "type",
    dropdown=hash_of(
        "options",
        default_value=Text(DROPDOWN_OPTION_MAX_LENGTH),
        options=Array(
            hash_of(
                "label",
                "value",
                label=Text(DROPDOWN_OPTION_MAX_LENGTH, non_blank=True),
                value=Text(DROPDOWN_OPTION_MAX_LENGTH),
            ),
            max_items=DROPDOWN_OPTIONS_MAX,
        ),
    ),
    key=Text(CUSTOM_FIELD_KEY_MAX_LENGTH),
    label=hash_of(
        "custom",
        "type",
        custom=Text(CUSTOM_FIELD_LABEL_MAX_LENGTH, non_blank=True),
        type=Choice(("custom",)),
    ),
    numeric=_TYPED_ENTRY,
    optional=Boolean(),
    text=_TYPED_ENTRY,
    type=Choice(("dropdown", "numeric", "text")),
)
_MESSAGE = hash_of("message", message=Text(CUSTOM_TEXT_MAX_LENGTH, non_blank=True))
_NAME_COLLECTION = hash_of("enabled", enabled=Boolean(), optional=Boolean())
_INVOICE_DATA = hash_of(
    account_tax_ids=Array(Text()),
    custom_fields=Array(
        hash_of(
            "name",
            "value",
            name=Text(INVOICE_CUSTOM_FIELD_NAME_MAX_LENGTH, non_blank=True),
            value=Text(INVOICE_CUSTOM_FIELD_VALUE_MAX_LENGTH, non_blank=True),
        ),
        max_items=INVOICE_CUSTOM_FIELDS_MAX,
    ),
    description=Text(INVOICE_DESCRIPTION_MAX_LENGTH),
    footer=Text(INVOICE_FOOTER_MAX_LENGTH),
    issuer=hash_of("type", type=Choice(("account", "self")), account=Text()),
    metadata=Metadata(),
    rendering_options=hash_of(
        amount_tax_display=Choice(("exclude_tax", "include_inclusive_tax")), template=Text()
    ),
)
_PRICE_DATA = hash_of(
    "currency",
    currency=Currency(),
    product=Text(),
    product_data=PRODUCT_DATA,
    recurring=hash_of("interval", interval=Choice(INTERVALS), interval_count=Integer(1)),
    tax_behavior=Choice(TAX_BEHAVIORS),
    unit_amount=Integer(0, MAX_UNIT_AMOUNT),
    unit_amount_decimal=Number(Decimal(0), Decimal(MAX_UNIT_AMOUNT)),
)
_LINE_ITEM = hash_of(
    adjustable_quantity=hash_of(
        "enabled",
        enabled=Boolean(),
        minimum=Integer(0, ADJUSTABLE_QUANTITY_LIMIT),
        maximum=Integer(1, ADJUSTABLE_QUANTITY_LIMIT),
    ),
    metadata=Metadata(),
    price=Text(),
    price_data=_PRICE_DATA,
    quantity=Integer(1),
    tax_rates=Array(Text(), max_items=LINE_ITEM_TAX_RATES_MAX),
)
_METADATA_ONLY = {"metadata": Metadata(), "description": Text(DESCRIPTION_MAX_LENGTH)}
SESSION_CREATE = hash_of(
    adaptive_pricing=hash_of(enabled=Boolean()),
    after_expiration=hash_of(
        recovery=hash_of("enabled", enabled=Boolean(), allow_promotion_codes=Boolean())
    ),
    allow_promotion_codes=Boolean(),
    allowed_payment_method_types=Array(Choice(tuple(PAYMENT_METHOD_TYPES))),
    automatic_tax=hash_of(
        "enabled",
        enabled=Boolean(),
        liability=hash_of("type", type=Choice(("account", "self")), account=Text()),
    ),
    billing_address_collection=Choice(("auto", "required")),
    cancel_url=Url(),
    client_reference_id=Text(CLIENT_REFERENCE_ID_MAX_LENGTH),
    consent_collection=hash_of(
        payment_method_reuse_agreement=hash_of("position", position=Choice(("auto", "hidden"))),
        promotions=Choice(("auto", "none")),
        terms_of_service=Choice(("none", "required")),
    ),
    currency=Currency(),
    custom_fields=Array(_CUSTOM_FIELD, max_items=CUSTOM_FIELDS_MAX),
    custom_text=hash_of(
        after_submit=_MESSAGE,
        shipping_address=_MESSAGE,
        submit=_MESSAGE,
        terms_of_service_acceptance=_MESSAGE,
    ),
    customer=Text(),
    customer_creation=Choice(("always", "if_required")),
    customer_email=Email(),
    customer_update=hash_of(address=_AUTO_NEVER, name=_AUTO_NEVER, shipping=_AUTO_NEVER),
    discounts=Array(hash_of(coupon=Text(), promotion_code=Text())),
    excluded_payment_method_types=Array(Choice(tuple(PAYMENT_METHOD_TYPES))),
    expand=EXPAND,
    expires_at=Integer(),
    integration_identifier=Text(INTEGRATION_IDENTIFIER_MAX_LENGTH),
    invoice_creation=hash_of("enabled", enabled=Boolean(), invoice_data=_INVOICE_DATA),
    line_items=Array(_LINE_ITEM),
    locale=Choice(tuple(LOCALES)),
    metadata=Metadata(),
    mode=Choice(("payment", "setup", "subscription")),
    name_collection=hash_of(business=_NAME_COLLECTION, individual=_NAME_COLLECTION),
    origin_context=Choice(("mobile_app", "web")),
    payment_intent_data=hash_of(
        **_METADATA_ONLY,
        capture_method=Choice(("automatic", "automatic_async", "manual")),
        receipt_email=Email(),
        setup_future_usage=Choice(("off_session", "on_session")),
        statement_descriptor=Text(STATEMENT_DESCRIPTOR_MAX_LENGTH),
        statement_descriptor_suffix=Text(STATEMENT_DESCRIPTOR_MAX_LENGTH),
    ),
    payment_method_collection=Choice(("always", "if_required")),
    # Of the card's options, only 3D Secure is modelled (`three_d_secure.py`); the others are
    # refused as unknown.
    payment_method_options=hash_of(
        card=hash_of(request_three_d_secure=Choice(("any", "automatic", "challenge")))
    ),
    phone_number_collection=hash_of("enabled", enabled=Boolean()),
    redirect_on_completion=Choice(("always", "if_required", "never")),
    return_url=Url(),
    saved_payment_method_options=hash_of(
        allow_redisplay_filters=Array(Choice(("always", "limited", "unspecified"))),
        payment_method_remove=Choice(("disabled", "enabled")),
        payment_method_save=Choice(("disabled", "enabled")),
    ),
    setup_intent_data=hash_of(**_METADATA_ONLY),
    shipping_address_collection=hash_of(
        "allowed_countries", allowed_countries=Array(Choice(tuple(COUNTRIES)))
    ),
    shipping_options=Array(hash_of(shipping_rate=Text(), shipping_rate_data=SHIPPING_RATE_DATA)),
    submit_type=Choice(("auto", "book", "donate", "pay", "subscribe")),
    subscription_data=hash_of(
        **_METADATA_ONLY,
        trial_period_days=Integer(1, TRIAL_PERIOD_DAYS_MAX),
        trial_end=Integer(),
        trial_settings=hash_of(
            "end_behavior",
            end_behavior=hash_of(
                "missing_payment_method",
                missing_payment_method=Choice(("cancel", "create_invoice", "pause")),
            ),
        ),
    ),
    success_url=Url(),
    tax_id_collection=hash_of(
        "enabled", enabled=Boolean(), required=Choice(("if_supported", "never"))
    ),
    ui_mode=Choice(UI_MODES),
)
