// @kapso/whatsapp-cloud-api (0.3.x) against greenlight, unchanged but for baseUrl.
// The library camel-cases every JSON response (messages[0].id, fileSize, mimeType ...).

import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { before, describe, test } from "node:test";
import { WhatsAppClient } from "@kapso/whatsapp-cloud-api";
import {
  BASE_URL,
  CUSTOMER,
  GRAPH_VERSION,
  IMAGE_LINK,
  NEEDS_SERVER,
  NEEDS_TEMPLATES,
  STRANGER,
  assertWamid,
  createTenant,
  customerWrites,
  makePng,
} from "../lib/support.mjs";

const LIB = "@kapso/whatsapp-cloud-api";

function sha256Matches(got, bytes) {
  const d = createHash("sha256").update(bytes);
  const hex = d.copy().digest("hex");
  const b64 = d.digest("base64");
  return got === hex || got === b64;
}

describe(`${LIB}: messages and media`, { skip: NEEDS_SERVER }, () => {
  let tenant, client, inboundId, mediaId, mediaInfo;
  const png = makePng();

  before(async () => {
    tenant = await createTenant("kapso");
    inboundId = await customerWrites(tenant);
    client = new WhatsAppClient({
      baseUrl: BASE_URL,
      accessToken: tenant.access_token,
      graphVersion: GRAPH_VERSION,
    });
  });

  test("send text inside the window returns a wamid", async () => {
    const res = await client.messages.sendText({
      phoneNumberId: tenant.phoneNumberId,
      to: CUSTOMER,
      body: "Hello from kapso",
    });
    assertWamid(assert, res?.messages?.[0]?.id, "sendText");
    assert.equal(res.contacts?.[0]?.waId, CUSTOMER, "contacts[0].wa_id");
  });

  test("upload a PNG returns a media id", async () => {
    const res = await client.media.upload({
      phoneNumberId: tenant.phoneNumberId,
      type: "image/png",
      file: new Blob([png], { type: "image/png" }),
      fileName: "pixel.png",
    });
    assert.equal(typeof res?.id, "string", `upload answer: ${JSON.stringify(res)}`);
    assert.ok(res.id.length > 0);
    mediaId = res.id;
  });

  test("send image by uploaded media id", async () => {
    assert.ok(mediaId, "needs the upload test");
    const res = await client.messages.sendImage({
      phoneNumberId: tenant.phoneNumberId,
      to: CUSTOMER,
      image: { id: mediaId, caption: "by id" },
    });
    assertWamid(assert, res?.messages?.[0]?.id, "sendImage(id)");
  });

  test("send image by link", async () => {
    const res = await client.messages.sendImage({
      phoneNumberId: tenant.phoneNumberId,
      to: CUSTOMER,
      image: { link: IMAGE_LINK, caption: "by link" },
    });
    assertWamid(assert, res?.messages?.[0]?.id, "sendImage(link)");
  });

  test("mark the inbound message as read answers success true", async () => {
    const res = await client.messages.markRead({
      phoneNumberId: tenant.phoneNumberId,
      messageId: inboundId,
    });
    assert.equal(res?.success, true, JSON.stringify(res));
  });

  test("media info has url, mime_type, sha256, file_size", async () => {
    assert.ok(mediaId, "needs the upload test");
    const info = await client.media.get({ mediaId });
    assert.equal(info.id, mediaId);
    assert.equal(info.mimeType, "image/png");
    assert.equal(Number(info.fileSize), png.length, `file_size ${info.fileSize}`);
    assert.ok(sha256Matches(info.sha256, png), `sha256 ${info.sha256} is not the PNG's (hex or base64)`);
    assert.doesNotThrow(() => new URL(info.url), `url ${info.url}`);
    mediaInfo = info;
  });

  test("media info restricted to the uploading number (?phone_number_id=)", async () => {
    assert.ok(mediaId, "needs the upload test");
    const info = await client.media.get({ mediaId, phoneNumberId: tenant.phoneNumberId });
    assert.equal(info.id, mediaId);
  });

  test("download media with the token (auth: 'always') gives the uploaded bytes", async () => {
    assert.ok(mediaInfo, "needs the media info test");
    const buf = await client.media.download({ mediaId, auth: "always" });
    assert.deepEqual(Buffer.from(buf), png);
  });

  test(
    "download media the library's default way (auth 'auto': no token for non-kapso hosts)",
    { todo: "passes only if greenlight serves media URLs without a bearer token" },
    async () => {
      const buf = await client.media.download({ mediaId });
      assert.deepEqual(Buffer.from(buf), png);
    },
  );

  test("free-form text to a customer who never wrote is accepted with a wamid", async () => {
    const res = await client.messages.sendText({
      phoneNumberId: tenant.phoneNumberId,
      to: STRANGER,
      body: "Hello stranger (fails later with 131047)",
    });
    assertWamid(assert, res?.messages?.[0]?.id, "sendText(stranger)");
  });
});

describe(`${LIB}: templates (may not be implemented server-side yet)`, { skip: NEEDS_TEMPLATES }, () => {
  let tenant, client;
  const name = `conformance_kapso_${randomBytes(4).toString("hex")}`;

  before(async () => {
    tenant = await createTenant("kapso templates");
    client = new WhatsAppClient({
      baseUrl: BASE_URL,
      accessToken: tenant.access_token,
      graphVersion: GRAPH_VERSION,
    });
  });

  test("create a template", async () => {
    const res = await client.templates.create({
      businessAccountId: tenant.waba_id,
      name,
      language: "en_US",
      category: "UTILITY",
      components: [
        { type: "BODY", text: "Your order {{1}} has shipped.", example: { bodyText: [["12345"]] } },
      ],
    });
    assert.equal(typeof res?.id, "string", JSON.stringify(res));
    assert.ok(["PENDING", "APPROVED", "REJECTED"].includes(res.status), `status ${res.status}`);
    assert.equal(res.category, "UTILITY");
  });

  test("list templates finds it", async () => {
    const res = await client.templates.list({ businessAccountId: tenant.waba_id, limit: 100 });
    assert.ok(Array.isArray(res?.data), JSON.stringify(res));
    assert.ok(res.data.some((t) => t.name === name), `${name} not in ${JSON.stringify(res.data)}`);
  });

  test("delete the template by name", async () => {
    const res = await client.templates.delete({ businessAccountId: tenant.waba_id, name });
    assert.equal(res?.success, true, JSON.stringify(res));
    const after = await client.templates.list({ businessAccountId: tenant.waba_id, name });
    assert.ok(!after.data.some((t) => t.name === name && t.status !== "PENDING_DELETION" && t.status !== "DELETED"));
  });
});
