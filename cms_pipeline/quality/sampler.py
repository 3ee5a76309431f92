"""Failed-row samples kept small: a few rows per check, a few columns per row.

Soda's default sampler counts a failing query by fetching every row, 100 at a time; on
Spark that is one job per 100 rows. This sampler fetches only `limit` rows, counts the
rest with one COUNT when Soda needs the total, and keeps only the columns a person needs
to find the row (ids, lineage) and the columns the check's query names. Wide tables
(carrier claims: 142 columns) therefore never travel whole to the driver in bulk.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal

from soda.sampler.sample_context import SampleContext
from soda.sampler.sample_ref import SampleRef
from soda.sampler.sampler import Sampler

DEFAULT_LIMIT = 10
MAX_COLUMNS = 16
# Columns that locate a row: CMS ids and the lineage columns written by ingestion.
_LOCATOR = re.compile(
    r"^(desynpuf_id|clm_id|claim_id|claim_key|segment|pde_id|admission_id|line_num|year|beneficiary_year|"
    r"_source_file|_source_line|_batch_id)$",
    re.IGNORECASE,
)


def keep_columns(columns: list[str], query: str, max_columns: int = MAX_COLUMNS) -> list[str]:
    """Locator columns first, then the columns the query mentions, at most `max_columns`."""
    if len(columns) <= max_columns:
        return columns
    words = {w.lower() for w in re.findall(r"[A-Za-z_][A-Za-z0-9_]*", query)}
    locators = [c for c in columns if _LOCATOR.match(c)]
    mentioned = [c for c in columns if c.lower() in words and c not in locators]
    return (locators + mentioned)[:max_columns]


def plain(value):
    """A JSON-friendly value."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    return value


class BoundedSampler(Sampler):
    def __init__(self, limit: int = DEFAULT_LIMIT, max_columns: int = MAX_COLUMNS):
        self.limit = limit
        self.max_columns = max_columns
        self.samples: dict[str, list[dict]] = {}

    def store_sample(self, sample_context: SampleContext) -> SampleRef:
        sample = sample_context.sample
        limit = min(sample_context.samples_limit or self.limit, self.limit)
        fetched = getattr(getattr(sample, "safe_fetcher", None), "rows", None)
        if fetched is not None:
            # Soda already read this result to count it (`fail query` checks): reuse it.
            rows, total = list(fetched[:limit]), sample.get_rows_count()
        else:
            rows = sample.cursor.fetchmany(limit) if limit > 0 else []
            total = len(rows) if len(rows) < limit else _count(sample.cursor)
        schema = sample.get_schema()
        names = [c.name for c in schema.columns]
        kept = keep_columns(names, sample_context.query or "", self.max_columns)
        index = [names.index(c) for c in kept]
        records = [{names[i]: plain(row[i]) for i in index} for row in rows]
        if sample_context.check_name:
            self.samples.setdefault(sample_context.check_name, []).extend(records)
        return SampleRef(
            name=sample_context.sample_name,
            schema=schema,
            total_row_count=total,
            stored_row_count=len(records),
            type=SampleRef.TYPE_NOT_PERSISTED,
            message="Kept by cms_pipeline.quality in LAKE/_meta/failed_rows",
        )


def _count(cursor) -> int:
    # The Spark DataFrame cursor holds the query's DataFrame: one COUNT job.
    df = getattr(cursor, "df", None)
    return int(df.count()) if df is not None else -1
