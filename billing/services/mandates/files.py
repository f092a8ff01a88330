"""Reading mandate files: JSON lines or CSV with a header row, streamed one row at a time.

A row that cannot even be read (bad JSON, not an object) comes out as an `InvalidField` for
its line, so the importer reports it like any other bad row and goes on. A problem of the
whole file (binary content, not UTF-8, a CSV header without a required column) is ONE
`ServiceError` naming the file, never one error per row.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator, Mapping
from pathlib import Path

from billing.domain.errors import InvalidField
from billing.services import ServiceError

MANDATE_FIELDS = (
    "customer_id",
    "mandate_id",
    "frequency",
    "rule_type",
    "rule_value",
    "amount_rule",
    "max_amount",
    "amount",
    "currency",
    "start_date",
    "end_date",
    "payment_method_type",
    "status",
)
"""The columns of a mandate file, in the order a template lists them (SPEC §2)."""
KNOWN_FIELDS = frozenset(MANDATE_FIELDS)
REQUIRED_FIELDS = (
    "customer_id",
    "mandate_id",
    "frequency",
    "max_amount",
    "start_date",
    "payment_method_type",
)
"""The columns every row needs (rule_type / rule_value only for some frequencies)."""
Row = tuple[int, Mapping[str, object] | InvalidField]


def read_rows(path: Path) -> Iterator[Row]:
    """Rows of a mandate file with their line numbers (1-based, counting the CSV header)."""
    if not path.is_file():
        raise ServiceError(f"{path}: no such file")
    with path.open("rb") as raw:
        if b"\x00" in raw.read(8192):
            raise ServiceError(f"{path}: a binary file, expected JSON lines or CSV text")
    handle = path.open(encoding="utf-8-sig", newline="")
    try:
        if _is_jsonl(path, handle.read(4096)):
            handle.seek(0)
            yield from _jsonl_rows(handle)
        else:
            handle.seek(0)
            yield from _csv_rows(handle, path)
    except UnicodeDecodeError as exc:
        raise ServiceError(
            f"{path}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x}), "
            "expected JSON lines or CSV"
        ) from None
    except csv.Error as exc:
        raise ServiceError(f"{path}: not a readable CSV file ({exc})") from None
    finally:
        handle.close()


def _is_jsonl(path: Path, head: str) -> bool:
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson", ".json"):
        return True
    if suffix == ".csv":
        return False
    return head.lstrip().startswith("{")


def _jsonl_rows(lines: Iterator[str]) -> Iterator[Row]:
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            yield number, InvalidField("line", f"not valid JSON ({exc.msg} at column {exc.colno})")
            continue
        if not isinstance(value, dict):
            yield number, InvalidField("line", "expected a JSON object")
            continue
        unknown = sorted(set(value) - KNOWN_FIELDS)
        if unknown:
            yield number, InvalidField(unknown[0], "unknown field")
            continue
        yield number, value


def _csv_rows(handle: Iterator[str], path: Path) -> Iterator[Row]:
    reader = csv.reader(handle)
    header = [name.strip() for name in next(reader, [])]
    if not header:
        raise ServiceError(f"{path}: empty file, expected a CSV header row or JSON lines")
    unknown = sorted(set(header) - KNOWN_FIELDS)
    if unknown:
        raise ServiceError(f"{path}: line 1: unknown column(s): {', '.join(unknown)}")
    missing = [name for name in REQUIRED_FIELDS if name not in header]
    if missing:
        raise ServiceError(f"{path}: line 1: missing required column(s): {', '.join(missing)}")
    width = len(header)
    missing_cells = [""] * width
    # csv.reader and zip, not DictReader: the same rows, a quarter of the reading time.
    for cells in reader:
        if len(cells) > width:  # more cells than header columns
            yield reader.line_num, InvalidField("line", "more values than header columns")
            continue
        values = [cell.strip() for cell in cells]
        if not any(values):  # a blank line, or only separators
            continue
        if len(values) < width:  # fewer cells: the missing ones are empty
            values += missing_cells[len(values) :]
        yield reader.line_num, dict(zip(header, values, strict=True))
