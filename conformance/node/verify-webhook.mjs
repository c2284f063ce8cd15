#!/usr/bin/env node
// Feeds one webhook body (stdin, raw bytes) through every Node library's own signature
// verifier (lib/verifiers.mjs). For bodies captured from a real greenlight:
//
//   node verify-webhook.mjs --secret APP_SECRET --signature 'sha256=…' < body.json
//
// Exit 0 when all accept.
import { parseArgs } from "node:util";
import { verifyAll } from "./lib/verifiers.mjs";

const { values } = parseArgs({ options: { secret: { type: "string" }, signature: { type: "string" } } });
if (!values.secret || !values.signature) {
  console.error("usage: node verify-webhook.mjs --secret APP_SECRET --signature 'sha256=<hex>' < body");
  process.exit(2);
}
const chunks = [];
for await (const c of process.stdin) chunks.push(c);
const results = await verifyAll({ rawBody: Buffer.concat(chunks), appSecret: values.secret, signatureHeader: values.signature });
for (const [name, ok] of Object.entries(results)) console.log(`${name}: ${ok ? "accepted" : "REJECTED"}`);
process.exit(Object.values(results).every(Boolean) ? 0 : 1);
