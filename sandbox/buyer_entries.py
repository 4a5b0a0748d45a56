"""What the customer enters on Checkout's page besides the card, checked as the page checks it
before it lets them pay. The hosted page's form and `POST /_sandbox/checkout/sessions/{id}/pay`
take the same names:

- `phone`, when `phone_number_collection[enabled]` (required then; digits, spaces, dashes and
  brackets, with an optional leading `+`, kept as `+` and 7 to 15 digits, E.164's length);
- `business_name` and `individual_name`, when `name_collection` enables them (required unless
  `optional`); a business name also with `tax_id_collection`;
- `tax_id[type]` and `tax_id[value]` (one of Stripe's tax ID types), when `tax_id_collection` is
  enabled (required when `required` is `if_supported`; the sandbox takes every country to
  support one);
- `custom_fields[KEY]`: each custom field's value (required unless `optional`; a field's
  `default_value` counts as entered): text of `minimum_length` to `maximum_length` characters
  (255 at most), digits only for `numeric`, an option's `value` for `dropdown`;
- `consent[terms_of_service]=accepted` (required with `consent_collection[terms_of_service]`
  `required`) and `consent[promotions]` `opt_in` or `opt_out` (with `promotions=auto`; left
  unticked, it is `opt_out`);
- the address (`line1`, `line2`, `city`, `state`, `postal_code`, `country`): with
  `billing_address_collection=required`, `line1`, `city`, `postal_code` and `country` are
  required.

A missing required entry is `parameter_missing` with the entry's name as `param`; an entry the
session does not ask for, or a malformed one, is refused too. The page collects an email only
when the session knows none; the sandbox never requires one (the control route pays without).
"""

import re
from dataclasses import dataclass, field
from typing import Any

from .customers import NAME_MAX_LENGTH, PHONE_MAX_LENGTH
from .errors import invalid, parameter_missing
from .params import Choice, Spec, Text, child, hash_of

# Stripe's tax ID types (Session.CustomerDetails.TaxId.type in stripe-python 16.1.0).
TAX_ID_TYPES = (  # noqa: SIM905
    "ad_nrt ae_trn al_tin am_tin ao_tin ar_cuit au_abn au_acn au_arn au_wpn aw_tin az_tin ba_tin "
    "bb_tin bd_bin bf_ifu bg_uic bh_vat bj_ifu bo_tin br_cnpj br_cpf bs_tin bw_vat by_tin ca_bn "
    "ca_gst_hst ca_pst_bc ca_pst_mb ca_pst_sk ca_qst cd_nif ch_uid ch_vat ci_vat cl_tin cm_niu "
    "cn_tin co_nit cr_tin cv_nif cz_dic de_stn do_rcn ec_ruc eg_tin es_cif et_tin eu_oss_vat "
    "eu_vat fo_vat fr_siren fr_siret fr_spi gb_vat ge_vat gh_tin gi_tin gn_nif hk_br hr_oib "
    "hu_tin ic_nif id_npwp il_vat in_gst is_kt is_vat it_cf jp_cn jp_rn jp_trn ke_pin kg_tin "
    "kh_tin kr_brn kz_bin la_tin li_uid li_vat lk_vat ma_vat md_cf md_vat me_pib mk_vat mr_nif "
    "mu_vat mx_rfc my_frp my_itn my_sst mz_nuit ng_tin no_vat no_voec np_pan nz_bn nz_gst "
    "om_vat pe_ruc ph_tin pl_nip pt_nif py_ruc ro_tin rs_pib ru_inn ru_kpp sa_vat sg_gst sg_uen "
    "si_tin sm_coe sn_ninea sr_fin sv_nit th_vat tj_tin tr_tin tt_bir tt_vat tw_vat tz_vat "
    "ua_vat ug_tin us_ein uy_ruc uz_tin uz_vat ve_rif vn_tin za_vat zm_tin zw_tin"
).split()
# The `maxLength` of Stripe's OpenAPI description (https://github.com/stripe/openapi).
TAX_ID_VALUE_MAX_LENGTH = 256
_PHONE = re.compile(r"\+?[0-9 ()\-]+")
_PHONE_DIGITS = (7, 15)
_REQUIRED_ADDRESS = ("line1", "city", "postal_code", "country")


class Entries(Spec):
    """`custom_fields[KEY]=value`: the values by key."""

    def coerce(self, value: Any, path: str) -> Any:
        if not isinstance(value, dict):
            raise invalid(f"Invalid hash: {path} must be a hash of strings", path)
        for key, item in value.items():
            if not isinstance(item, str):
                raise invalid(f"Invalid string: {child(path, key)} must be a string", path)
        return {key: item for key, item in value.items() if item}


ENTRY_FIELDS: dict[str, Spec] = {
    "phone": Text(PHONE_MAX_LENGTH),
    "business_name": Text(NAME_MAX_LENGTH, non_blank=True),
    "individual_name": Text(NAME_MAX_LENGTH, non_blank=True),
    "tax_id": hash_of(
        "type",
        "value",
        type=Choice(tuple(TAX_ID_TYPES)),
        value=Text(TAX_ID_VALUE_MAX_LENGTH, non_blank=True),
    ),
    "custom_fields": Entries(),
    "consent": hash_of(
        terms_of_service=Choice(("accepted",)), promotions=Choice(("opt_in", "opt_out"))
    ),
}


@dataclass
class BuyerEntries:
    """What the customer entered, checked against what the session collects."""

    phone: str | None = None
    business_name: str | None = None
    individual_name: str | None = None
    tax_ids: list[dict[str, str]] = field(default_factory=list)
    custom_values: dict[str, str | None] = field(default_factory=dict)
    consent: dict[str, str | None] | None = None


def collect(session: dict[str, Any], details: dict[str, Any]) -> BuyerEntries:
    """Check `details` (parsed with `ENTRY_FIELDS`) as the page does before it lets the
    customer pay; refuses a missing required entry, or one the session does not ask for."""
    entries = BuyerEntries(
        phone=_phone(session, details.get("phone")),
        custom_values=_custom_values(session, details.get("custom_fields", {})),
        consent=_consent(session, details.get("consent")),
    )
    entries.business_name, entries.individual_name = _names(session, details)
    tax_id = details.get("tax_id")
    tax_ids = session["tax_id_collection"]
    if tax_id is not None and not tax_ids["enabled"]:
        raise invalid("This Checkout Session does not collect tax IDs.", "tax_id")
    if tax_id is None and tax_ids["enabled"] and tax_ids["required"] == "if_supported":
        raise parameter_missing("tax_id")
    entries.tax_ids = [] if tax_id is None else [{"type": tax_id["type"], "value": tax_id["value"]}]
    if session["billing_address_collection"] == "required":
        for name in _REQUIRED_ADDRESS:
            if not details.get(name):
                raise parameter_missing(name)
    return entries


def _phone(session: dict[str, Any], phone: str | None) -> str | None:
    collected = session["phone_number_collection"]["enabled"]
    if phone is None:
        if collected:
            raise parameter_missing("phone")
        return None
    if not collected:
        raise invalid("This Checkout Session does not collect a phone number.", "phone")
    digits = re.sub(r"\D", "", phone)
    low, high = _PHONE_DIGITS
    if not _PHONE.fullmatch(phone) or not low <= len(digits) <= high:
        raise invalid(f"`{phone}` is not a valid phone number.", "phone")
    return f"+{digits}"


def _names(session: dict[str, Any], details: dict[str, Any]) -> tuple[str | None, str | None]:
    collection = session["name_collection"] or {}
    names = []
    for kind in ("business", "individual"):
        entry = f"{kind}_name"
        setting = collection.get(kind) or {"enabled": False, "optional": True}
        allowed = setting["enabled"] or (
            kind == "business" and session["tax_id_collection"]["enabled"]
        )
        if entry in details and not allowed:
            raise invalid(f"This Checkout Session does not collect a {kind} name.", entry)
        if entry not in details and setting["enabled"] and not setting["optional"]:
            raise parameter_missing(entry)
        names.append(details.get(entry))
    return names[0], names[1]


def _custom_values(session: dict[str, Any], given: dict[str, str]) -> dict[str, str | None]:
    fields = {custom["key"]: custom for custom in session["custom_fields"]}
    for key in given:
        if key not in fields:
            raise invalid(f"This Checkout Session has no custom field `{key}`.", "custom_fields")
    values: dict[str, str | None] = {}
    for key, custom in fields.items():
        param = f"custom_fields[{key}]"
        typed = custom[custom["type"]]
        value = given.get(key, typed["default_value"])
        if value is None and not custom["optional"]:
            raise parameter_missing(param)
        if value is not None:
            _check_value(custom, typed, value, param)
        values[key] = value
    return values


def _check_value(custom: dict[str, Any], typed: dict[str, Any], value: str, param: str) -> None:
    if custom["type"] == "dropdown":
        if value not in [option["value"] for option in typed["options"]]:
            raise invalid(f"`{value}` is not one of the field's options.", param)
        return
    if custom["type"] == "numeric" and not value.isdigit():
        raise invalid("This field accepts digits only.", param)
    low = typed["minimum_length"] or 0
    high = typed["maximum_length"] or 255
    if not low <= len(value) <= high:
        raise invalid(f"This field takes {low} to {high} characters.", param)


def _consent(session: dict[str, Any], given: dict[str, str] | None) -> dict[str, str | None] | None:
    collection = session["consent_collection"]
    if collection is None:
        if given:
            raise invalid("This Checkout Session does not collect consent.", "consent")
        return None
    given = given or {}
    terms = given.get("terms_of_service")
    if collection["terms_of_service"] == "required" and terms is None:
        raise parameter_missing("consent[terms_of_service]")
    if collection["terms_of_service"] != "required" and terms is not None:
        raise invalid(
            "This Checkout Session does not ask to accept terms of service.",
            "consent[terms_of_service]",
        )
    promotions = given.get("promotions")
    if collection["promotions"] == "auto":
        promotions = promotions or "opt_out"
    elif promotions is not None:
        raise invalid("This Checkout Session does not ask for promotional consent.", "consent")
    return {"promotions": promotions, "terms_of_service": terms}
