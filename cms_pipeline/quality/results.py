"""Check outcomes and the gate verdict, built from Soda's scan results (pure, no JVM).

Severity is declared in SodaCL: a check whose thresholds only say `warn:` can at worst
warn; any other check fails. A check Soda could not evaluate (bad SQL, missing column)
counts as an error, and an error stops the gate like a failure: an unchecked layer is
never published.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime

PASS, WARN, FAIL, ERROR = "pass", "warn", "fail", "error"
# A table fed only by kinds of file not delivered yet: its checks are not run, and the
# state is named instead (a partial delivery is normal, not a failure).
NOT_DELIVERED = "not delivered"
STOPS = (FAIL, ERROR)


@dataclass
class CheckResult:
    layer: str
    table: str
    check: str
    outcome: str  # pass | warn | fail | error | not delivered
    value: float | None = None
    severity: str = "fail"  # declared: "warn" when the check can at worst warn
    location: str = ""  # check file and line, so a reader can open the definition
    message: str = ""
    failed_rows: list[dict] = field(default_factory=list)  # bounded sample

    @property
    def stops(self) -> bool:
        return self.outcome in STOPS

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class GateResult:
    layer: str
    schema: str
    run_id: str
    batch_id: str | None
    checked_at: datetime
    checks: list[CheckResult]
    table_versions: dict[str, str] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return not any(c.stops for c in self.checks)

    @property
    def failures(self) -> list[CheckResult]:
        return [c for c in self.checks if c.stops]

    @property
    def warnings(self) -> list[CheckResult]:
        return [c for c in self.checks if c.outcome == WARN]

    def counts(self) -> dict[str, int]:
        outcomes = (PASS, WARN, FAIL, ERROR, NOT_DELIVERED)
        return {o: sum(c.outcome == o for c in self.checks) for o in outcomes}

    @property
    def not_delivered(self) -> list[str]:
        """Tables whose checks were not run: no delivery of the kinds that feed them yet."""
        return [c.table for c in self.checks if c.outcome == NOT_DELIVERED]

    def explain(self) -> str:
        """What stopped the gate: per failing check its measured value and a failing row."""
        if self.passed:
            return f"{self.layer} gate passed ({self._count_text()})"
        lines = [f"{self.layer} gate failed on {self.schema} ({self._count_text()}):"]
        for c in self.failures:
            value = "" if c.value is None else f" (measured {format_value(c.value)})"
            detail = f": {c.message}" if c.message else ""
            if c.failed_rows:
                detail += f"; e.g. {json.dumps(c.failed_rows[0], default=str)}"
            lines.append(f"  {c.table}: {c.check}{value}{detail} [{c.location}]")
        return "\n".join(lines)

    def _count_text(self) -> str:
        return ", ".join(f"{n} {o}" for o, n in self.counts().items() if n)

    def to_dict(self) -> dict:
        return {
            "layer": self.layer,
            "schema": self.schema,
            "run_id": self.run_id,
            "batch_id": self.batch_id,
            "checked_at": self.checked_at.isoformat(),
            "passed": self.passed,
            "counts": self.counts(),
            "not_delivered": self.not_delivered,
            "table_versions": self.table_versions,
            "checks": [c.to_dict() for c in self.checks],
        }


class GateFailed(RuntimeError):
    """Raised by `require_pass`: the layer must not be published."""

    def __init__(self, gate: GateResult):
        super().__init__(gate.explain())
        self.gate = gate


def require_pass(gate: GateResult) -> GateResult:
    if not gate.passed:
        raise GateFailed(gate)
    return gate


def format_value(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.4g}"


def outcome_of(soda_outcome: str | None) -> str:
    """Soda says pass/warn/fail, or nothing when it could not evaluate the check."""
    return soda_outcome if soda_outcome in (PASS, WARN, FAIL) else ERROR


def measured_value(check: dict) -> float | None:
    value = (check.get("diagnostics") or {}).get("value")
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def declared_severity(definition: str) -> str:
    """A check whose thresholds say only `warn:` can at worst warn; any other can fail."""
    return "warn" if "warn:" in definition and "fail:" not in definition else "fail"


def _message(check: dict) -> str:
    diag = check.get("diagnostics") or {}
    parts = []
    if missing := diag.get("missing_column_names"):
        parts.append(f"missing columns {missing}")
    if wrong := diag.get("column_type_mismatches"):
        parts.append(f"wrong column types {wrong}")
    if freshness := diag.get("freshness"):
        parts.append(f"newest row is {freshness} old")
    for block in diag.get("blocks") or []:
        if block.get("type") == "failedRowsAnalysis" and block.get("totalFailingRows"):
            parts.append(f"{block['totalFailingRows']} failing rows")
    return "; ".join(parts)


def from_scan(
    layer: str,
    table: str,
    scan_results: dict,
    samples: dict[str, list[dict]],
    error_text: str = "",
) -> list[CheckResult]:
    """One CheckResult per Soda check of a per-table scan, plus one for scan errors."""
    results = []
    for check in scan_results.get("checks") or []:
        loc = check.get("location") or {}
        outcome = outcome_of(check.get("outcome"))
        message = _message(check)
        if outcome == ERROR and not message:
            message = "Soda could not evaluate this check; see the scan errors"
        results.append(
            CheckResult(
                layer=layer,
                table=check.get("table") or table,
                check=check.get("name") or check.get("definition", ""),
                outcome=outcome,
                value=measured_value(check),
                severity=declared_severity(check.get("definition") or ""),
                location=f"{loc.get('filePath', '')}:{loc.get('line', '')}",
                message=message,
                failed_rows=samples.get(check.get("name"), []) if outcome != PASS else [],
            )
        )
    if error_text:
        results.append(
            CheckResult(layer, table, "Scan ran without errors", ERROR, message=error_text)
        )
    return results
