// What the TypeScript flows share, as ../steps.py has it for Python: the steps and their
// report, waiting for what events bring, the mailed token read from the suite's log, and a
// webhook receiver that checks Standard Webhooks signatures. No type of the API is written
// here: the flows take every one from their generated client.

import { createHmac, timingSafeEqual } from "node:crypto";
import { readFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";

export const PASSWORD = "correct horse battery staple";
export const CORE = "urn:ietf:params:scim:schemas:core:2.0:User";
export const PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
const LOGGED = /Mail about the registration of @(\w+) not sent .*?Token: ([A-Za-z0-9_-]+)/gs;
const SIGNATURE_TOLERANCE_SECONDS = 300;

/** Where the driver (python -m tests.clients) says the suite is. */
export const env = {
  base: required("SUITE_URL"),
  log: required("MAIL_LOG"),
  clientToken: required("CLIENT_TOKEN"),
};

function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run python -m tests.clients`);
  return value;
}

export function check(condition: unknown, message: string): asserts condition {
  if (!condition) throw new Error(message);
}

/** The first truthy result of `probe`; events reach the other services about a second late. */
export async function eventually<T>(probe: () => Promise<T | null | undefined>, what: string, seconds = 30): Promise<T> {
  const deadline = Date.now() + seconds * 1000;
  for (;;) {
    const result = await probe();
    if (result) return result;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${seconds} s`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/** The newest verification token the suite logged for the registration of `handle`. */
export async function mailedToken(handle: string): Promise<string> {
  return eventually(async () => {
    const found = [...readFileSync(env.log, "utf8").matchAll(LOGGED)].filter((m) => m[1] === handle);
    return found.at(-1)?.[2];
  }, `the verification mail of @${handle}`);
}

type Outcome = "pass" | "fail" | "skip";

/** Named steps run in order; a step runs only when the steps it needs passed. */
export class Steps {
  readonly results = new Map<string, Outcome>();

  constructor(readonly language: string) {}

  async run(name: string, step: () => Promise<void>, needs: string[] = []): Promise<void> {
    const missing = needs.filter((n) => this.results.get(n) !== "pass");
    if (missing.length > 0) {
      this.results.set(name, "skip");
      console.log(`[${this.language}] SKIP ${name} (needs ${missing.join(", ")})`);
      return;
    }
    try {
      await step();
    } catch (error) {
      this.results.set(name, "fail");
      const where = error instanceof Error ? (error.stack ?? "").split("\n").find((l) => l.includes("/out/src/")) : "";
      console.log(`[${this.language}] FAIL ${name}: ${error instanceof Error ? error.message : String(error)} ${where?.trim() ?? ""}`);
      return;
    }
    this.results.set(name, "pass");
    console.log(`[${this.language}] PASS ${name}`);
  }

  get failed(): boolean {
    return [...this.results.values()].some((r) => r !== "pass");
  }
}

/** A Standard Webhooks message's event, once its signature and timestamp are checked. */
export function verifySignature(secret: string, headers: Record<string, string>, body: string): Record<string, unknown> {
  const id = headers["webhook-id"] ?? "";
  const timestamp = headers["webhook-timestamp"] ?? "";
  check(Math.abs(Date.now() / 1000 - Number(timestamp)) <= SIGNATURE_TOLERANCE_SECONDS, `webhook timestamp ${timestamp} is not recent`);
  const key = Buffer.from(secret.replace(/^whsec_/, ""), "base64");
  const expected = createHmac("sha256", key).update(`${id}.${timestamp}.${body}`).digest();
  const offered = (headers["webhook-signature"] ?? "")
    .split(" ")
    .filter((s) => s.startsWith("v1,"))
    .map((s) => Buffer.from(s.slice(3), "base64"));
  check(offered.some((s) => s.length === expected.length && timingSafeEqual(s, expected)), "no webhook signature matches the secret");
  return JSON.parse(body) as Record<string, unknown>;
}

/** An HTTP server on 127.0.0.1 that keeps every webhook message it is sent. */
export class Receiver {
  readonly received: { headers: Record<string, string>; body: string }[] = [];
  private readonly server: Server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => {
      const headers: Record<string, string> = {};
      for (const [name, value] of Object.entries(request.headers)) headers[name] = String(value);
      this.received.push({ headers, body: Buffer.concat(chunks).toString("utf8") });
      response.writeHead(204).end();
    });
  });

  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.1", resolve));
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/hooks`;
  }

  stop(): void {
    this.server.close();
  }

  /** A verified event of `type` about one of `subjects`, once one has arrived. */
  eventAbout(secret: string, type: string, subjects: Set<string>): Record<string, unknown> | undefined {
    for (const message of this.received) {
      const event = verifySignature(secret, message.headers, message.body);
      if (event["type"] === type && subjects.has(String(event["subject"]))) return event;
    }
    return undefined;
  }
}
