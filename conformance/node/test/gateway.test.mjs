// Gateway mode with a real client: @kapso/whatsapp-cloud-api pointed at a greenlight gateway
// (GREENLIGHT_GATEWAY_URL) whose upstream is the greenlight sandbox of GREENLIGHT_URL, which
// stands in for Meta. The library is unchanged but for baseUrl; the business's webhook
// receiver checks relayed events with the library's own signature verifier.
//
// Setup (plain HTTP, as in the other suites): a tenant at the sandbox ("Meta"), the same
// business registered at the gateway with the sandbox's ids and credentials, and the sandbox's
// app subscribed to the gateway's /webhooks/meta.

import assert from "node:assert/strict";
import { createServer } from "node:http";
import { after, before, describe, test } from "node:test";
import { WhatsAppClient } from "@kapso/whatsapp-cloud-api";
import { verifySignature } from "@kapso/whatsapp-cloud-api/server";
import {
  ADMIN_TOKEN,
  BASE_URL,
  CUSTOMER,
  GRAPH_VERSION,
  assertWamid,
  createTenant,
  customerWrites,
  makePng,
} from "../lib/support.mjs";

const GATEWAY_URL = (process.env.GREENLIGHT_GATEWAY_URL ?? "").replace(/\/+$/, "");
const GATEWAY_ADMIN = process.env.GREENLIGHT_GATEWAY_ADMIN_TOKEN || ADMIN_TOKEN;
const SKIP =
  BASE_URL && ADMIN_TOKEN && GATEWAY_URL
    ? false
    : "GREENLIGHT_GATEWAY_URL (a gateway whose upstream is GREENLIGHT_URL) is not set";
const META_VT = "conformance-meta-verify-token";

async function call(base, method, path, token, body) {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: {
      Authorization: `Bearer ${token}`,
      ...(body === undefined ? {} : { "Content-Type": "application/json" }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, json, text };
}

/** The business's callback: answers the handshake, keeps raw bodies and signatures. */
function startReceiver() {
  const got = [];
  const server = createServer((req, res) => {
    const url = new URL(req.url, "http://x");
    if (req.method === "GET") {
      res.end(url.searchParams.get("hub.challenge") ?? "");
      return;
    }
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      got.push({ rawBody: Buffer.concat(chunks), signatureHeader: req.headers["x-hub-signature-256"] });
      res.end("ok");
    });
  });
  return new Promise((resolve) =>
    server.listen(0, "127.0.0.1", () =>
      resolve({ server, got, url: `http://127.0.0.1:${server.address().port}/hook` }),
    ),
  );
}

async function waitFor(what, fn) {
  for (let i = 0; i < 100; i++) {
    const v = await fn();
    if (v) return v;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe("@kapso/whatsapp-cloud-api through a greenlight gateway", { skip: SKIP }, () => {
  let meta, biz, receiver, client;
  const png = makePng();

  before(async () => {
    meta = await createTenant("gateway-upstream");
    let r = await call(BASE_URL, "POST", "/greenlight/v1/settings", meta.access_token, {
      compliance: { opt_in_policy: "off" },
    });
    assert.equal(r.status, 200, r.text);
    receiver = await startReceiver();
    r = await call(GATEWAY_URL, "POST", "/admin/v1/tenants", GATEWAY_ADMIN, {
      business_name: "Conformance gateway",
      webhook: { callback_url: receiver.url, verify_token: "business-vt" },
      upstream: {
        access_token: meta.access_token,
        app_secret: meta.app_secret,
        waba_id: meta.waba_id,
        phone_numbers: [
          { id: meta.phoneNumberId, display_phone_number: meta.phone_numbers[0].display_phone_number, verified_name: "Conformance" },
        ],
        webhook_verify_token: META_VT,
      },
    });
    assert.equal(r.status, 201, r.text);
    biz = r.json;
    r = await call(BASE_URL, "POST", `/v23.0/${meta.app_id}/subscriptions`, `${meta.app_id}|${meta.app_secret}`, {
      object: "whatsapp_business_account",
      callback_url: `${GATEWAY_URL}/webhooks/meta`,
      verify_token: META_VT,
      fields: ["messages"],
    });
    assert.equal(r.status, 200, r.text);
    client = new WhatsAppClient({ baseUrl: GATEWAY_URL, accessToken: biz.access_token, graphVersion: GRAPH_VERSION });
  });

  after(() => receiver?.server.close());

  test("the ids are Meta's: the business changes only the base URL and token", () => {
    assert.equal(biz.waba_id, meta.waba_id);
    assert.equal(biz.phone_numbers[0].id, meta.phoneNumberId);
  });

  test("free-form text before the customer wrote is refused at the gateway (131047)", async () => {
    await assert.rejects(
      client.messages.sendText({ phoneNumberId: biz.phone_numbers[0].id, to: CUSTOMER, body: "too early" }),
      (err) => JSON.stringify(err).includes("131047") || String(err?.message).includes("131047"),
    );
  });

  test("the customer writes at Meta: the business gets the relayed event, verified by the library", async () => {
    const inboundId = await customerWrites(meta, CUSTOMER, "hi via Meta");
    const ev = await waitFor("the relayed inbound message", () =>
      receiver.got.find((g) => g.rawBody.toString("utf8").includes(inboundId)),
    );
    assert.equal(verifySignature({ appSecret: biz.app_secret, rawBody: ev.rawBody, signatureHeader: ev.signatureHeader }), true);
    assert.equal(verifySignature({ appSecret: meta.app_secret, rawBody: ev.rawBody, signatureHeader: ev.signatureHeader }), false);
  });

  test("send text inside the learned window: forwarded, Meta's wamid returned", async () => {
    const res = await client.messages.sendText({
      phoneNumberId: biz.phone_numbers[0].id,
      to: CUSTOMER,
      body: "Hello through the gateway",
    });
    assertWamid(assert, res?.messages?.[0]?.id, "sendText");
    const thread = await call(BASE_URL, "GET", `/sandbox/v1/${meta.phoneNumberId}/users/${CUSTOMER}/messages`, meta.access_token);
    assert.ok(thread.text.includes(res.messages[0].id), "the upstream has the message");
  });

  test("media upload, info and download pass through", async () => {
    const up = await client.media.upload({
      phoneNumberId: biz.phone_numbers[0].id,
      type: "image/png",
      file: new Blob([png], { type: "image/png" }),
      fileName: "pixel.png",
    });
    assert.equal(typeof up?.id, "string", JSON.stringify(up));
    const info = await client.media.get({ mediaId: up.id });
    assert.equal(info.mimeType, "image/png");
    assert.ok(info.url.startsWith(GATEWAY_URL), `the URL points at the gateway: ${info.url}`);
    const buf = await client.media.download({ mediaId: up.id, auth: "always" });
    assert.deepEqual(Buffer.from(buf), png);
  });
});
