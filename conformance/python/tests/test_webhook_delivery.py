"""Webhooks as a real greenlight sends them, checked the way a pywa receiver checks them.

A local receiver (http.server in a thread, raw bytes kept) answers greenlight's verification
handshake; a customer message with é, 中文 and an emoji is POSTed to it; pywa's own
validator must accept those exact bytes with the app secret, and pywa must parse the text back.
The receiver listens on CONFORMANCE_RECEIVER_HOST (default 127.0.0.1), which greenlight must
reach (sandbox mode allows loopback callbacks by default).
"""

from __future__ import annotations

import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pytest

import greenlight_support as gs
from webhook_verify import verify_with_pywa

pytestmark = pytest.mark.server

VERIFY_TOKEN = "conformance-verify-token"
HOST = os.environ.get("CONFORMANCE_RECEIVER_HOST", "127.0.0.1")
PROFILE = "Zoë 李 😀"
TEXT = f"{gs.NON_ASCII_TEXT} \"quotes\" </script> https://example.com/a/b"


class _Receiver(BaseHTTPRequestHandler):
    hits: list = []

    def do_GET(self):  # noqa: N802 (http.server's naming)
        q = parse_qs(urlparse(self.path).query)
        ok = q.get("hub.mode") == ["subscribe"] and q.get("hub.verify_token") == [VERIFY_TOKEN]
        body = (q.get("hub.challenge", [""])[0] if ok else "forbidden").encode()
        self.send_response(200 if ok else 403)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):  # noqa: N802
        raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        type(self).hits.append((raw, self.headers.get("X-Hub-Signature-256")))
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def delivered():
    _Receiver.hits = []
    server = ThreadingHTTPServer((HOST, 0), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://{HOST}:{server.server_address[1]}/hook"
    r = gs._call("POST", "/admin/v1/tenants", gs.ADMIN_TOKEN, {
        "business_name": "Conformance pywa webhooks",
        "webhook": {"callback_url": url, "verify_token": VERIFY_TOKEN},
    })
    assert r.status_code == 201, r.text
    tenant = r.json()
    phone = tenant["phone_numbers"][0]["id"]
    r = gs._call("POST", f"/sandbox/v1/{phone}/inbound", tenant["access_token"], {
        "from": "15551230010", "profile_name": PROFILE, "type": "text", "text": {"body": TEXT},
    })
    assert r.status_code == 200, r.text
    deadline = time.time() + 10
    while not _Receiver.hits and time.time() < deadline:
        time.sleep(0.025)
    server.shutdown()
    assert _Receiver.hits, "no webhook reached the receiver within 10 s"
    raw, header = _Receiver.hits[0]
    return tenant, raw, header


def test_body_is_metas_byte_format(delivered):
    _, raw, header = delivered
    assert raw.isascii()
    assert b"\\u00e9" in raw and b"\\u4e2d\\u6587" in raw and b"\\ud83d\\ude00" in raw
    assert header.startswith("sha256=") and len(header) == 71


def test_pywa_accepts_the_bytes_greenlight_sent(delivered):
    tenant, raw, header = delivered
    assert verify_with_pywa(raw, tenant["app_secret"], header)
    assert not verify_with_pywa(raw, tenant["app_secret"] + "x", header)


def test_pywa_parses_the_text_back(delivered):
    from pywa import WhatsApp
    from pywa.handlers import MessageHandler
    from pywa.types import Message

    tenant, raw, header = delivered
    got = []
    wa = WhatsApp(phone_id=tenant["phone_numbers"][0]["id"], verify_token="x",
                  app_secret=tenant["app_secret"], filter_updates=False)
    wa.add_handlers(MessageHandler(lambda _, m: got.append(m)))
    assert wa.webhook_update_validator(raw, header) is None
    assert wa.webhook_update_handler(raw) == ("ok", 200)
    assert len(got) == 1 and isinstance(got[0], Message)
    assert got[0].text == TEXT
    assert got[0].from_user.name == PROFILE
