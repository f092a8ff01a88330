"""The CSV reader of mandate files: the same rows, line numbers and row errors as DictReader."""

from __future__ import annotations

from pathlib import Path

from billing.domain.errors import InvalidField
from billing.services.mandates.files import read_rows

HEADER = "customer_id,mandate_id,frequency,max_amount,start_date,payment_method_type,status\n"


def test_short_rows_extra_cells_and_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    path.write_text(
        HEADER
        + " c1 , m1 ,MONTHLY,100,2026-01-01,UPI,ACTIVE\n"
        + "\n"
        + " , ,,,,,\n"
        + "c2,m2,MONTHLY\n"
        + "c3,m3,MONTHLY,100,2026-01-01,UPI,ACTIVE,extra\n"
        + 'c4,"m\n4",DAILY,5,2026-01-01,NB,\n'
    )
    rows = list(read_rows(path))
    assert [line for line, _ in rows] == [2, 5, 6, 8]
    assert rows[0][1] == {
        "customer_id": "c1",
        "mandate_id": "m1",
        "frequency": "MONTHLY",
        "max_amount": "100",
        "start_date": "2026-01-01",
        "payment_method_type": "UPI",
        "status": "ACTIVE",
    }
    assert rows[1][1] == {
        "customer_id": "c2",
        "mandate_id": "m2",
        "frequency": "MONTHLY",
        "max_amount": "",
        "start_date": "",
        "payment_method_type": "",
        "status": "",
    }
    error = rows[2][1]
    assert isinstance(error, InvalidField)
    assert (error.field, error.reason) == ("line", "more values than header columns")
    fourth = rows[3][1]
    assert not isinstance(fourth, InvalidField)
    assert fourth["mandate_id"] == "m\n4"
    assert fourth["status"] == ""
