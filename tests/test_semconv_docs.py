"""docs/semconv.md ("what we emit") lists exactly the keys ``otel_rerank.semconv`` defines.

Both directions: a key added to the module without a row fails, and a row whose key the
module does not define (a rename, a typo in either place) fails. Each row names a
convention from the page's list of vocabularies. The module's value vocabularies (stage
names, span kinds, score kinds) and the Prometheus series names are values, not keys, and
are left out.
"""

from __future__ import annotations

import re
from pathlib import Path

from otel_rerank import semconv

DOC = Path(__file__).resolve().parents[1] / "docs" / "semconv.md"
CONVENTIONS = {
    "GenAI 1.41.1",
    "GenAI v0.1.0",
    "Experimental (proposal)",
    "OTel general 1.41.1",
    "OpenInference",
    "otel-rerank",
}
_VALUE_PREFIXES = (
    "OPERATION_",
    "KIND_",
    "SCORE_KIND_",
    "PROMETHEUS_",
    "BUDGET_OUTCOME_",
    "SERVED_ORDER_",
)
_ROW = re.compile(r"^\| `([^`]+)` \|(.*)\|\s*$")


def _documented() -> dict[str, list[str]]:
    rows: dict[str, list[str]] = {}
    for line in DOC.read_text().splitlines():
        match = _ROW.match(line)
        if match:
            key, rest = match.groups()
            assert key not in rows, f"{key} has two rows"
            rows[key] = [cell.strip() for cell in rest.split("|")]
    return rows


def _defined() -> set[str]:
    return {
        value
        for name, value in vars(semconv).items()
        if name.isupper() and isinstance(value, str) and not name.startswith(_VALUE_PREFIXES)
    }


def test_every_key_in_semconv_is_documented() -> None:
    missing = _defined() - set(_documented())
    assert not missing, f"add rows to docs/semconv.md for: {sorted(missing)}"


def test_every_documented_key_is_in_semconv() -> None:
    extra = set(_documented()) - _defined()
    assert not extra, f"docs/semconv.md lists keys semconv.py does not define: {sorted(extra)}"


def test_every_row_names_a_known_convention() -> None:
    for key, cells in _documented().items():
        assert any(cell in CONVENTIONS for cell in cells), (key, cells)


def test_schema_url_is_the_documented_version() -> None:
    from otel_rerank import _telemetry

    assert _telemetry._SCHEMA_URL == "https://opentelemetry.io/schemas/1.41.1"
    assert _telemetry._SCHEMA_URL in DOC.read_text()
