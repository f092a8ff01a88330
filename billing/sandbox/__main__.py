"""`python -m billing.sandbox --port 8090`: the sandbox without the billing CLI."""

from __future__ import annotations

import argparse
import os

from billing.sandbox.server import serve


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m billing.sandbox")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--api-key", default=os.environ.get("SANDBOX_API_KEY", "sandbox_api_key"))
    parser.add_argument("--merchant-id", default=os.environ.get("SANDBOX_MERCHANT_ID", "sandbox"))
    parser.add_argument("--webhook-url")
    args = parser.parse_args()
    serve(
        args.host,
        args.port,
        api_key=args.api_key,
        merchant_id=args.merchant_id,
        webhook_url=args.webhook_url,
        webhook_username=os.environ.get("SANDBOX_WEBHOOK_USERNAME"),
        webhook_password=os.environ.get("SANDBOX_WEBHOOK_PASSWORD"),
    )


if __name__ == "__main__":
    main()
