"""The rows a delivery becomes, as Arrow tables: bronze rows (the source values as text,
the file's attributes, lineage) and quarantine rows (the line as it stood, and why)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cms_pipeline.config import SourceContract
from cms_pipeline.ingest.discovery import Delivery
from cms_pipeline.ingest.reader import ParseFailure, decode_line
from cms_pipeline.ingest.validation import encodes
from cms_pipeline.lake import FILE_ATTRIBUTE_COLUMNS

QUARANTINE_SCHEMA = pa.schema(
    [
        ("table", pa.string()),
        ("_source_file", pa.string()),
        ("_source_sha256", pa.string()),
        ("_source_line", pa.int64()),
        ("column", pa.string()),
        ("reason", pa.string()),
        ("raw_line", pa.string()),
        ("_ingested_at", pa.timestamp("us", tz="UTC")),
    ]
)


def bronze_schema(source_columns: list[str]) -> pa.Schema:
    """Bronze data columns: source values as text, file attributes, lineage."""
    return pa.schema(
        [pa.field(c, pa.string()) for c in source_columns]
        + [pa.field(c, pa.string()) for c in FILE_ATTRIBUTE_COLUMNS]
        + [
            pa.field("_source_file", pa.string()),
            pa.field("_source_sha256", pa.string()),
            pa.field("_source_line", pa.int64()),
            pa.field("_ingested_at", pa.timestamp("us", tz="UTC")),
        ]
    )


@dataclass
class Lineage:
    delivery: Delivery
    sha256: str
    ingested_at: pa.Scalar

    def bronze(self, batch: pa.RecordBatch, lines: np.ndarray, columns: list[str]) -> pa.Table:
        """Bronze rows: text columns plain or dictionary-encoded (the writer's choice)."""
        n = batch.num_rows
        have = set(batch.schema.names)
        arrays = [batch.column(c) if c in have else pa.nulls(n, pa.string()) for c in columns]
        attrs = [_constant(self.delivery.attributes.get(c), n) for c in FILE_ATTRIBUTE_COLUMNS]
        lineage = [
            _constant(self.delivery.relative, n),
            _constant(self.sha256, n),
            pa.array(lines, pa.int64()),
            pa.repeat(self.ingested_at, n),
        ]
        return pa.Table.from_arrays(arrays + attrs + lineage, names=bronze_schema(columns).names)

    def quarantine(self, batch, lines, columns, reasons) -> pa.Table:
        n = batch.num_rows
        raw = _raw_lines(batch, self.delivery.contract.delimiter)
        return pa.Table.from_arrays(
            [
                pa.repeat(pa.scalar(self.delivery.contract.table), n),
                pa.repeat(pa.scalar(self.delivery.relative), n),
                pa.repeat(pa.scalar(self.sha256), n),
                pa.array(lines, pa.int64()),
                pa.array(columns, pa.string()),
                pa.array(reasons, pa.string()),
                pa.array(raw, pa.string()),
                pa.repeat(self.ingested_at, n),
            ],
            schema=QUARANTINE_SCHEMA,
        )

    def parse_failures(self, failures: list[ParseFailure]) -> pa.Table:
        n = len(failures)
        return pa.Table.from_arrays(
            [
                pa.repeat(pa.scalar(self.delivery.contract.table), n),
                pa.repeat(pa.scalar(self.delivery.relative), n),
                pa.repeat(pa.scalar(self.sha256), n),
                pa.array([f.line for f in failures], pa.int64()),
                pa.nulls(n, pa.string()),
                pa.array([f"expected {f.expected} fields, found {f.actual}" for f in failures]),
                pa.array([decode_line(f.text) for f in failures], pa.string()),
                pa.repeat(self.ingested_at, n),
            ],
            schema=QUARANTINE_SCHEMA,
        )


def _constant(value: str | None, n: int) -> pa.Array:
    """A text column holding one value: encoded as such, so nothing hashes it per row."""
    if value is None:
        indices = pa.nulls(n, pa.int32())
    else:
        indices = pa.array(np.zeros(n, dtype=np.int32))
    return pa.DictionaryArray.from_arrays(indices, pa.array([value] if value else [], pa.string()))


def dictionary_columns(contract: SourceContract, columns: list[str]) -> list[str]:
    """Bronze text columns stored dictionary-encoded: all but ids (nearly all distinct),
    matching what validation encodes, so the writer takes its encodings as they are."""
    ids = {c.name for c in contract.columns if not encodes(c)}
    text = [*columns, *FILE_ATTRIBUTE_COLUMNS, "_source_file", "_source_sha256"]
    return [c for c in text if c not in ids]


def _raw_lines(batch: pa.RecordBatch, delimiter: str) -> list[str]:
    """The row as it stood in the file, rebuilt from its fields (CMS files quote no values)."""
    binary = [batch.column(i).cast(pa.binary()) for i in range(batch.num_columns)]
    joined = pc.binary_join_element_wise(
        *binary,
        pa.scalar(delimiter.encode(), pa.binary()),
        null_handling="replace",
        null_replacement=b"",
    )
    return [decode_line(v) for v in joined.to_pylist()]
