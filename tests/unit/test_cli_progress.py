"""The import's progress line: redrawn in place at most every 0.25 s, only on a terminal."""

from __future__ import annotations

import io

from billing.cli.progress import ImportProgress


class Ticks:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_line_is_redrawn_at_most_four_times_a_second_and_ends_with_the_figures() -> None:
    clock, out = Ticks(), io.StringIO()
    progress = ImportProgress(out, enabled=True, clock=clock)
    for _ in progress.count(range(2000)):  # 2,000 rows at 1 ms each: 2 s
        clock.now += 0.001
    progress.bad_row("line 7: amount: required")
    progress.close()
    text = out.getvalue()
    assert 7 <= text.count("\r\x1b[K") <= 11  # ~8 redraws in 2 s, the error line, the end
    assert "line 7: amount: required\n" in text
    assert text.endswith("\r\x1b[K2,000 rows  1,000 rows/s  1 bad\n")


def test_off_a_terminal_only_the_bad_rows_are_written() -> None:
    clock, out = Ticks(), io.StringIO()  # StringIO is not a terminal
    progress = ImportProgress(out, clock=clock)
    for _ in progress.count(range(2000)):
        clock.now += 0.001
    progress.bad_row("line 7: amount: required")
    progress.close()
    assert out.getvalue() == "line 7: amount: required\n"
    assert (progress.rows, progress.bad) == (2000, 1)
