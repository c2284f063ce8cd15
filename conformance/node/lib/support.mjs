// Shared helpers for the Node conformance tests: environment, greenlight's public
// setup endpoints (admin tenant, sandbox inbound), a tiny PNG, Meta-format webhook bodies.
//
// Only the setup steps (tenant creation, simulated customer) use plain fetch; every
// Cloud API call in the tests goes through a real client library.

import { createHmac } from "node:crypto";
import { deflateSync } from "node:zlib";

export const BASE_URL = (process.env.GREENLIGHT_URL ?? "").replace(/\/+$/, "");
export const ADMIN_TOKEN = process.env.GREENLIGHT_ADMIN_TOKEN ?? "";
/**
 * Graph version to put in the path. Unset: each library uses its own default
 * (kapso v23.0, great-detail v23.0, whatsapp-api-js v24.0), which exercises greenlight's
 * "any /vN.M" rule across versions.
 */
export const GRAPH_VERSION = process.env.CONFORMANCE_GRAPH_VERSION || undefined;

/** `skip` option for tests that need a running greenlight. */
export const NEEDS_SERVER =
  BASE_URL && ADMIN_TOKEN ? false : "GREENLIGHT_URL and GREENLIGHT_ADMIN_TOKEN are not set";

const skipList = (process.env.CONFORMANCE_SKIP ?? "").split(",").map((s) => s.trim());
/** `skip` option for template tests (CONFORMANCE_SKIP=templates while the server lacks them). */
export const NEEDS_TEMPLATES =
  NEEDS_SERVER || (skipList.includes("templates") ? "CONFORMANCE_SKIP contains templates" : false);

/** The customer who writes first (opens the customer-service window). */
export const CUSTOMER = "15551230001";
/** A customer who never wrote: free-form is accepted, then fails asynchronously (131047). */
export const STRANGER = "15559990000";
/** A public-looking image URL for link sends (greenlight must not need to fetch it). */
export const IMAGE_LINK = "https://example.com/conformance/pixel.png";

const WAMID = /^wamid\.[A-Za-z0-9+/=_-]+$/;
export function assertWamid(assert, id, where) {
  assert.equal(typeof id, "string", `${where}: message id is not a string: ${JSON.stringify(id)}`);
  assert.match(id, WAMID, `${where}: not a wamid: ${id}`);
}

async function call(method, path, token, body) {
  const res = await fetch(`${BASE_URL}${path}`, {
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

/** POST /admin/v1/tenants → the tenant (201). */
export async function createTenant(lib) {
  const r = await call("POST", "/admin/v1/tenants", ADMIN_TOKEN, {
    business_name: `Conformance ${lib}`,
  });
  if (r.status !== 201) throw new Error(`create tenant: HTTP ${r.status}: ${r.text}`);
  const t = r.json;
  for (const k of ["business_id", "waba_id", "app_id", "app_secret", "access_token"]) {
    if (typeof t?.[k] !== "string" || !t[k]) throw new Error(`create tenant: missing ${k}: ${r.text}`);
  }
  if (!Array.isArray(t.phone_numbers) || !t.phone_numbers[0]?.id) {
    throw new Error(`create tenant: no phone_numbers[0].id: ${r.text}`);
  }
  return { ...t, phoneNumberId: t.phone_numbers[0].id };
}

/** POST /sandbox/v1/{phone}/inbound: the customer writes; returns the inbound wamid. */
export async function customerWrites(tenant, from = CUSTOMER, text = "hi") {
  const r = await call("POST", `/sandbox/v1/${tenant.phoneNumberId}/inbound`, tenant.access_token, {
    from,
    profile_name: "Ann",
    type: "text",
    text: { body: text },
  });
  if (r.status < 200 || r.status > 299 || typeof r.json?.id !== "string") {
    throw new Error(`sandbox inbound: HTTP ${r.status}: ${r.text}`);
  }
  return r.json.id;
}

// -- a valid 2x2 RGB PNG, built here --------------------------------------------------------
const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
function crc32(buf) {
  let c = 0xffffffff;
  for (const b of buf) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
function chunk(type, data) {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const td = Buffer.concat([Buffer.from(type, "ascii"), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(td));
  return Buffer.concat([len, td, crc]);
}
export function makePng() {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(2, 0); // width
  ihdr.writeUInt32BE(2, 4); // height
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // colour type RGB
  const rows = Buffer.from([0, 255, 0, 0, 0, 255, 0, 0, 0, 0, 255, 255, 255, 255]);
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", ihdr),
    chunk("IDAT", deflateSync(rows)),
    chunk("IEND", Buffer.alloc(0)),
  ]);
}

// -- Meta's webhook byte format ---------------------------------------------------------
/**
 * Compact JSON with every non-ASCII UTF-16 code unit written as a lowercase \uXXXX escape
 * (so characters beyond the BMP become surrogate pairs), as Meta sends webhook bodies.
 * With escapeSlashes, "/" is written "\/" as well (seen in Graph payloads; a verifier
 * that works on raw bytes must not care).
 */
export function metaJson(value, { escapeSlashes = false } = {}) {
  let s = JSON.stringify(value).replace(
    /[\u007f-\uffff]/g,
    (ch) => "\\u" + ch.charCodeAt(0).toString(16).padStart(4, "0"),
  );
  if (escapeSlashes) s = s.replace(/\//g, "\\/");
  return Buffer.from(s, "utf8");
}

export function signature(rawBody, appSecret) {
  return "sha256=" + createHmac("sha256", appSecret).update(rawBody).digest("hex");
}

export const NON_ASCII_TEXT = "Café é 中文 😀";
/** Business-scoped user id (Meta 2026), carried beside wa_id in current webhooks. */
export const CUSTOMER_BSUID = "US.13491208655302741918";

/** A `messages` webhook as greenlight will send it (shape of Meta's captured fixtures). */
export function sampleInboundWebhook({ wabaId = "102290129340398", phoneNumberId = "106540352242922" } = {}) {
  return {
    object: "whatsapp_business_account",
    entry: [
      {
        id: wabaId,
        changes: [
          {
            value: {
              messaging_product: "whatsapp",
              metadata: { display_phone_number: "15550783881", phone_number_id: phoneNumberId },
              contacts: [{ profile: { name: "Zoë 李 😀" }, wa_id: CUSTOMER, user_id: CUSTOMER_BSUID }],
              messages: [
                {
                  from: CUSTOMER,
                  from_user_id: CUSTOMER_BSUID,
                  id: "wamid.HBgLMTU1NTEyMzAwMDEVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=",
                  timestamp: "1749416383",
                  type: "text",
                  text: { body: `${NON_ASCII_TEXT} https://example.com/a/b` },
                },
              ],
            },
            field: "messages",
          },
        ],
      },
    ],
  };
}
