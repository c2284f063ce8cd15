"""WIRE PROBE (learning tool, not a test): drives pywa against the wire recorder
(../recorder/recorder.py) and prints, as JSON, what each call returned or raised.

    .venv/bin/python wire_probe.py http://127.0.0.1:PORT > out.json
"""

from __future__ import annotations

import json
import sys
import warnings

import httpx
from pywa import WhatsApp

import greenlight_support as gs

warnings.simplefilter("ignore")
BASE = sys.argv[1]
gs.BASE_URL = BASE
PHONE, WABA = "106540352242922", "102290129340398"


def run(name, fn):
    try:
        httpx.get(f"{BASE}/__probe__/pywa:{name}")
    except Exception:
        pass
    try:
        v = fn()
        s = repr(v)
        return {"ok": True, "value": s[:300]}
    except Exception as e:  # noqa: BLE001
        d = {"ok": False, "raised": type(e).__module__ + "." + type(e).__name__, "message": str(e)[:240]}
        for k in ("code", "details", "status_code"):
            if hasattr(e, k):
                d[k] = getattr(e, k)
        if getattr(e, "response", None) is not None:
            d["httpStatus"] = e.response.status_code
        return d


wa = WhatsApp(phone_id=PHONE, token="EAAGprobe", waba_id=WABA, session=gs.pywa_session())
out: dict = {}
out["sendText"] = run("sendText", lambda: wa.send_message(to="15551230001", text="hi").id)
media = {}
out["upload"] = run("upload", lambda: media.setdefault("m", wa.upload_media(media=gs.make_png(), mime_type="image/png", filename="p.png")).id)
out["mediaInfo"] = run("mediaInfo", lambda: wa.get_media_url(media_id=media["m"].id))
out["download"] = run("download", lambda: len(wa.get_media_bytes(url=wa.get_media_url(media_id=media["m"].id).url)))
out["markRead"] = run("markRead", lambda: wa.mark_message_as_read(message_id="wamid.X"))
out["phoneGet"] = run("phoneGet", lambda: wa.get_business_phone_number())
out["phoneList"] = run("phoneList", lambda: list(wa.get_business_phone_numbers()))
out["templatesList"] = run("templatesList", lambda: wa.get_templates())
for to in ("15550000400", "15550000401", "15550000429", "15550000500"):
    out[f"send_{to[-3:]}"] = run(f"send_{to[-3:]}", lambda to=to: wa.send_message(to=to, text="x"))
out["get429"] = run("get429", lambda: wa.get_media_url(media_id="100000000000429"))
print(json.dumps(out, indent=2, default=str))
