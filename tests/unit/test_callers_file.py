"""CALLERS_FILE parsing: what an operator may write, and each mistake named."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from service.domain.model import Role
from service.edge.callers import CallerDirectory, CallersFileError, parse_callers


def sha(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


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
        assert directory.by_certificate(["spiffe://x/billing"]).name == "billing"  # type: ignore[union-attr]
        assert directory.by_token("t3") is None
        assert directory.by_certificate(["spiffe://x/other"]) is None


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
