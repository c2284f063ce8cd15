// @great-detail/whatsapp (8.4.x, the line for Node 20) against greenlight, unchanged but
// for prefixUrl. Methods return ky response promises: the caller calls .json(); ky throws
// HTTPError on a non-2xx answer.

import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { before, describe, test } from "node:test";
import Client from "@great-detail/whatsapp";
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

const LIB = "@great-detail/whatsapp";

function sdkFor(tenant) {
  return new Client({
    prefixUrl: BASE_URL,
    graphVersion: GRAPH_VERSION,
    request: { headers: { Authorization: `Bearer ${tenant.access_token}` } },
  });
}

function sha256Matches(got, bytes) {
  const d = createHash("sha256").update(bytes);
  const hex = d.copy().digest("hex");
  const b64 = d.digest("base64");
  return got === hex || got === b64;
}

describe(`${LIB}: messages, media, phone numbers`, { skip: NEEDS_SERVER }, () => {
  let tenant, sdk, inboundId, mediaId, mediaURL;
  const png = makePng();

  before(async () => {
    tenant = await createTenant("great-detail");
    inboundId = await customerWrites(tenant);
    sdk = sdkFor(tenant);
  });

  test("send text inside the window returns a wamid", async () => {
    const res = await sdk.message
      .createMessage({
        phoneNumberID: tenant.phoneNumberId,
        to: CUSTOMER,
        type: "text",
        text: { body: "Hello from great-detail" },
      })
      .json();
    assertWamid(assert, res?.messages?.[0]?.id, "createMessage(text)");
    assert.equal(res.contacts?.[0]?.wa_id, CUSTOMER, "contacts[0].wa_id");
  });

  test("upload a PNG returns a media id", async () => {
    const res = await sdk.media
      .upload({
        phoneNumberID: tenant.phoneNumberId,
        file: new Blob([png], { type: "image/png" }),
        filename: "pixel.png",
        mimeType: "image/png",
      })
      .json();
    assert.equal(typeof res?.id, "string", JSON.stringify(res));
    mediaId = res.id;
  });

  test("send image by uploaded media id", async () => {
    assert.ok(mediaId, "needs the upload test");
    const res = await sdk.message
      .createMessage({
        phoneNumberID: tenant.phoneNumberId,
        to: CUSTOMER,
        type: "image",
        image: { id: mediaId, caption: "by id" },
      })
      .json();
    assertWamid(assert, res?.messages?.[0]?.id, "createMessage(image id)");
  });

  test("send image by link", async () => {
    const res = await sdk.message
      .createMessage({
        phoneNumberID: tenant.phoneNumberId,
        to: CUSTOMER,
        type: "image",
        image: { link: IMAGE_LINK },
      })
      .json();
    assertWamid(assert, res?.messages?.[0]?.id, "createMessage(image link)");
  });

  test("mark the inbound message as read answers success true", async () => {
    const res = await sdk.message
      .createStatus({ phoneNumberID: tenant.phoneNumberId, message_id: inboundId, status: "read" })
      .json();
    assert.equal(res?.success, true, JSON.stringify(res));
  });

  test("media info (getURL) has url, mime_type, sha256, file_size", async () => {
    assert.ok(mediaId, "needs the upload test");
    const info = await sdk.media.getURL({ mediaID: mediaId, phoneNumberID: tenant.phoneNumberId }).json();
    assert.equal(info.id, mediaId);
    assert.equal(info.mime_type, "image/png");
    assert.equal(Number(info.file_size), png.length, `file_size ${info.file_size}`);
    assert.ok(sha256Matches(info.sha256, png), `sha256 ${info.sha256}`);
    mediaURL = info.url;
  });

  test("download media with the token passed in request headers", async () => {
    assert.ok(mediaURL, "needs the media info test");
    const res = await sdk.media.download({
      mediaURL,
      request: { headers: { Authorization: `Bearer ${tenant.access_token}` } },
    });
    assert.deepEqual(Buffer.from(await res.arrayBuffer()), png);
  });

  test(
    "download media the library's default way (no token; Host: lookaside.fbsbx.com)",
    { todo: "passes only if greenlight serves media URLs without a bearer token" },
    async () => {
      const res = await sdk.media.download({ mediaURL });
      assert.deepEqual(Buffer.from(await res.arrayBuffer()), png);
    },
  );

  test("get the phone number", async () => {
    const res = await sdk.phoneNumbers.getPhoneNumber({ phoneNumberID: tenant.phoneNumberId }).json();
    assert.equal(res.id, tenant.phoneNumberId);
    assert.equal(typeof res.display_phone_number, "string");
    assert.equal(typeof res.verified_name, "string");
  });

  test("get the phone number with fields", async () => {
    const res = await sdk.phoneNumbers
      .getPhoneNumber({
        phoneNumberID: tenant.phoneNumberId,
        fields: ["id", "display_phone_number", "verified_name", "quality_rating", ["throughput", ["level"]]],
      })
      .json();
    assert.equal(res.id, tenant.phoneNumberId);
    assert.ok(["GREEN", "YELLOW", "RED", "UNKNOWN", "NA"].includes(res.quality_rating), res.quality_rating);
  });

  test("list the WABA's phone numbers", async () => {
    const res = await sdk.phoneNumbers.listPhoneNumbers({ businessAccountID: tenant.waba_id }).json();
    assert.ok(Array.isArray(res?.data), JSON.stringify(res));
    assert.ok(res.data.some((p) => p.id === tenant.phoneNumberId), JSON.stringify(res.data));
  });

  test("free-form text to a customer who never wrote is accepted with a wamid", async () => {
    const res = await sdk.message
      .createMessage({
        phoneNumberID: tenant.phoneNumberId,
        to: STRANGER,
        type: "text",
        text: { body: "Hello stranger (fails later with 131047)" },
      })
      .json();
    assertWamid(assert, res?.messages?.[0]?.id, "createMessage(stranger)");
  });
});

describe(`${LIB}: templates (may not be implemented server-side yet)`, { skip: NEEDS_TEMPLATES }, () => {
  let tenant, sdk, templateId;
  const name = `conformance_gd_${randomBytes(4).toString("hex")}`;

  before(async () => {
    tenant = await createTenant("great-detail templates");
    sdk = sdkFor(tenant);
  });

  test("create a template", async () => {
    const res = await sdk.template
      .create(tenant.waba_id, {
        name,
        language: "en_US",
        category: "UTILITY",
        components: [
          { type: "BODY", text: "Your order {{1}} has shipped.", example: { body_text: [["12345"]] } },
        ],
      })
      .json();
    assert.equal(typeof res?.id, "string", JSON.stringify(res));
    assert.equal(res.category, "UTILITY");
    templateId = res.id;
  });

  test("list templates finds it", async () => {
    const res = await sdk.template.list(tenant.waba_id, { limit: 100 }).json();
    assert.ok(Array.isArray(res?.data), JSON.stringify(res));
    assert.ok(res.data.some((t) => t.name === name), JSON.stringify(res.data));
  });

  test("get the template by id", async () => {
    assert.ok(templateId, "needs the create test");
    const res = await sdk.template.get(templateId, { fields: ["id", "name", "status", "category", "language"] }).json();
    assert.equal(res.id, templateId);
    assert.equal(res.name, name);
  });

  test("delete the template (name + hsm_id)", async () => {
    assert.ok(templateId, "needs the create test");
    const res = await sdk.template.delete(tenant.waba_id, { name, hsm_id: templateId }).json();
    assert.equal(res?.success, true, JSON.stringify(res));
  });
});
