"""CMS file layouts: names, header bytes and row bytes exactly as CMS ships them.

Quoted header row, unquoted values, CRLF line ends, empty fields for missing values.
Column order always comes from the contracts in `config/sources/synpuf.yaml`.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv

from cms_pipeline.config import SourceContract


@dataclass(frozen=True)
class FileKind:
    """One of the eight files of a CMS sample."""

    key: str  # bene_2008 ... pde
    contract: str  # name of the source contract in config/sources
    stem: str  # file name with {sample} left to fill

    def file_name(self, sample: int, ext: str = "csv") -> str:
        return f"{self.stem.format(sample=sample)}.{ext}"


FILE_KINDS = [
    FileKind("bene_2008", "beneficiary_summary", "DE1_0_2008_Beneficiary_Summary_File_Sample_{sample}"),
    FileKind("bene_2009", "beneficiary_summary", "DE1_0_2009_Beneficiary_Summary_File_Sample_{sample}"),
    FileKind("bene_2010", "beneficiary_summary", "DE1_0_2010_Beneficiary_Summary_File_Sample_{sample}"),
    FileKind("inpatient", "inpatient_claims", "DE1_0_2008_to_2010_Inpatient_Claims_Sample_{sample}"),
    FileKind("outpatient", "outpatient_claims", "DE1_0_2008_to_2010_Outpatient_Claims_Sample_{sample}"),
    FileKind("carrier_a", "carrier_claims", "DE1_0_2008_to_2010_Carrier_Claims_Sample_{sample}A"),
    FileKind("carrier_b", "carrier_claims", "DE1_0_2008_to_2010_Carrier_Claims_Sample_{sample}B"),
    FileKind(
        "pde",
        "prescription_drug_events",
        "DE1_0_2008_to_2010_Prescription_Drug_Events_Sample_{sample}",
    ),
]  # fmt: skip
KINDS = {k.key: k for k in FILE_KINDS}

_WRITE_OPTIONS = pacsv.WriteOptions(include_header=False, quoting_style="none", batch_size=8192)


def header_bytes(contract: SourceContract) -> bytes:
    return (",".join(f'"{c}"' for c in contract.column_names) + "\r\n").encode()


def rows_bytes(table: pa.Table, slice_rows: int = 50_000) -> bytes:
    """Rows as CMS writes them: no quotes, empty for null, CRLF (Arrow writes LF).

    Written in slices so the text of a large table is not held in three copies at once.
    """
    pieces = []
    for start in range(0, table.num_rows, slice_rows):
        buf = io.BytesIO()
        pacsv.write_csv(table.slice(start, slice_rows), buf, _WRITE_OPTIONS)
        pieces.append(buf.getbuffer().tobytes().replace(b"\n", b"\r\n"))
    return b"".join(pieces)


def zip_file(csv_path: Path, zip_path: Path) -> None:
    """A CMS-style ZIP holding one CSV; fixed timestamp so the same input gives the same bytes."""
    info = zipfile.ZipInfo(csv_path.name, date_time=(2012, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    with zipfile.ZipFile(zip_path, "w") as zf, zf.open(info, "w", force_zip64=True) as dst:
        with csv_path.open("rb") as src:
            while block := src.read(1 << 22):
                dst.write(block)
