// Webhooks as a real greenlight sends them, checked the way receivers check them: a local
// receiver (node:http, raw bytes kept) answers greenlight's verification handshake, then each
// Node library's own signature verifier must accept the POSTed bytes as they arrived — a
// customer message with é, 中文 and an emoji, so the non-ASCII escapes are exercised. kapso and
// great-detail verify the raw bytes; whatsapp-api-js re-escapes the body before verifying.
//
// The receiver listens on CONFORMANCE_RECEIVER_HOST (default 127.0.0.1): greenlight must be
// able to reach it (sandbox mode allows loopback callbacks by default).

import assert from "node:assert/strict";
import { createServer } from "node:http";
import { after, before, describe, test } from "node:test";
import { normalizeWebhook } from "@kapso/whatsapp-cloud-api/server";
import { ADMIN_TOKEN, BASE_URL, NEEDS_SERVER, NON_ASCII_TEXT } from "../lib/support.mjs";
import { VERIFIERS, verifyWith } from "../lib/verifiers.mjs";

const VERIFY_TOKEN = "conformance-verify-token";
const HOST = process.env.CONFORMANCE_RECEIVER_HOST || "127.0.0.1";
const PROFILE = "Zoë 李 😀";

async function call(method, path, token, body) {
  const res = await fetch(`${BASE_URL}${path}`, {
    method,
    headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : undefined, text };
}

describe("webhooks delivered by greenlight pass each library's signature check", { skip: NEEDS_SERVER }, () => {
  const hits = [];
  let server;
  let callbackUrl;
  let tenant;
  let hit;
  const text = `${NON_ASCII_TEXT} "quotes" </script> https://example.com/a/b`;

  before(async () => {
    server = createServer((req, res) => {
      const u = new URL(req.url, "http://receiver");
      if (req.method === "GET") {
        const ok = u.searchParams.get("hub.mode") === "subscribe" && u.searchParams.get("hub.verify_token") === VERIFY_TOKEN;
        res.writeHead(ok ? 200 : 403, { "content-type": "text/plain" });
        res.end(ok ? u.searchParams.get("hub.challenge") : "forbidden");
        return;
      }
      const chunks = [];
      req.on("data", (c) => chunks.push(c));
      req.on("end", () => {
        hits.push({ raw: Buffer.concat(chunks), headers: req.headers });
        res.writeHead(200);
        res.end("ok");
      });
    });
    await new Promise((r) => server.listen(0, HOST, r));
    callbackUrl = `http://${HOST}:${server.address().port}/hook`;

    const created = await call("POST", "/admin/v1/tenants", ADMIN_TOKEN, {
      business_name: "Conformance webhooks",
      webhook: { callback_url: callbackUrl, verify_token: VERIFY_TOKEN },
    });
    assert.equal(created.status, 201, created.text);
    tenant = created.json;
    const phone = tenant.phone_numbers[0].id;
    const sent = await call("POST", `/sandbox/v1/${phone}/inbound`, tenant.access_token, {
      from: "15551230009",
      profile_name: PROFILE,
      type: "text",
      text: { body: text },
    });
    assert.equal(sent.status, 200, sent.text);
    const deadline = Date.now() + 10_000;
    while (!hits.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
    assert.ok(hits.length, "no webhook reached the receiver within 10 s");
    hit = hits[0];
  });

  after(() => server?.close());

  test("a wrong verify token fails the handshake with a 400 saying why", async () => {
    const r = await call("POST", "/admin/v1/tenants", ADMIN_TOKEN, {
      business_name: "Conformance bad token",
      webhook: { callback_url: callbackUrl, verify_token: "wrong" },
    });
    assert.equal(r.status, 400, r.text);
    assert.match(r.json.error.message, /Callback verification failed.*403/);
  });

  test("the body is Meta's byte format (ASCII only, lowercase \\u escapes, surrogate pairs)", () => {
    const raw = hit.raw.toString("latin1");
    assert.ok([...hit.raw].every((b) => b < 0x80));
    assert.ok(raw.includes("\\u00e9") && raw.includes("\\u4e2d\\u6587") && raw.includes("\\ud83d\\ude00"), raw);
    assert.equal(hit.headers["content-type"], "application/json");
    assert.match(hit.headers["x-hub-signature-256"], /^sha256=[0-9a-f]{64}$/);
  });

  for (const name of Object.keys(VERIFIERS)) {
    test(`${name} accepts the bytes greenlight sent`, async () => {
      const ok = await verifyWith(name, {
        rawBody: hit.raw,
        appSecret: tenant.app_secret,
        signatureHeader: hit.headers["x-hub-signature-256"],
      });
      assert.equal(ok, true);
    });

    test(`${name} rejects them with another app secret`, async () => {
      const ok = await verifyWith(name, {
        rawBody: hit.raw,
        appSecret: tenant.app_secret + "x",
        signatureHeader: hit.headers["x-hub-signature-256"],
      });
      assert.equal(ok, false);
    });
  }

  test("kapso normalizeWebhook reads back the text and the profile name", () => {
    const n = normalizeWebhook(JSON.parse(hit.raw.toString("utf8")));
    assert.equal(n.messages.length, 1);
    assert.equal(n.messages[0].text.body, text);
    assert.equal(n.contacts[0].profile.name, PROFILE);
  });
});
