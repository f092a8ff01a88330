"""The receiver's batched enqueue: every stored pk is sent once, in order, a burst in few
messages; a broker refusal is logged (the sweeper re-sends), never raised to the request."""

from __future__ import annotations

import logging
import threading

import pytest

from billing.webhooks.enqueue import BatchedEnqueue


def test_a_burst_is_sent_in_few_messages_and_close_sends_what_is_pending() -> None:
    sent: list[list[int]] = []
    release = threading.Event()

    def send(pks: list[int]) -> None:
        release.wait(5)  # the first message is slow: the burst gathers behind it
        sent.append(pks)

    enqueue = BatchedEnqueue(send, batch=50, linger=0.01)
    for pk in range(120):
        enqueue(pk)
    release.set()
    enqueue.close()
    assert [pk for message in sent for pk in message] == list(range(120))
    assert len(sent) <= 4
    assert all(len(message) <= 50 for message in sent)


def test_a_refused_send_is_logged_not_raised(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sent: list[list[int]] = []

    def send(pks: list[int]) -> None:
        if not sent:
            sent.append([])
            raise ConnectionError("broker down")
        sent.append(pks)

    enqueue = BatchedEnqueue(send, linger=0)
    with caplog.at_level(logging.WARNING, logger="billing.webhooks"):
        enqueue(1)
        enqueue.close()
    enqueue = BatchedEnqueue(send, linger=0)
    enqueue(2)
    enqueue.close()
    assert "webhook events [1] stored; enqueue failed" in caplog.text
    assert sent == [[], [2]]
