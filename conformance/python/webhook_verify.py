"""Runs pywa's own webhook signature check over raw bytes.

    verify_with_pywa(raw_body: bytes, app_secret: str, signature_header: str) -> bool

As a command (for bodies captured from a real greenlight):

    .venv/bin/python webhook_verify.py --secret APP_SECRET --signature 'sha256=…' < body.json
"""

from __future__ import annotations

import argparse
import sys

from pywa import WhatsApp


def verify_with_pywa(raw_body: bytes, app_secret: str, signature_header: str | None) -> bool:
    # No token: a receive-only client, as in pywa's docs for custom servers.
    wa = WhatsApp(verify_token="conformance", app_secret=app_secret, validate_updates=True)
    # None means valid; otherwise ("Unauthorized", 401) / ("Forbidden", 403).
    return wa.webhook_update_validator(raw_body, signature_header) is None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--secret", required=True)
    ap.add_argument("--signature", required=True, help="X-Hub-Signature-256 header value")
    a = ap.parse_args()
    ok = verify_with_pywa(sys.stdin.buffer.read(), a.secret, a.signature)
    print(f"pywa: {'accepted' if ok else 'REJECTED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
