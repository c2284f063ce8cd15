#!/usr/bin/env python3
"""Wire recorder: a tiny stand-in for the Graph API that logs every request.

LEARNING TOOL ONLY. It exists to see exactly what the real client libraries put on the
wire (method, path, query, headers, body, multipart parts) and which response fields
they read. It is not greenlight, implements no rules, and the conformance suites never
depend on it. Standard library only.

    python3 recorder.py --port 0 --log /tmp/wire.jsonl [--file-size-as int|str]
                        [--omit FIELD ...]

Prints "RECORDER http://127.0.0.1:PORT" on stdout once listening.

Every request is appended to the log as one JSON object per line. Answers are
Meta-shaped. A few switches change the answers so that a probe can see what a client
does with them:

  --file-size-as str     GET /{media-id} answers file_size as a string ("123")
  --omit contacts        message sends answer without "contacts"
  --omit messaging_product   ... without "messaging_product"
  --omit summary         template lists answer without "summary" even when asked
  --omit paging          lists answer without "paging"

and a few magic inputs trigger Meta error envelopes:

  to == "15550000400"    -> HTTP 400, code 131009 (parameter value is not valid)
  to == "15550000401"    -> HTTP 401, code 190 (invalid OAuth access token)
  to == "15550000429"    -> HTTP 429 + Retry-After: 1, code 130429 (rate limit hit)
  to == "15550000500"    -> HTTP 500, code 131000 (something went wrong)
  GET /{v}/100000000000429   -> HTTP 429 + Retry-After: 1, code 80007 (to count client retries)

  --content-type VALUE   Content-Type of JSON answers (default application/json; charset=UTF-8)
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import re
import secrets
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

VERSION_RE = re.compile(r"^/v\d+\.\d+(?=/|$)")
LOCK = threading.Lock()
STATE: dict = {
    "seq": 0,
    "media": {},  # id -> {"bytes", "mime"}
    "templates": {},  # waba -> list of template dicts
    "tenants": {},  # phone id -> tenant
    "wabas": {},  # waba id -> tenant
}
ARGS: argparse.Namespace


def digits(n: int = 15) -> str:
    return str(secrets.randbelow(9) + 1) + "".join(
        str(secrets.randbelow(10)) for _ in range(n - 1)
    )


def wamid() -> str:
    raw = b"\x18\x0b" + digits(11).encode() + b"\x15\x02\x00\x11\x18\x12" + secrets.token_hex(9).upper().encode()
    return "wamid." + base64.b64encode(raw).decode()


def parse_multipart(body: bytes, content_type: str) -> list[dict]:
    m = re.search(r'boundary="?([^";]+)"?', content_type)
    if not m:
        return [{"error": "no boundary in content-type"}]
    boundary = m.group(1).encode()
    parts = []
    for chunk in body.split(b"--" + boundary)[1:]:
        if chunk.startswith(b"--"):
            break
        chunk = chunk[2:] if chunk.startswith(b"\r\n") else chunk
        head, _, data = chunk.partition(b"\r\n\r\n")
        if data.endswith(b"\r\n"):
            data = data[:-2]
        headers = {}
        for line in head.decode("latin-1").split("\r\n"):
            if ":" in line:
                k, v = line.split(":", 1)
                headers[k.strip().lower()] = v.strip()
        disp = headers.get("content-disposition", "")
        name = re.search(r'\bname="([^"]*)"', disp)
        filename = re.search(r'\bfilename="([^"]*)"', disp)
        part = {
            "name": name.group(1) if name else None,
            "filename": filename.group(1) if filename else None,
            "content_type": headers.get("content-type"),
            "headers": headers,
            "length": len(data),
        }
        if filename is None and len(data) <= 200:
            part["value"] = data.decode("utf-8", "replace")
        else:
            part["sha256"] = hashlib.sha256(data).hexdigest()
        part["_data"] = data
        parts.append(part)
    return parts


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "wire-recorder/1"

    def log_message(self, fmt, *args):  # quiet
        pass

    # -- plumbing -----------------------------------------------------------------------
    def _record(self, body: bytes) -> dict:
        split = urlsplit(self.path)
        ctype = self.headers.get("Content-Type", "")
        entry: dict = {
            "t": round(time.time(), 3),
            "method": self.command,
            "target": self.path,
            "path": split.path,
            "query": split.query,
            "query_parsed": parse_qsl(split.query, keep_blank_values=True),
            "http_version": self.request_version,
            "headers": [[k, v] for k, v in self.headers.items()],
            "content_type": ctype or None,
            "body_length": len(body),
        }
        if ctype.startswith("multipart/form-data"):
            parts = parse_multipart(body, ctype)
            entry["multipart"] = [{k: v for k, v in p.items() if k != "_data"} for p in parts]
            self._parts = parts
        elif body:
            try:
                entry["json"] = json.loads(body)
                entry["body_text"] = body.decode("utf-8")
            except ValueError:
                entry["body_text"] = body.decode("utf-8", "replace")[:2000]
        with LOCK:
            STATE["seq"] += 1
            entry["seq"] = STATE["seq"]
        self._entry = entry
        return entry

    def _send(self, status: int, payload, ctype=None, extra=None):
        ctype = ctype or ARGS.content_type
        raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(raw)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(raw)
        self._entry["response"] = {
            "status": status,
            "content_type": ctype,
            "body": payload if not isinstance(payload, bytes) else f"<{len(raw)} bytes>",
        }
        with LOCK, open(ARGS.log, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(self._entry, ensure_ascii=False) + "\n")

    def _error(self, http: int, code: int, message: str, details: str, extra=None, typ="OAuthException"):
        self._send(
            http,
            {
                "error": {
                    "message": f"(#{code}) {message}",
                    "type": typ,
                    "code": code,
                    "error_data": {"messaging_product": "whatsapp", "details": details},
                    "fbtrace_id": "A" + secrets.token_urlsafe(16),
                }
            },
            extra=extra,
        )

    def _handle(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if not length and self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            body = self._read_chunked()
        self._parts = []
        self._record(body)
        try:
            self._route(body)
        except Exception as exc:  # keep recording even if a branch is wrong
            self._entry["recorder_exception"] = repr(exc)
            self._error(500, 1, "recorder bug", repr(exc))

    def _read_chunked(self) -> bytes:
        out = b""
        while True:
            size = int(self.rfile.readline().strip() or b"0", 16)
            if size == 0:
                self.rfile.readline()
                return out
            out += self.rfile.read(size)
            self.rfile.readline()

    do_GET = do_POST = do_DELETE = do_PUT = do_PATCH = do_HEAD = _handle

    # -- routes -------------------------------------------------------------------------
    def _base(self) -> str:
        host = self.headers.get("Host") or f"127.0.0.1:{self.server.server_address[1]}"
        if not re.match(r"^(127\.0\.0\.1|localhost)(:\d+)?$", host):
            host = f"127.0.0.1:{self.server.server_address[1]}"
        return f"http://{host}"

    def _route(self, body: bytes):
        path = self._entry["path"]
        query = dict(self._entry["query_parsed"])
        m = VERSION_RE.match(path)
        self._entry["graph_version"] = m.group(0)[1:] if m else None
        rest = path[m.end():] if m else path
        segs = [s for s in rest.split("/") if s]
        method = self.command
        j = self._entry.get("json")

        # greenlight's own surfaces (minimal, for dry runs of the suites)
        if path == "/admin/v1/tenants" and method == "POST":
            return self._tenant(j or {})
        if len(segs) == 4 and segs[:2] == ["sandbox", "v1"] and segs[3] == "inbound":
            return self._send(200, {"id": wamid()})
        if segs[:1] == ["media-download"] and len(segs) == 2:
            return self._download(segs[1])

        if len(segs) == 2 and segs[1] == "messages" and method == "POST":
            return self._messages(j or {})
        if len(segs) == 2 and segs[1] == "media" and method == "POST":
            return self._upload(query)
        if len(segs) == 2 and segs[1] == "phone_numbers" and method == "GET":
            return self._phone_list(segs[0], query)
        if len(segs) == 2 and segs[1] == "message_templates":
            return self._templates(segs[0], method, query, j)
        if len(segs) == 1 and segs[0] == "100000000000429":
            return self._error(429, 80007, "Rate limit issues", "recorder: magic 429 on GET", extra={"Retry-After": "1"})
        if len(segs) == 1:
            ident = segs[0]
            if ident in STATE["media"]:
                if method == "DELETE":
                    return self._send(200, {"success": True})
                return self._media_info(ident)
            for tpls in STATE["templates"].values():
                for t in tpls:
                    if t["id"] == ident:
                        return self._send(200, t)
            if method == "GET":
                return self._send(200, self._phone(ident))
        return self._error(400, 2500, "Unknown path components", f"recorder has no route for {method} {path}")

    def _tenant(self, j: dict):
        phone_id, waba_id = digits(15), digits(15)
        tenant = {
            "business_id": digits(15),
            "waba_id": waba_id,
            "app_id": digits(15),
            "app_secret": secrets.token_hex(16),
            "access_token": "EAAG" + secrets.token_urlsafe(48),
            "phone_numbers": [
                {"id": phone_id, "display_phone_number": "+1 555-010-0001", "verified_name": j.get("business_name", "Recorder")}
            ],
        }
        STATE["tenants"][phone_id] = tenant
        STATE["wabas"][waba_id] = tenant
        return self._send(201, tenant)

    def _messages(self, j: dict):
        if j.get("status") == "read":
            return self._send(200, {"success": True})
        to = str(j.get("to", ""))
        if to == "15550000400":
            return self._error(400, 131009, "Parameter value is not valid", "recorder: magic number 15550000400")
        if to == "15550000401":
            return self._error(401, 190, "Invalid OAuth access token - Cannot parse access token", "recorder: magic 401")
        if to == "15550000429":
            return self._error(429, 130429, "Rate limit hit", "recorder: magic 429", extra={"Retry-After": "1"})
        if to == "15550000500":
            return self._error(500, 131000, "Something went wrong", "recorder: magic 500")
        resp: dict = {
            "messaging_product": "whatsapp",
            "contacts": [{"input": to, "wa_id": re.sub(r"\D", "", to)}],
            "messages": [{"id": wamid()}],
        }
        if j.get("type") == "template":
            resp["messages"][0]["message_status"] = "accepted"
        for f in ARGS.omit:
            resp.pop(f, None)
        return self._send(200, resp)

    def _upload(self, query: dict):
        parts = {p["name"]: p for p in self._parts}
        f = parts.get("file")
        if not f:
            return self._error(400, 100, "Invalid parameter", "recorder: no file part")
        mime = (parts.get("type") or {}).get("value") or f.get("content_type") or "application/octet-stream"
        media_id = digits(16)
        STATE["media"][media_id] = {"bytes": f["_data"], "mime": mime}
        return self._send(200, {"id": media_id})

    def _media_info(self, media_id: str):
        item = STATE["media"][media_id]
        size = len(item["bytes"])
        body = {
            "messaging_product": "whatsapp",
            "url": f"{self._base()}/media-download/{media_id}?mid={media_id}&ext=1&hash=ATs{secrets.token_hex(4)}",
            "mime_type": item["mime"],
            "sha256": hashlib.sha256(item["bytes"]).hexdigest(),
            "file_size": str(size) if ARGS.file_size_as == "str" else size,
            "id": media_id,
        }
        return self._send(200, body)

    def _download(self, media_id: str):
        item = STATE["media"].get(media_id)
        if not item:
            return self._send(404, b"not found", ctype="text/plain")
        return self._send(200, item["bytes"], ctype=item["mime"])

    def _phone(self, ident: str) -> dict:
        tenant = STATE["tenants"].get(ident)
        name = tenant["phone_numbers"][0]["verified_name"] if tenant else "Recorder"
        return {
            "verified_name": name,
            "code_verification_status": "VERIFIED",
            "display_phone_number": "+1 555-010-0001",
            "quality_rating": "GREEN",
            "platform_type": "CLOUD_API",
            "throughput": {"level": "STANDARD"},
            "id": ident,
        }

    def _paged(self, data: list) -> dict:
        out: dict = {"data": data}
        if "paging" not in ARGS.omit:
            out["paging"] = {"cursors": {"before": "QVFIUk1", "after": "QVFIUk2"}}
        return out

    def _phone_list(self, waba: str, query: dict):
        tenant = STATE["wabas"].get(waba)
        phones = tenant["phone_numbers"] if tenant else [{"id": digits(15)}]
        return self._send(200, self._paged([self._phone(p["id"]) for p in phones]))

    def _templates(self, waba: str, method: str, query: dict, j):
        tpls = STATE["templates"].setdefault(waba, [])
        if method == "POST":
            j = j or {}
            t = {
                "name": j.get("name"),
                "parameter_format": str(j.get("parameter_format", "POSITIONAL")).upper(),
                "components": j.get("components", []),
                "language": j.get("language"),
                "status": "PENDING",
                "category": str(j.get("category", "UTILITY")).upper(),
                "id": digits(15),
            }
            tpls.append(t)
            return self._send(200, {"id": t["id"], "status": "PENDING", "category": t["category"]})
        if method == "DELETE":
            name = query.get("name")
            STATE["templates"][waba] = [t for t in tpls if t["name"] != name]
            return self._send(200, {"success": True})
        body = self._paged(list(tpls))
        if "summary" in query and "summary" not in ARGS.omit:
            body["summary"] = {
                "total_count": len(tpls),
                "message_template_count": len(tpls),
                "message_template_limit": 250,
                "are_translations_complete": True,
            }
        return self._send(200, body)


def main() -> None:
    global ARGS
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--log", required=True)
    ap.add_argument("--file-size-as", choices=["int", "str"], default="int")
    ap.add_argument("--omit", action="append", default=[])
    ap.add_argument("--content-type", default="application/json; charset=UTF-8")
    ARGS = ap.parse_args()
    srv = ThreadingHTTPServer(("127.0.0.1", ARGS.port), Handler)
    print(f"RECORDER http://127.0.0.1:{srv.server_address[1]}", flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
