// Runs each Node library's own webhook signature verifier over raw bytes.
//
//   verifyWith(name, { rawBody, appSecret, signatureHeader }) -> Promise<boolean>
//
// rawBody is a Buffer holding exactly the bytes greenlight sent; signatureHeader is the
// X-Hub-Signature-256 header value. The libraries are used the way their docs show:
// kapso and whatsapp-api-js take the raw body, great-detail takes the body as a string
// plus the request headers (lower-cased, as node's http module gives them).

import { verifySignature as kapsoVerify } from "@kapso/whatsapp-cloud-api/server";
import GreatDetailClient from "@great-detail/whatsapp";
import { WhatsAppAPI } from "whatsapp-api-js";
import { DEFAULT_API_VERSION } from "whatsapp-api-js/types";

export const VERIFIERS = {
  async kapso({ rawBody, appSecret, signatureHeader }) {
    return kapsoVerify({ appSecret, rawBody, signatureHeader });
  },

  async "great-detail"({ rawBody, appSecret, signatureHeader }) {
    const sdk = new GreatDetailClient();
    const event = await sdk.webhook.eventNotification({
      method: "POST",
      query: {},
      body: rawBody.toString("utf8"),
      headers: { "content-type": "application/json", "x-hub-signature-256": signatureHeader },
    });
    try {
      await event.verifySignature(appSecret); // throws on mismatch
      return true;
    } catch (err) {
      if (err instanceof sdk.webhook.errors.InvalidHubSignatureWebhookError) return false;
      throw err;
    }
  },

  async "whatsapp-api-js"({ rawBody, appSecret, signatureHeader }) {
    const api = new WhatsAppAPI({ token: "unused", appSecret, v: DEFAULT_API_VERSION });
    // Its middlewares hand the body over as a string; it re-escapes non-ASCII as \uXXXX
    // before computing the HMAC (so it only matches bodies already sent in that form).
    return api.verifyRequestSignature(rawBody.toString("utf8"), signatureHeader);
  },
};

export async function verifyWith(name, args) {
  const fn = VERIFIERS[name];
  if (!fn) throw new Error(`no verifier named ${name}`);
  return fn(args);
}

/** { kapso: true, "great-detail": true, "whatsapp-api-js": true } */
export async function verifyAll(args) {
  const out = {};
  for (const name of Object.keys(VERIFIERS)) out[name] = await verifyWith(name, args);
  return out;
}
