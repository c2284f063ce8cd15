// WIRE PROBE (learning tool, not a test): drives the Node libraries against the wire
// recorder (../recorder/recorder.py) and prints, as JSON, what each call returned or threw.
// Run it against recorders started with different answer switches to see which response
// fields each library really needs.
//
//   node wire-probe.mjs http://127.0.0.1:PORT > out.json

import { WhatsAppClient } from "@kapso/whatsapp-cloud-api";
import GreatDetail from "@great-detail/whatsapp";
import { WhatsAppAPI } from "whatsapp-api-js";
import { Text } from "whatsapp-api-js/messages";
import { DEFAULT_API_VERSION } from "whatsapp-api-js/types";
import { makePng } from "./lib/support.mjs";

const BASE = process.argv[2];
const PHONE = "106540352242922";
const WABA = "102290129340398";
const TOKEN = "EAAGprobe";
const png = makePng();

const marker = (name) => fetch(`${BASE}/__probe__/${encodeURIComponent(name)}`).catch(() => {});

function summarize(v) {
  const s = JSON.stringify(v);
  return s === undefined ? String(v) : s.length > 300 ? s.slice(0, 300) + "…" : s;
}
function describeError(e) {
  return {
    threw: e?.constructor?.name ?? typeof e,
    message: String(e?.message ?? e).slice(0, 240),
    ...(e?.httpStatus !== undefined ? { httpStatus: e.httpStatus } : {}),
    ...(e?.response?.status !== undefined ? { httpStatus: e.response.status } : {}),
    ...(e?.code !== undefined ? { code: e.code } : {}),
    ...(e?.category !== undefined ? { category: e.category } : {}),
    ...(e?.retry !== undefined ? { retry: e.retry } : {}),
    ...(e?.details !== undefined ? { details: e.details } : {}),
  };
}
async function run(lib, name, fn) {
  await marker(`${lib}:${name}`);
  try {
    const v = await fn();
    return { ok: true, value: summarize(v) };
  } catch (e) {
    return { ok: false, ...describeError(e) };
  }
}

const out = {};

// -- kapso ---------------------------------------------------------------------------------
{
  const c = new WhatsAppClient({ baseUrl: BASE, accessToken: TOKEN });
  const r = (out.kapso = {});
  r.sendText = await run("kapso", "sendText", async () => {
    const res = await c.messages.sendText({ phoneNumberId: PHONE, to: "15551230001", body: "hi" });
    return { id: res?.messages?.[0]?.id, typeofRes: typeof res };
  });
  let mediaId;
  r.upload = await run("kapso", "upload", async () => {
    const res = await c.media.upload({ phoneNumberId: PHONE, type: "image/png", file: new Blob([png], { type: "image/png" }), fileName: "p.png" });
    mediaId = res.id;
    return res;
  });
  r.mediaInfo = await run("kapso", "mediaInfo", () => c.media.get({ mediaId }));
  r.markRead = await run("kapso", "markRead", () => c.messages.markRead({ phoneNumberId: PHONE, messageId: "wamid.X" }));
  r.templatesList = await run("kapso", "templatesList", () => c.templates.list({ businessAccountId: WABA }));
  for (const to of ["15550000400", "15550000401", "15550000429", "15550000500"]) {
    r[`send_${to.slice(-3)}`] = await run("kapso", `send_${to.slice(-3)}`, () => c.messages.sendText({ phoneNumberId: PHONE, to, body: "x" }));
  }
  r.get429 = await run("kapso", "get429", () => c.media.get({ mediaId: "100000000000429" }));
}

// -- great-detail --------------------------------------------------------------------------
{
  const sdk = new GreatDetail({ prefixUrl: BASE, request: { headers: { Authorization: `Bearer ${TOKEN}` } } });
  const r = (out["great-detail"] = {});
  r.sendText = await run("great-detail", "sendText", async () => {
    const res = await sdk.message.createMessage({ phoneNumberID: PHONE, to: "15551230001", type: "text", text: { body: "hi" } }).json();
    return { id: res?.messages?.[0]?.id };
  });
  let mediaId;
  r.upload = await run("great-detail", "upload", async () => {
    const res = await sdk.media.upload({ phoneNumberID: PHONE, file: new Blob([png], { type: "image/png" }), filename: "p.png", mimeType: "image/png" }).json();
    mediaId = res.id;
    return res;
  });
  r.mediaInfo = await run("great-detail", "mediaInfo", () => sdk.media.getURL({ mediaID: mediaId }).json());
  r.markRead = await run("great-detail", "markRead", () => sdk.message.createStatus({ phoneNumberID: PHONE, message_id: "wamid.X", status: "read" }).json());
  r.phoneGet = await run("great-detail", "phoneGet", () => sdk.phoneNumbers.getPhoneNumber({ phoneNumberID: PHONE }).json());
  r.phoneList = await run("great-detail", "phoneList", () => sdk.phoneNumbers.listPhoneNumbers({ businessAccountID: WABA }).json());
  r.templatesList = await run("great-detail", "templatesList", () => sdk.template.list(WABA, {}).json());
  for (const to of ["15550000400", "15550000401", "15550000429", "15550000500"]) {
    r[`send_${to.slice(-3)}`] = await run("great-detail", `send_${to.slice(-3)}`, () =>
      sdk.message.createMessage({ phoneNumberID: PHONE, to, type: "text", text: { body: "x" } }).json(),
    );
  }
  r.get429 = await run("great-detail", "get429", () => sdk.media.getURL({ mediaID: "100000000000429" }).json());
}

// -- whatsapp-api-js -----------------------------------------------------------------------
{
  const api = new WhatsAppAPI({
    token: TOKEN,
    appSecret: "s",
    v: DEFAULT_API_VERSION,
    ponyfill: { fetch: (u, o) => fetch(String(u).replace("https://graph.facebook.com", BASE), o) },
  });
  const r = (out["whatsapp-api-js"] = {});
  r.sendText = await run("whatsapp-api-js", "sendText", async () => {
    const res = await api.sendMessage(PHONE, { phone: "15551230001" }, new Text("hi"));
    return { id: res?.messages?.[0]?.id };
  });
  let mediaId;
  r.upload = await run("whatsapp-api-js", "upload", async () => {
    const f = new FormData();
    f.append("file", new Blob([png], { type: "image/png" }), "p.png");
    const res = await api.uploadMedia(PHONE, f);
    mediaId = res.id;
    return res;
  });
  r.mediaInfo = await run("whatsapp-api-js", "mediaInfo", () => api.retrieveMedia(mediaId));
  r.markRead = await run("whatsapp-api-js", "markRead", () => api.markAsRead(PHONE, "wamid.X"));
  r.blockUser = await run("whatsapp-api-js", "blockUser", () => api.blockUser(PHONE, { phone: "15551230001" }));
  for (const to of ["15550000400", "15550000401", "15550000429", "15550000500"]) {
    r[`send_${to.slice(-3)}`] = await run("whatsapp-api-js", `send_${to.slice(-3)}`, () => api.sendMessage(PHONE, { phone: to }, new Text("x")));
  }
  r.get429 = await run("whatsapp-api-js", "get429", () => api.retrieveMedia("100000000000429"));
}

process.stdout.write(JSON.stringify(out, null, 2) + "\n");
