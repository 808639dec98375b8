"""SECURITY.md maps every OWASP API Security Top 10 (2023) risk to tests that exist."""

from __future__ import annotations

import re
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SECURITY = (PROJECT_ROOT / "SECURITY.md").read_text()
REFERENCE = re.compile(r"`(tests/[\w/]+\.py)(?:::(\w+))?`")


def test_every_risk_of_the_top_ten_has_a_row() -> None:
    rows = [line for line in SECURITY.splitlines() if line.startswith("| **API")]
    assert [re.match(r"\| \*\*(API\d+)", row).group(1) for row in rows] == [  # type: ignore[union-attr]
        f"API{n}" for n in range(1, 11)
    ]


def test_every_test_it_names_exists() -> None:
    references = REFERENCE.findall(SECURITY)
    assert len(references) > 20
    for path, name in references:
        source = PROJECT_ROOT / path
        assert source.exists(), path
        if name:
            assert f"def {name}(" in source.read_text(), f"{path}::{name}"


def test_it_says_what_is_out_of_scope() -> None:
    assert "## Out of scope" in SECURITY
