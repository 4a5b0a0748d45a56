"""Stripe's bracket form encoding, decoded as Stripe decodes it."""

import httpx
import pytest

from sandbox.forms import decode, split_key
from sandbox.launcher import SandboxProcess

from .support import API_KEY


def test_nested_brackets_and_indices() -> None:
    assert decode(
        "line_items[0][price_data][product_data][name]=Tee&line_items[0][quantity]=2"
        "&metadata[order_id]=42&expand[]=line_items&expand[]=customer&flag=true"
    ) == {
        "line_items": {"0": {"price_data": {"product_data": {"name": "Tee"}}, "quantity": "2"}},
        "metadata": {"order_id": "42"},
        "expand": ["line_items", "customer"],
        "flag": "true",
    }


def test_empty_list_brackets_fill_one_element_until_a_key_repeats() -> None:
    assert decode("a[][x]=1&a[][y]=2&a[][x]=3") == {"a": [{"x": "1", "y": "2"}, {"x": "3"}]}


def test_keys_with_brackets_inside_a_segment_stay_whole() -> None:
    assert split_key("metadata[a[b]]") == ["metadata", "a[b]"]
    assert split_key("line_items[0][metadata][x]") == ["line_items", "0", "metadata", "x"]
    assert split_key("broken[") == ["broken["]


def test_a_blank_value_gives_way_to_a_nested_one() -> None:
    assert decode("metadata=&metadata[k]=v") == {"metadata": {"k": "v"}}


async def test_indexed_and_appended_arrays_mean_the_same(
    sandbox: SandboxProcess, raw: httpx.AsyncClient
) -> None:
    headers = {"Authorization": f"Bearer {API_KEY}"}
    body = (
        "mode=payment&success_url=https://shop.example/ok"
        "&line_items[1][price_data][currency]=usd&line_items[1][price_data][unit_amount]=200"
        "&line_items[1][price_data][product_data][name]=Second&line_items[1][quantity]=1"
        "&line_items[0][price_data][currency]=usd&line_items[0][price_data][unit_amount]=100"
        "&line_items[0][price_data][product_data][name]=First&line_items[0][quantity]=1"
    )
    for expand in ("expand[]=line_items", "expand[0]=line_items"):
        response = await raw.post(
            "/v1/checkout/sessions",
            content=f"{body}&{expand}",
            headers={**headers, "Content-Type": "application/x-www-form-urlencoded"},
        )
        assert response.status_code == 200, response.text
        names = [item["description"] for item in response.json()["line_items"]["data"]]
        assert names == ["First", "Second"]


@pytest.mark.parametrize(
    ("query", "param", "code"),
    [
        ("limit=abc", "limit", "parameter_invalid_integer"),
        ("limit=0", "limit", "parameter_invalid_integer"),
        ("limit=101", "limit", "parameter_invalid_integer"),
        ("limit=", "limit", "parameter_invalid_empty"),
        ("active=yes", "active", None),
        ("bogus=1", "bogus", "parameter_unknown"),
    ],
)
async def test_query_values_are_typed(
    sandbox: SandboxProcess, raw: httpx.AsyncClient, query: str, param: str, code: str | None
) -> None:
    response = await raw.get(f"/v1/prices?{query}", headers={"Authorization": f"Bearer {API_KEY}"})
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["param"], error.get("code")) == (param, code)
