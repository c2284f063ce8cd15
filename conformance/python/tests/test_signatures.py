"""Webhook signature check: pywa's validator (app_secret) must accept a body signed the way
greenlight signs, in Meta's byte format (compact JSON, non-ASCII as lowercase \\uXXXX,
surrogate pairs beyond the BMP). No server needed; bodies from a real greenlight go
through the same helper (webhook_verify.py)."""

from __future__ import annotations

import json

import greenlight_support as gs
from webhook_verify import verify_with_pywa

SECRET = "3f1c0a9e5b7d4e2f8a6c1b0d9e8f7a6b"


def test_meta_format_of_test_bodies():
    raw = gs.meta_json({"t": "é 中文 😀"})
    assert raw == b'{"t":"\\u00e9 \\u4e2d\\u6587 \\ud83d\\ude00"}'
    assert json.loads(raw)["t"] == "é 中文 😀"


def test_pywa_accepts_meta_format_body():
    raw = gs.meta_json(gs.sample_inbound_webhook())
    assert verify_with_pywa(raw, SECRET, gs.signature(raw, SECRET))


def test_pywa_accepts_escaped_slashes():
    raw = gs.meta_json(gs.sample_inbound_webhook(), escape_slashes=True)
    assert b"\\/" in raw
    assert verify_with_pywa(raw, SECRET, gs.signature(raw, SECRET))


def test_pywa_rejects_tampered_body():
    raw = gs.meta_json(gs.sample_inbound_webhook())
    header = gs.signature(raw, SECRET)
    assert not verify_with_pywa(raw.replace(b"\\u00e9", b"\\u00e8"), SECRET, header)


def test_pywa_rejects_other_secret():
    raw = gs.meta_json(gs.sample_inbound_webhook())
    assert not verify_with_pywa(raw, SECRET, gs.signature(raw, SECRET + "x"))


def test_pywa_parses_meta_format_body_back_to_the_text():
    from pywa import WhatsApp
    from pywa.handlers import MessageHandler
    from pywa.types import Message

    got = []
    wa = WhatsApp(
        phone_id="106540352242922", verify_token="x", app_secret=SECRET, filter_updates=False
    )
    wa.add_handlers(MessageHandler(lambda _, m: got.append(m)))
    raw = gs.meta_json(gs.sample_inbound_webhook())
    assert wa.webhook_update_validator(raw, gs.signature(raw, SECRET)) is None
    assert wa.webhook_update_handler(raw) == ("ok", 200)
    assert len(got) == 1 and isinstance(got[0], Message)
    assert got[0].text.startswith(gs.NON_ASCII_TEXT)
    assert got[0].from_user.name == "Zoë 李 😀"


def test_pywa_parses_failed_status_webhook():
    from pywa import WhatsApp
    from pywa.handlers import MessageStatusHandler
    from pywa.types import MessageStatus

    got = []
    wa = WhatsApp(phone_id="106540352242922", verify_token="x", app_secret=SECRET, filter_updates=False)
    wa.add_handlers(MessageStatusHandler(lambda _, s: got.append(s)))
    raw = gs.meta_json(gs.sample_status_webhook())
    assert verify_with_pywa(raw, SECRET, gs.signature(raw, SECRET))
    assert wa.webhook_update_handler(raw) == ("ok", 200)
    assert len(got) == 1 and isinstance(got[0], MessageStatus)
    assert got[0].status == "failed"
    assert got[0].error is not None and got[0].error.code == 131047
