"""OCSF records as Parquet, the only format Amazon Security Lake reads from a custom source.

pyarrow (in the ParquetLayer, attached to ExportFunction) builds one table per object. The
schema is inferred from all the records of the object together (a field one record lacks is
null in it), and two rules keep that inference total on what attackers control:

- ``unmapped`` is a ``map<string, string>``, as in Security Lake's own OCSF tables: what OCSF has
  no home for varies by finding type (a runtime context, a domain that is not a hostname), so its
  values are kept as JSON text, never as types inferred from them;
- empty objects are dropped (Parquet has no struct without fields).

A group whose records still disagree on a type raises ``ParquetError``; the caller then writes
its findings one object each, so one odd finding never holds back its neighbours.
"""

from __future__ import annotations

import io
import json
from typing import Any, Final

import pyarrow as pa
import pyarrow.parquet as pq

CONTENT_TYPE: Final = "application/vnd.apache.parquet"
EXT: Final = "parquet"
COMPRESSION: Final = "zstd"  # Security Lake's own sources write ZSTD-compressed Parquet


class ParquetError(ValueError):
    """The records cannot share one Parquet schema (or are empty)."""


def _prune(value: Any) -> Any:
    if isinstance(value, dict):
        out = {k: _prune(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if v != {}}
    if isinstance(value, list):
        return [_prune(v) for v in value]
    return value


def _row(record: dict[str, Any]) -> dict[str, Any]:
    row = _prune(record)
    unmapped = record.get("unmapped")
    if isinstance(unmapped, dict):
        row["unmapped"] = [
            (str(k), v if isinstance(v, str) else json.dumps(v, separators=(",", ":"), sort_keys=True))
            for k, v in unmapped.items()
        ]
    return row  # type: ignore[no-any-return]


def _drop_empty_unmapped(rows: list[dict[str, Any]]) -> None:
    for row in rows:
        if not row.get("unmapped"):
            row.pop("unmapped", None)


def ocsf_parquet(records: list[dict[str, Any]]) -> bytes:
    """One Parquet file (ZSTD) holding the records, in order. Raises ``ParquetError``."""
    if not records:
        raise ParquetError("no records")
    rows = [_row(r) for r in records]
    _drop_empty_unmapped(rows)
    fields = {k for r in rows for k in r}
    try:
        if "unmapped" in fields:
            # inferred as a list of pairs otherwise; declared so every reader sees a map
            others = pa.array([{k: v for k, v in r.items() if k != "unmapped"} for r in rows])
            mapped = pa.array([r.get("unmapped") for r in rows], type=pa.map_(pa.string(), pa.string()))
            table = pa.Table.from_struct_array(others).append_column("unmapped", mapped)
        else:
            table = pa.Table.from_struct_array(pa.array(rows))
        buf = io.BytesIO()
        pq.write_table(table, buf, compression=COMPRESSION)
    except (pa.ArrowException, TypeError, ValueError, OverflowError) as exc:
        raise ParquetError(f"{type(exc).__name__}: {exc}") from exc
    return buf.getvalue()


def read(body: bytes) -> list[dict[str, Any]]:
    """The records of one file, with the nulls of fields a record lacked removed and ``unmapped``
    as an object again (for tests and the demo). Read without threads: pyarrow's thread pool can
    abort the interpreter at exit on this VM."""
    table = pq.ParquetFile(io.BytesIO(body)).read(use_threads=False)
    return [_unnull(r) for r in table.to_pylist()]


def _unnull(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _unnull(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        if value and all(isinstance(p, tuple) and len(p) == 2 for p in value):  # a map's pairs
            return {k: v for k, v in value}
        return [_unnull(v) for v in value]
    return value
