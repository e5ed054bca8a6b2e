"""lib.units: one convention for sizes (binary multiples, named as such), and "—" for a missing value."""

from __future__ import annotations

import pytest

from lib.settings import GIB, MIB
from lib.units import BYTE_STEP, BYTE_UNITS, MISSING, byte_unit, counted, human_bytes, human_duration


@pytest.mark.parametrize(("n", "text"), [
    (0, "0 B"), (1023, "1023 B"), (1536, "1.5 KiB"), (571.3 * MIB, "571.3 MiB"), (2 * GIB, "2.0 GiB"),
    (-1536, "-1.5 KiB"), (None, MISSING),
])
def test_sizes_are_written_in_binary_units_named_as_such(n, text) -> None:
    assert human_bytes(n) == text


def test_one_unit_keeps_a_value_between_1_and_1024() -> None:
    assert byte_unit(0) == ("B", 1) and byte_unit(1023) == ("B", 1)
    assert byte_unit(BYTE_STEP) == ("KiB", 1024) and byte_unit(599_000_000) == ("MiB", MIB)
    assert byte_unit(BYTE_STEP ** 9) == (BYTE_UNITS[-1], BYTE_STEP ** (len(BYTE_UNITS) - 1))  # no unit past PiB


def test_durations_and_missing_values() -> None:
    assert (human_duration(75.4), human_duration(3725), human_duration(None)) == ("1:15", "1:02:05", MISSING)


def test_a_count_names_its_noun_in_the_singular_only_for_one() -> None:
    assert [counted(n, "recording") for n in (0, 1, 2)] == ["0 recordings", "1 recording", "2 recordings"]
