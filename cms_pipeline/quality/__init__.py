"""Soda quality gates on bronze, silver and gold.

    gate = run_checks(spark, settings, "silver", schema="silver_build_<id>")
    require_pass(gate)   # raises GateFailed naming each failing check and its value
    promotion.promote_if_passed(settings, spark, build, gate)  # publish a passing build only

Check files: soda_checks/<layer>/<table>.yml. Results: LAKE/_meta/check_results,
check_metrics and failed_rows (see `store`). What the distribution checks compare with:
soda_checks/README.md (bronze: newest batch vs previous batch, see `batches`).
"""

from cms_pipeline.quality.gate import check_files, run_checks
from cms_pipeline.quality.history import history
from cms_pipeline.quality.results import CheckResult, GateFailed, GateResult, require_pass

__all__ = [
    "CheckResult",
    "GateFailed",
    "GateResult",
    "check_files",
    "history",
    "require_pass",
    "run_checks",
]
