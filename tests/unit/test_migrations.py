"""The migrations' numbering (service/store/migrate.py): the files run 1..N without a gap or a
number used twice, so that a missing or doubled file stops the start instead of leaving a
database without part of its schema."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.store.migrate import load_migrations


def folder(tmp_path: Path, *names: str) -> Path:
    for name in names:
        (tmp_path / name).write_text(f"-- {name}\n")
    return tmp_path


def test_the_shipped_migrations_run_from_1_without_gaps() -> None:
    versions = [m.version for m in load_migrations()]

    assert versions == list(range(1, len(versions) + 1))


def test_migrations_in_order_are_loaded_in_order(tmp_path: Path) -> None:
    loaded = load_migrations(folder(tmp_path, "0002_more.sql", "0001_first.sql"))

    assert [(m.version, m.name, m.sql) for m in loaded] == [
        (1, "0001_first.sql", "-- 0001_first.sql\n"),
        (2, "0002_more.sql", "-- 0002_more.sql\n"),
    ]


@pytest.mark.parametrize(
    "names",
    [
        pytest.param(("0001_first.sql", "0003_third.sql"), id="a gap"),
        pytest.param(("0002_second.sql",), id="not from 1"),
        pytest.param(("0001_first.sql", "0001_again.sql", "0002_second.sql"), id="a number twice"),
        pytest.param(("0000_zero.sql", "0001_first.sql"), id="from 0"),
    ],
)
def test_numbers_that_do_not_run_1_to_n_are_refused(tmp_path: Path, names: tuple[str, ...]) -> None:
    with pytest.raises(ValueError, match="without gaps"):
        load_migrations(folder(tmp_path, *names))


def test_a_file_not_named_as_a_migration_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"NNNN_name\.sql"):
        load_migrations(folder(tmp_path, "0001_first.sql", "2_second.sql"))
