"""Readable Prefect artefacts for what each flow did (shown in the Prefect UI)."""

from __future__ import annotations

from prefect.artifacts import create_markdown_artifact, create_table_artifact


def _key(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-")


def row_accounting(report) -> None:
    rows = [
        {
            "file": f.file,
            "table": f.table,
            "status": f.status,
            "rows_read": f.rows_read,
            "rows_bronze": f.rows_bronze,
            "rows_quarantined": f.rows_quarantined,
            "bronze_version": f.bronze_version,
        }
        for f in report.files
    ]
    t = report.totals()
    create_table_artifact(
        key="row-accounting",
        table=rows or [{"file": "(no files)"}],
        description=(
            f"{t['rows_read']:,} rows read = {t['rows_bronze']:,} bronze + "
            f"{t['rows_quarantined']:,} quarantined; {t['rejected']} files rejected"
        ),
    )


def gate_results(gate) -> None:
    rows = [
        {
            "table": c.table,
            "check": c.check,
            "outcome": c.outcome,
            "value": c.value,
            "severity": getattr(c, "severity", ""),
        }
        for c in gate.checks
    ]
    create_table_artifact(
        key=_key(f"quality-{gate.layer}"),
        table=rows or [{"check": "(none)"}],
        description=gate.explain(),
    )


def exports(report: dict) -> None:
    """What an export wrote: each analytics table's location and the web documents."""
    rows = [{"export": "analytics", "name": k, "value": v} for k, v in report["analytics"].items()]
    rows += [{"export": "web", "name": k, "value": v} for k, v in report["web"].items()]
    web = report["web"]
    create_table_artifact(
        key="exports",
        table=rows or [{"export": "(nothing)"}],
        description=(
            f"{len(report['analytics'])} analytics tables; web: "
            f"{web.get('state_documents', 0)} state and {web.get('year_documents', 0)} "
            "year documents"
        ),
    )


def markdown(key: str, text: str, description: str = "") -> None:
    create_markdown_artifact(key=_key(key), markdown=text, description=description)
