"""CALLERS_FILE parsing: what an operator may write, and each mistake named."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from pathlib import Path

import pytest

from service.domain.model import Role
from service.edge.callers import (
    CallerDirectory,
    CallersFileError,
    CertificateNames,
    parse_callers,
)
from service.edge.quotas import Limits


def sha(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def certificate(
    *, uris: tuple[str, ...] = (), dns: tuple[str, ...] = (), cn: str = "", san: bool = True
) -> CertificateNames:
    return CertificateNames(uris, dns, (cn,) if cn else (), has_san=san)


def test_json_and_yaml_name_the_same_callers(tmp_path: Path) -> None:
    as_json = json.dumps(
        {
            "callers": [
                {"name": "orders", "token_sha256": sha("t1"), "role": "caller"},
                {"name": "billing", "certificate_name": "spiffe://x/billing"},
                {"name": "oncall", "token_sha256": sha("t2"), "role": "operator"},
            ]
        }
    ).encode()
    as_yaml = f"""
callers:
  - name: orders
    token_sha256: {sha("t1")}
    role: caller
  - name: billing
    certificate_name: spiffe://x/billing
  - name: oncall
    token_sha256: {sha("t2")}
    role: operator
""".encode()
    for content in (as_json, as_yaml):
        path = tmp_path / "callers"
        path.write_bytes(content)
        directory = CallerDirectory.load(path)
        assert directory.by_token("t1") is not None and directory.by_token("t1").name == "orders"  # type: ignore[union-attr]
        assert directory.by_token("t2").role == Role.OPERATOR  # type: ignore[union-attr]
        by_uri = directory.by_certificate(certificate(uris=("spiffe://x/billing",)))
        assert by_uri is not None and by_uri.name == "billing"
        assert directory.by_token("t3") is None
        assert directory.by_certificate(certificate(uris=("spiffe://x/other",))) is None


def test_during_a_rotation_both_tokens_are_accepted(tmp_path: Path) -> None:
    path = tmp_path / "callers.json"
    path.write_text(
        json.dumps({"callers": [{"name": "orders", "token_sha256": [sha("new"), sha("old")]}]})
    )
    directory = CallerDirectory.load(path)
    assert {directory.by_token(t).name for t in ("new", "old")} == {"orders"}  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("callers", "named"),
    [
        ([{"token_sha256": "0" * 64}], "name"),
        ([{"name": "Orders!", "token_sha256": "0" * 64}], "name"),
        ([{"name": "a"}], "exactly one"),
        ([{"name": "a", "token_sha256": "0" * 64, "certificate_name": "x"}], "exactly one"),
        ([{"name": "a", "token_sha256": "not-hex"}], "token_sha256"),
        ([{"name": "a", "token_sha256": []}], "token_sha256"),
        ([{"name": "a", "token_sha256": "0" * 64, "role": "admin"}], "role"),
        ([{"name": "a", "token_sha256": "0" * 64, "tokne": "x"}], "unknown fields"),
        (
            [{"name": "a", "token_sha256": "0" * 64}, {"name": "a", "token_sha256": "1" * 64}],
            "unique",
        ),
    ],
)
def test_each_mistake_is_named_without_echoing_a_hash(callers: list[object], named: str) -> None:
    with pytest.raises(CallersFileError, match=named) as caught:
        parse_callers(json.dumps({"callers": callers}).encode(), source="callers.json")
    assert "0" * 64 not in str(caught.value)


@pytest.mark.parametrize("content", [b"", b"[]", b'{"callers": {}}', b"{not json: [", b"\x00\xff"])
def test_a_file_without_a_list_of_callers_is_refused(content: bytes) -> None:
    with pytest.raises(CallersFileError):
        parse_callers(content, source="callers.json")


def test_a_missing_file_is_refused_at_start(tmp_path: Path) -> None:
    with pytest.raises(CallersFileError, match="cannot read"):
        CallerDirectory.load(tmp_path / "absent.json")


CERTIFICATE_CALLERS = json.dumps(
    {
        "callers": [
            {"name": "billing", "certificate_name": "spiffe://x/ns/billing/sa/billing"},
            {"name": "inventory", "certificate_name": "inventory.shop.internal"},
            {
                "name": "legacy",
                "certificate_name": "legacy-batch",
                "certificate_match": "common_name",
            },
        ]
    }
).encode()


@pytest.mark.parametrize(
    ("presented", "named"),
    [
        # URI SANs alone name a certificate that has them: never its CN or DNS SANs.
        (certificate(uris=("spiffe://x/ns/billing/sa/billing",)), "billing"),
        (certificate(uris=("spiffe://x/other",), cn="spiffe://x/ns/billing/sa/billing"), None),
        (certificate(uris=("spiffe://x/other",), dns=("inventory.shop.internal",)), None),
        (certificate(dns=("spiffe://x/ns/billing/sa/billing",)), None),
        # Without URI SANs, the DNS SANs name it (case does not matter in DNS).
        (certificate(dns=("inventory.shop.internal",)), "inventory"),
        (certificate(dns=("inventory.shop.internal",), cn="legacy-batch"), "inventory"),
        # A CN names no one unless the entry asks for it, and only without any SAN.
        (certificate(cn="inventory.shop.internal", san=False), None),
        (certificate(cn="legacy-batch", san=False), "legacy"),
        (certificate(cn="legacy-batch", dns=("other.shop.internal",)), None),
        (certificate(cn="legacy-batch"), None),
    ],
)
def test_a_certificate_is_named_by_its_uri_sans_else_dns_sans_else_an_opted_in_cn(
    presented: CertificateNames, named: str | None
) -> None:
    directory = CallerDirectory(
        Path("callers.json"), parse_callers(CERTIFICATE_CALLERS, source="x")
    )
    found = directory.by_certificate(presented)
    assert (found.name if found else None) == named


@pytest.mark.parametrize(
    ("entry", "named"),
    [
        (
            {"certificate_name": "spiffe://x/billing", "certificate_match": "common_name"},
            "not a URI",
        ),
        ({"certificate_name": "billing", "certificate_match": "cn"}, "certificate_match"),
        ({"token_sha256": "0" * 64, "max_streams": -1}, "max_streams"),
        ({"token_sha256": "0" * 64, "max_streams": 2.5}, "max_streams"),
        ({"token_sha256": "0" * 64, "max_streams": True}, "max_streams"),
        ({"token_sha256": "0" * 64, "stripe_calls_per_second": 0}, "stripe_calls_per_second"),
        ({"token_sha256": "0" * 64, "stripe_calls_per_second": "9"}, "stripe_calls_per_second"),
        ({"token_sha256": "0" * 64, "stripe_burst": 0}, "stripe_burst"),
    ],
)
def test_certificate_matching_and_limits_are_checked(entry: dict[str, object], named: str) -> None:
    with pytest.raises(CallersFileError, match=named):
        parse_callers(json.dumps({"callers": [{"name": "a", **entry}]}).encode(), source="x")


def test_two_callers_cannot_share_a_certificate_name() -> None:
    same = [{"name": n, "certificate_name": "spiffe://x/one"} for n in ("a", "b")]
    with pytest.raises(CallersFileError, match="certificate names must be unique"):
        parse_callers(json.dumps({"callers": same}).encode(), source="x")


def test_a_callers_own_limits_override_the_defaults(tmp_path: Path) -> None:
    path = tmp_path / "callers.yaml"
    path.write_text(
        f"""
callers:
  - {{name: orders, token_sha256: {sha("t1")}, max_streams: 3, stripe_calls_per_second: 0.5}}
  - {{name: billing, token_sha256: {sha("t2")}}}
"""
    )
    directory = CallerDirectory.load(path)
    defaults = Limits(max_streams=100, stripe_calls_per_second=10, stripe_burst=20)
    assert directory.limits("orders", defaults) == Limits(3, 0.5, 20)
    assert directory.limits("billing", defaults) == defaults
    assert directory.limits("nobody", defaults) == defaults


@pytest.mark.parametrize("opening", ["[", "{a: ", '{"a": '])
def test_a_file_nested_too_deep_to_parse_is_refused_not_raised(opening: str) -> None:
    # The parsers recurse: nesting past the interpreter's stack raises RecursionError, which
    # must be a refusal like any malformed file.
    closing = {"[": "]", "{a: ": "}", '{"a": ': "}"}[opening]
    deep = (opening * 5_000 + closing * 5_000).encode()
    with pytest.raises(CallersFileError, match="cannot be parsed"):
        parse_callers(deep, source="callers.yaml")


def test_a_reload_names_the_callers_it_removed_or_changed(tmp_path: Path) -> None:
    path = tmp_path / "callers.json"

    def write(*entries: Mapping[str, object]) -> None:
        path.write_text(json.dumps({"callers": list(entries)}))

    orders = {"name": "orders", "token_sha256": sha("t1")}
    billing = {"name": "billing", "token_sha256": sha("t2")}
    oncall = {"name": "oncall", "token_sha256": sha("t3"), "role": "operator"}
    write(orders, billing, oncall)
    directory = CallerDirectory.load(path)
    assert directory.reload() == frozenset()

    write(orders, {**billing, "role": "operator"}, {**oncall, "max_streams": 1})
    assert directory.reload() == {"billing", "oncall"}
    write({**orders, "token_sha256": [sha("t9"), sha("t1")]})
    assert directory.reload() == {"orders", "billing", "oncall"}
    path.write_text("[" * 5_000)
    assert directory.reload() == frozenset()
    assert directory.names == {"orders"}


def test_may_refund_is_a_callers_permission_off_by_default(tmp_path: Path) -> None:
    path = tmp_path / "callers.json"
    path.write_text(
        json.dumps(
            {
                "callers": [
                    {"name": "shop", "token_sha256": sha("t1"), "may_refund": True},
                    {"name": "warehouse", "token_sha256": sha("t2")},
                ]
            }
        )
    )
    directory = CallerDirectory.load(path)

    shop, warehouse = directory.by_token("t1"), directory.by_token("t2")
    assert shop is not None and shop.may_refund
    assert warehouse is not None and not warehouse.may_refund


@pytest.mark.parametrize(
    ("entry", "named"),
    [
        ({"role": "operator", "may_refund": True}, "callers[0].may_refund"),
        ({"may_refund": "yes"}, "callers[0].may_refund must be true or false"),
    ],
)
def test_may_refund_is_a_boolean_and_for_callers_only(entry: dict[str, object], named: str) -> None:
    content = json.dumps({"callers": [{"name": "x", "token_sha256": sha("t"), **entry}]})

    with pytest.raises(CallersFileError, match=re.escape(named)):
        parse_callers(content.encode(), source="callers.json")
