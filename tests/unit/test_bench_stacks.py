"""The profile's tables (bench/stacks.py): py-spy's collapsed stacks, read back as shares of
the samples. Pure, no I/O."""

from __future__ import annotations

from bench.stacks import summary

ENTRY = "_run_module_as_main (<frozen runpy>:198);main (service/app.py:40)"
CREATE = "Checkout._create (service/domain/checkout.py:80)"
STACKS = "\n".join(
    [
        f"{ENTRY};{CREATE};StripeGateway._call (service/gateway/stripe_gateway.py:200)"
        ";logfmt (stripe/_util.py:90) 6",
        f"{ENTRY};{CREATE};PostgresLedger.claim (service/store/repository.py:300)"
        ";dumps (json/__init__.py:231) 3",
        "Thread.run (threading.py:982) 1",
    ]
)


def table(lines: list[str], title: str) -> dict[str, str]:
    """The rows of the table with this title: name → share."""
    start = lines.index(f"| {title} | share |") + 2
    rows = {}
    for line in lines[start:]:
        if not line.startswith("| "):
            break
        name, share = line.strip("| ").split(" | ")
        rows[name] = share
    return rows


def test_samples_are_counted_by_library_by_function_and_up_the_stack() -> None:
    lines = summary(STACKS)

    assert lines[0] == "10 samples of the service's Python threads on the CPU"
    assert table(lines, "library of the innermost frame") == {
        "stripe": "60.0%",
        "json (standard library)": "30.0%",
        "threading (standard library)": "10.0%",
    }
    assert table(lines, "function on the CPU (self)")["logfmt (stripe/_util.py)"] == "60.0%"
    inclusive = table(lines, "function anywhere on the stack (inclusive)")
    assert inclusive["Checkout._create (service/domain/checkout.py)"] == "90.0%"
    assert inclusive["PostgresLedger.claim (service/store/repository.py)"] == "30.0%"


def test_a_frame_of_the_service_is_counted_once_per_stack_even_when_recursive() -> None:
    recursive = "f (service/domain/model.py:1);f (service/domain/model.py:2) 4\n"

    lines = summary(recursive)

    assert table(lines, "function anywhere on the stack (inclusive)") == {
        "f (service/domain/model.py)": "100.0%"
    }
    assert table(lines, "library of the innermost frame") == {"service/domain": "100.0%"}
