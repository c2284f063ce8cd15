"""Shared helpers for the Python conformance tests.

Environment, greenlight's public setup endpoints (admin tenant, sandbox inbound), an
httpx transport that points pywa at greenlight, a tiny PNG, Meta-format webhook bodies.
Only the setup steps use plain httpx; every Cloud API call in the tests goes through pywa.
"""

from __future__ import annotations

import hashlib
import base64
import hmac
import json
import os
import re
import struct
import zlib

import httpx

BASE_URL = os.environ.get("GREENLIGHT_URL", "").rstrip("/")
ADMIN_TOKEN = os.environ.get("GREENLIGHT_ADMIN_TOKEN", "")
# Unset: pywa's own default (v26.0 in 4.5.0), which exercises "any /vN.M" on the server.
GRAPH_VERSION = os.environ.get("CONFORMANCE_GRAPH_VERSION", "").lstrip("v") or None
SKIP = {s.strip() for s in os.environ.get("CONFORMANCE_SKIP", "").split(",") if s.strip()}

CUSTOMER = "15551230001"  # writes first: the customer-service window is open
STRANGER = "15559990000"  # never wrote: free-form accepted, fails later with 131047
IMAGE_LINK = "https://example.com/conformance/pixel.png"
WAMID = re.compile(r"^wamid\.[A-Za-z0-9+/=_-]+$")


def server_configured() -> bool:
    return bool(BASE_URL and ADMIN_TOKEN)


class GraphRewriteTransport(httpx.BaseTransport):
    """Sends what pywa addresses to https://graph.facebook.com to greenlight instead.

    pywa has no base-URL option (it overwrites ``session.base_url``); this is the one
    change made to it. Other hosts (e.g. a media URL greenlight hands out) go unchanged.
    """

    def __init__(self, base_url: str):
        self._base = httpx.URL(base_url)
        self._inner = httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.host == "graph.facebook.com":
            prefix = self._base.raw_path.decode().rstrip("/")
            request.url = request.url.copy_with(
                scheme=self._base.scheme,
                host=self._base.host,
                port=self._base.port,
                path=prefix + request.url.path,
            )
            request.headers["Host"] = self._base.netloc.decode()
        return self._inner.handle_request(request)

    def close(self) -> None:
        self._inner.close()


def pywa_session() -> httpx.Client:
    return httpx.Client(transport=GraphRewriteTransport(BASE_URL), timeout=30)


def _call(method: str, path: str, token: str, body: dict | None = None) -> httpx.Response:
    return httpx.request(
        method,
        BASE_URL + path,
        headers={"Authorization": f"Bearer {token}"},
        json=body,
        timeout=30,
    )


def create_tenant(lib: str) -> dict:
    r = _call("POST", "/admin/v1/tenants", ADMIN_TOKEN, {"business_name": f"Conformance {lib}"})
    assert r.status_code == 201, f"create tenant: HTTP {r.status_code}: {r.text}"
    t = r.json()
    for k in ("business_id", "waba_id", "app_id", "app_secret", "access_token"):
        assert isinstance(t.get(k), str) and t[k], f"create tenant: missing {k}: {r.text}"
    assert t.get("phone_numbers") and t["phone_numbers"][0].get("id"), r.text
    t["phone_number_id"] = t["phone_numbers"][0]["id"]
    return t


def customer_writes(tenant: dict, frm: str = CUSTOMER, text: str = "hi") -> str:
    r = _call(
        "POST",
        f"/sandbox/v1/{tenant['phone_number_id']}/inbound",
        tenant["access_token"],
        {"from": frm, "profile_name": "Ann", "type": "text", "text": {"body": text}},
    )
    assert 200 <= r.status_code < 300, f"sandbox inbound: HTTP {r.status_code}: {r.text}"
    return r.json()["id"]


def make_png() -> bytes:
    """A valid 2x2 RGB PNG."""

    def chunk(typ: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + typ + data + struct.pack(">I", zlib.crc32(typ + data))

    rows = bytes([0, 255, 0, 0, 0, 255, 0, 0, 0, 0, 255, 255, 255, 255])
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", 2, 2, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def sha256_matches(got: str, data: bytes) -> bool:
    d = hashlib.sha256(data)
    return got in (d.hexdigest(), base64.b64encode(d.digest()).decode())


# -- Meta's webhook byte format -------------------------------------------------------------
NON_ASCII_TEXT = "Café é 中文 😀"
# Business-scoped user id (Meta 2026): pywa 4.5 requires contacts[].user_id in webhooks.
CUSTOMER_BSUID = "US.13491208655302741918"


def meta_json(value, *, escape_slashes: bool = False) -> bytes:
    """Compact JSON, non-ASCII as lowercase \\uXXXX (surrogate pairs beyond the BMP)."""
    s = json.dumps(value, ensure_ascii=True, separators=(",", ":"))
    # json.dumps writes lowercase hex already; make sure of it.
    s = re.sub(r"\\u([0-9A-Fa-f]{4})", lambda m: "\\u" + m.group(1).lower(), s)
    if escape_slashes:
        s = s.replace("/", "\\/")
    return s.encode("ascii")


def signature(raw: bytes, app_secret: str) -> str:
    return "sha256=" + hmac.new(app_secret.encode(), raw, hashlib.sha256).hexdigest()


def sample_inbound_webhook(waba_id: str = "102290129340398", phone_number_id: str = "106540352242922") -> dict:
    return {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": waba_id,
                "changes": [
                    {
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {
                                "display_phone_number": "15550783881",
                                "phone_number_id": phone_number_id,
                            },
                            "contacts": [
                                {"profile": {"name": "Zoë 李 😀"}, "wa_id": CUSTOMER, "user_id": CUSTOMER_BSUID}
                            ],
                            "messages": [
                                {
                                    "from": CUSTOMER,
                                    "from_user_id": CUSTOMER_BSUID,
                                    "id": "wamid.HBgLMTU1NTEyMzAwMDEVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=",
                                    "timestamp": "1749416383",
                                    "type": "text",
                                    "text": {"body": f"{NON_ASCII_TEXT} https://example.com/a/b"},
                                }
                            ],
                        },
                        "field": "messages",
                    }
                ],
            }
        ],
    }


def sample_status_webhook(waba_id: str = "102290129340398", phone_number_id: str = "106540352242922") -> dict:
    """A `failed` status (131047) in the current format: statuses[] plus contacts[]."""
    return {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": waba_id,
                "changes": [
                    {
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {
                                "display_phone_number": "15550783881",
                                "phone_number_id": phone_number_id,
                            },
                            "contacts": [
                                {"profile": {"name": "Zoë 李 😀"}, "wa_id": STRANGER, "user_id": CUSTOMER_BSUID}
                            ],
                            "statuses": [
                                {
                                    "id": "wamid.HBgLMTU1NTk5OTAwMDAVAgARGBI0QUQ2MjA4NEYyRkExNjMyREUA",
                                    "status": "failed",
                                    "timestamp": "1751142888",
                                    "recipient_id": STRANGER,
                                    "recipient_user_id": CUSTOMER_BSUID,
                                    "errors": [
                                        {
                                            "code": 131047,
                                            "title": "Re-engagement message",
                                            "message": "Re-engagement message",
                                            "error_data": {
                                                "details": "Message failed to send because more than 24 hours have passed since the customer last replied to this number."
                                            },
                                            "href": "/documentation/business-messaging/whatsapp/support/error-codes",
                                        }
                                    ],
                                }
                            ],
                        },
                        "field": "messages",
                    }
                ],
            }
        ],
    }
