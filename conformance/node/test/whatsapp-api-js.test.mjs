// whatsapp-api-js (6.3.x) against greenlight. Its host is hard-coded, so it is pointed at
// greenlight the documented way: a fetch ponyfill that rewrites https://graph.facebook.com.
// Note: it does not throw on HTTP errors; it returns the parsed error envelope.
// (Its engines field asks for Node >= 22.13 with onFail "warn"; it runs on Node 20 here.)

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { before, describe, test } from "node:test";
import { WhatsAppAPI } from "whatsapp-api-js";
import { Image, Text } from "whatsapp-api-js/messages";
import { DEFAULT_API_VERSION } from "whatsapp-api-js/types";
import {
  BASE_URL,
  CUSTOMER,
  GRAPH_VERSION,
  IMAGE_LINK,
  NEEDS_SERVER,
  STRANGER,
  assertWamid,
  createTenant,
  customerWrites,
  makePng,
} from "../lib/support.mjs";

const LIB = "whatsapp-api-js";

function sha256Matches(got, bytes) {
  const d = createHash("sha256").update(bytes);
  const hex = d.copy().digest("hex");
  const b64 = d.digest("base64");
  return got === hex || got === b64;
}

describe(`${LIB}: messages and media`, { skip: NEEDS_SERVER }, () => {
  let tenant, api, inboundId, mediaId, mediaURL;
  const png = makePng();

  before(async () => {
    tenant = await createTenant("whatsapp-api-js");
    inboundId = await customerWrites(tenant);
    api = new WhatsAppAPI({
      token: tenant.access_token,
      appSecret: tenant.app_secret,
      v: GRAPH_VERSION ?? DEFAULT_API_VERSION,
      ponyfill: {
        fetch: (url, options) => fetch(String(url).replace("https://graph.facebook.com", BASE_URL), options),
      },
    });
  });

  test("send text inside the window returns a wamid", async () => {
    const res = await api.sendMessage(tenant.phoneNumberId, { phone: CUSTOMER }, new Text("Hello from whatsapp-api-js"));
    assert.equal(res?.error, undefined, JSON.stringify(res));
    assertWamid(assert, res?.messages?.[0]?.id, "sendMessage(Text)");
  });

  test("upload a PNG (form with only `file`; messaging_product in the query) returns a media id", async () => {
    const form = new FormData();
    form.append("file", new Blob([png], { type: "image/png" }), "pixel.png");
    const res = await api.uploadMedia(tenant.phoneNumberId, form);
    assert.equal(typeof res?.id, "string", JSON.stringify(res));
    mediaId = res.id;
  });

  test("send image by uploaded media id", async () => {
    assert.ok(mediaId, "needs the upload test");
    const res = await api.sendMessage(tenant.phoneNumberId, { phone: CUSTOMER }, new Image(mediaId, true, "by id"));
    assertWamid(assert, res?.messages?.[0]?.id, "sendMessage(Image id)");
  });

  test("send image by link", async () => {
    const res = await api.sendMessage(tenant.phoneNumberId, { phone: CUSTOMER }, new Image(IMAGE_LINK, false, "by link"));
    assertWamid(assert, res?.messages?.[0]?.id, "sendMessage(Image link)");
  });

  test("mark the inbound message as read answers success true", async () => {
    const res = await api.markAsRead(tenant.phoneNumberId, inboundId);
    assert.equal(res?.success, true, JSON.stringify(res));
  });

  test("media info (retrieveMedia) has url, mime_type, sha256, file_size", async () => {
    assert.ok(mediaId, "needs the upload test");
    const info = await api.retrieveMedia(mediaId, tenant.phoneNumberId);
    assert.equal(info?.id, mediaId, JSON.stringify(info));
    assert.equal(info.mime_type, "image/png");
    assert.equal(Number(info.file_size), png.length);
    assert.ok(sha256Matches(info.sha256, png), `sha256 ${info.sha256}`);
    mediaURL = info.url;
  });

  test("download media (fetchMedia sends the bearer token to the returned url)", async () => {
    assert.ok(mediaURL, "needs the media info test");
    const res = await api.fetchMedia(mediaURL);
    assert.equal(res.status, 200);
    assert.deepEqual(Buffer.from(await res.arrayBuffer()), png);
  });

  test("free-form text to a customer who never wrote is accepted with a wamid", async () => {
    const res = await api.sendMessage(tenant.phoneNumberId, { phone: STRANGER }, new Text("Hello stranger (fails later with 131047)"));
    assertWamid(assert, res?.messages?.[0]?.id, "sendMessage(stranger)");
  });
});
