"""A minimal Juspay-shaped gateway for the benchmarks: `POST /txns` charges, `GET /orders/{id}`
reads, each answered after `--latency-ms`; O(1) work per request (a dict of orders).

    python bench/juspay_standin.py --port 8431 --latency-ms 50

Shapes from ../shared/juspay-api.md (`/txns` answer: order_id, txn_id, txn_uuid, status;
order status: order_id, status, amount; an unknown order: HTTP 404, status NOT_FOUND). It is
a raw asyncio HTTP/1.1 server with keep-alive, so its CPU per request stays small beside
billing's; the bundled sandbox (`billing sandbox`) is the one to test behaviour against.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import uuid
from urllib.parse import parse_qs

ORDERS: dict[str, dict[str, str]] = {}


def _answer(method: str, path: str, body: bytes) -> tuple[int, bytes]:
    if method == "POST" and path == "/txns":
        form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
        order_id = form.get("order.order_id", "")
        if order_id in ORDERS:
            return 400, json.dumps(
                {"status": "DUPLICATE_ORDER_ID", "error_message": "order id already used"}
            ).encode()
        order = {
            "order_id": order_id,
            "status": "CHARGED",
            "amount": form.get("order.amount", "0"),
            "txn_id": f"m-{order_id}-1",
            "txn_uuid": uuid.uuid4().hex,
        }
        ORDERS[order_id] = order
        return 200, json.dumps({k: v for k, v in order.items() if k != "amount"}).encode()
    if method == "GET" and path.startswith("/orders/"):
        order_id = path.removeprefix("/orders/")
        if order_id not in ORDERS:
            return 404, b'{"status": "NOT_FOUND", "error_code": "NOT_FOUND"}'
        o = ORDERS[order_id]
        return 200, json.dumps({**o, "amount": float(o["amount"]), "currency": "INR"}).encode()
    return 404, b'{"status": "error", "error_message": "no such endpoint"}'


async def _serve(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, latency: float
) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, target, _ = lines[0].split(" ", 2)
            length = 0
            for line in lines[1:]:
                if line[:15].lower() == "content-length:":
                    length = int(line[15:])
            body = await reader.readexactly(length) if length else b""
            if latency:
                await asyncio.sleep(latency)
            status, payload = _answer(method, target.split("?", 1)[0], body)
            writer.write(
                f"HTTP/1.1 {status} X\r\ncontent-type: application/json\r\n"
                f"content-length: {len(payload)}\r\n\r\n".encode()
                + payload
            )
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def main(port: int, latency: float) -> None:
    server = await asyncio.start_server(
        lambda r, w: _serve(r, w, latency), "127.0.0.1", port, backlog=1024
    )
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    args = parser.parse_args()
    asyncio.run(main(args.port, args.latency_ms / 1000))
