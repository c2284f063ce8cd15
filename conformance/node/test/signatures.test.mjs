// Webhook signature checks: each Node library's verifier must accept a body signed the
// way greenlight signs (HMAC-SHA256 over the exact bytes, X-Hub-Signature-256: sha256=<hex>),
// with the body in Meta's byte format (compact JSON, non-ASCII as lowercase \uXXXX, beyond
// the BMP as surrogate pairs). These run without a server; bodies from a real greenlight
// go through the same helper (lib/verifiers.mjs, or verify-webhook.mjs on the command line).

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { normalizeWebhook } from "@kapso/whatsapp-cloud-api/server";
import { NON_ASCII_TEXT, metaJson, sampleInboundWebhook, signature } from "../lib/support.mjs";
import { VERIFIERS, verifyWith } from "../lib/verifiers.mjs";

const SECRET = "3f1c0a9e5b7d4e2f8a6c1b0d9e8f7a6b";

describe("Meta byte format of the test bodies", () => {
  test("escapes non-ASCII as lowercase \\uXXXX with surrogate pairs, compact, ASCII-only", () => {
    const raw = metaJson({ t: "é 中文 😀" });
    assert.equal(raw.toString("latin1"), '{"t":"\\u00e9 \\u4e2d\\u6587 \\ud83d\\ude00"}');
    assert.ok([...raw].every((b) => b < 0x80));
    assert.equal(JSON.parse(raw.toString()).t, "é 中文 😀");
  });
});

for (const name of Object.keys(VERIFIERS)) {
  describe(`${name}: webhook signature verifier`, () => {
    const raw = metaJson(sampleInboundWebhook());
    const header = signature(raw, SECRET);

    test("accepts a Meta-format body (\\u escapes, surrogate pairs) signed with the app secret", async () => {
      assert.equal(await verifyWith(name, { rawBody: raw, appSecret: SECRET, signatureHeader: header }), true);
    });

    test("accepts the same body with escaped slashes (\\/)", async () => {
      const raw2 = metaJson(sampleInboundWebhook(), { escapeSlashes: true });
      const h2 = signature(raw2, SECRET);
      assert.equal(await verifyWith(name, { rawBody: raw2, appSecret: SECRET, signatureHeader: h2 }), true);
    });

    test("rejects a body changed after signing (the verifier really checks)", async () => {
      const tampered = Buffer.from(raw.toString("latin1").replace("\\u00e9", "\\u00e8"), "latin1");
      assert.equal(
        await verifyWith(name, { rawBody: tampered, appSecret: SECRET, signatureHeader: header }),
        false,
      );
    });

    test("rejects the right body signed with another secret", async () => {
      const other = signature(raw, SECRET + "x");
      assert.equal(await verifyWith(name, { rawBody: raw, appSecret: SECRET, signatureHeader: other }), false);
    });
  });
}

describe("parsing a Meta-format body gives back the original text", () => {
  test("JSON.parse and kapso normalizeWebhook decode the escapes", () => {
    const raw = metaJson(sampleInboundWebhook());
    const parsed = JSON.parse(raw.toString("utf8"));
    assert.ok(parsed.entry[0].changes[0].value.messages[0].text.body.startsWith(NON_ASCII_TEXT));
    const n = normalizeWebhook(parsed);
    assert.equal(n.messages.length, 1);
    assert.ok(n.messages[0].text.body.startsWith(NON_ASCII_TEXT), JSON.stringify(n.messages[0]));
    assert.equal(n.contacts[0].profile.name, "Zoë 李 😀");
  });
});
