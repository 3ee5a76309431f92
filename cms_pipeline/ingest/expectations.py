"""The contract's expectations checked on a file's profile: row counts, unique keys and
columns declared not nullable.

`validation` checks each row against the contract; these checks are about the file as a
whole, so they read its profile (`cms_pipeline.profiling`) instead of its rows. Each
broken expectation is an `ExpectationFailure` with its numbers and a message.
"""

from __future__ import annotations

from dataclasses import dataclass

from cms_pipeline.config import SourceContract
from cms_pipeline.profiling.records import BatchProfile


@dataclass
class ExpectationFailure:
    check: str  # unique_keys | min_rows | max_rows | not_null
    column: str | None
    observed: int | float
    expected: str
    message: str


def check_expectations(profile: BatchProfile, contract: SourceContract) -> list[ExpectationFailure]:
    """The contract's expectations that the profile breaks, each with its numbers."""
    where = f"{contract.table} ({profile.source_file or 'batch ' + str(profile.batch_id)})"
    failures: list[ExpectationFailure] = []
    exp = contract.expectations
    if exp.min_rows is not None and profile.rows < exp.min_rows:
        failures.append(
            ExpectationFailure(
                "min_rows",
                None,
                profile.rows,
                f">= {exp.min_rows:,}",
                f"{where}: {profile.rows:,} rows, expected at least {exp.min_rows:,} "
                "(contract expectations.min_rows); check the file is complete",
            )
        )
    if exp.max_rows is not None and profile.rows > exp.max_rows:
        failures.append(
            ExpectationFailure(
                "max_rows",
                None,
                profile.rows,
                f"<= {exp.max_rows:,}",
                f"{where}: {profile.rows:,} rows, expected at most {exp.max_rows:,} "
                "(contract expectations.max_rows); check for a repeated or wrong file",
            )
        )
    if exp.unique_keys and contract.keys:
        failures.extend(_key_failures(profile, contract, where))
    for spec in contract.columns:
        if spec.nullable:
            continue
        try:
            col = profile.column(spec.name)
        except KeyError:
            continue
        if col.nulls:
            failures.append(
                ExpectationFailure(
                    "not_null",
                    spec.name,
                    col.nulls,
                    "0",
                    f"{where}: column {spec.name} has {col.nulls:,} empty values among "
                    f"{col.count:,} rows but is declared nullable: false",
                )
            )
    return failures


def _key_failures(
    profile: BatchProfile, contract: SourceContract, where: str
) -> list[ExpectationFailure]:
    keys = ", ".join(contract.keys)
    check = profile.keys
    if check is not None:
        if check.duplicate_rows == 0:
            return []
        lines = ", ".join(str(n) for n in check.duplicate_lines)
        return [
            ExpectationFailure(
                "unique_keys",
                keys,
                check.duplicate_rows,
                "0 duplicate keys",
                f"{where}: key ({keys}) not unique: {check.duplicate_rows:,} rows repeat a key "
                f"seen earlier among {check.rows:,} rows (lines {lines}); remove the "
                "duplicates from the file or correct `keys` in config/sources",
            )
        ]
    # no exact check was run: the distinct estimate can only hint, for a one-column key
    if len(contract.keys) != 1:
        return []
    try:
        col = profile.column(contract.keys[0])
    except KeyError:
        return []
    slack = 3 * col.distinct_relative_error * col.non_null
    if col.distinct_estimate + slack < col.non_null:
        return [
            ExpectationFailure(
                "unique_keys",
                keys,
                col.non_null - col.distinct_estimate,
                "0 duplicate keys",
                f"{where}: key ({keys}) probably not unique: about {col.distinct_estimate:,} "
                f"distinct values among {col.non_null:,} (estimate; run the exact key check)",
            )
        ]
    return []
