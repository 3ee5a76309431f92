"""Whether text values conform to a column spec (logical type, domain, pattern), and
their parsed values for the typed statistics of a profile.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cms_pipeline.config import ColumnSpec

# What text a logical type accepts (before the type's own parse check), and how an error
# names it: one rule for ingest's row checks (ingest/validation.py) and for profiling.
TYPE_PATTERNS = {
    "id": r"^[0-9A-F]{16}$",
    "integer": r"^-?\d{1,18}$",  # 18 digits always fit int64
    "decimal": r"^-?(\d+(\.\d*)?|\.\d+)$",
    "date": r"^\d{8}$",
}
TYPE_HINTS = {
    "id": "16 hexadecimal characters (0-9, A-F)",
    "integer": "a whole number of at most 18 digits",
    "decimal": "a number such as 1234.50",
    "date": "a date as YYYYMMDD",
}
NUMERIC_TYPES = ("integer", "decimal")
TYPED = ("integer", "decimal", "date")


def conformance(
    spec: ColumnSpec, values: pa.Array
) -> tuple[np.ndarray, np.ndarray, pa.Array | None]:
    """Check text values (no nulls) against a column spec.

    Returns (conforms, parses, typed): `conforms` means the text has the shape of the
    logical type and parses as it (dates round-trip through YYYYMMDD, so 20080231 fails),
    is in the domain and matches the pattern; `parses` only the type part; `typed` holds
    the parsed values where `parses` is true (None for id and string).
    """
    ok = np.ones(len(values), dtype=bool)
    typed = None
    type_pattern = TYPE_PATTERNS.get(spec.type)
    if type_pattern is not None:
        ok &= pc.match_substring_regex(values, type_pattern).to_numpy(zero_copy_only=False)
    if spec.type in TYPED:
        shaped = values.filter(pa.array(ok))
        if spec.type == "integer":
            parsed = pc.cast(shaped, pa.int64())
        elif spec.type == "decimal":
            parsed = pc.cast(shaped, pa.float64())
        else:
            ts = pc.strptime(shaped, format="%Y%m%d", unit="s", error_is_null=True)
            # strptime rolls 20080231 over to March 2: a real date keeps its day
            day = pc.cast(pc.utf8_slice_codeunits(shaped, 6, 8), pa.int64())
            roundtrip = pc.fill_null(pc.equal(pc.day(ts), day), False)
            valid = roundtrip.to_numpy(zero_copy_only=False)
            ok[np.flatnonzero(ok)[~valid]] = False
            parsed = pc.cast(ts, pa.date32()).filter(roundtrip)
        typed = parsed
    parses = ok.copy()
    if spec.domain is not None:
        ok &= pc.is_in(values, pa.array(spec.domain)).to_numpy(zero_copy_only=False)
    if spec.pattern is not None:
        ok &= pc.match_substring_regex(values, spec.pattern).to_numpy(zero_copy_only=False)
    return ok, parses, typed
