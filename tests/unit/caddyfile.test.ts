import { describe, expect, it } from "vitest";
import { renderCaddyfile } from "../../compose/caddyfile";
import { resolveExample } from "../support/stack-configs";

function caddyfileOf(name: string): string {
  const c = resolveExample(name);
  return renderCaddyfile({
    exposure: c.exposure,
    hostnames: c.hostnames,
    routesInMatchOrder: c.routesInMatchOrder,
    services: c.services,
    uploadsPath: c.uploads?.path,
  });
}

describe("Caddyfile renderer", () => {
  it("serves plain HTTP on port 80 only in tunnel mode", () => {
    const text = caddyfileOf("nestjs-expo");
    expect(text).toContain("auto_https off");
    expect(text).toContain("http://api.fieldmap.example {");
    expect(text).toContain("http://app.fieldmap.example {");
  });

  it("lets Caddy get certificates itself in direct mode", () => {
    const text = caddyfileOf("migrations-pinned-digests");
    expect(text).not.toContain("auto_https off");
    expect(text).toMatch(/^ledger\.example \{$/m);
  });

  it("puts longer path prefixes before shorter ones and the catch-all last", () => {
    const text = caddyfileOf("express-socketio-nextjs");
    const api = text.indexOf("path /api /api/*");
    const socket = text.indexOf("path /socket.io /socket.io/*");
    const catchAll = text.indexOf("reverse_proxy frontend:3000");
    expect(socket).toBeGreaterThan(0);
    expect(socket).toBeLessThan(api);
    expect(api).toBeLessThan(catchAll);
  });

  it("flushes WebSocket routes at once and limits bodies where the route says", () => {
    const text = caddyfileOf("express-socketio-nextjs");
    expect(text).toMatch(/reverse_proxy backend:4000 \{\n\t+flush_interval -1/);
    expect(text).toContain("max_size 10MiB");
    expect(text).toContain(`int({http.request.header.Content-Length}) > ${10 * 1024 * 1024}`);
  });

  it("serves the uploads path from the volume before the app routes", () => {
    const text = caddyfileOf("express-socketio-nextjs");
    expect(text).toContain("handle_path /uploads/* {");
    expect(text.indexOf("handle_path /uploads/*")).toBeLessThan(text.indexOf("handle @route"));
  });

  it("sends the security headers and logs requests as JSON", () => {
    const text = caddyfileOf("fastify-bullmq-nextjs");
    for (const header of [
      "Strict-Transport-Security",
      "X-Content-Type-Options nosniff",
      "X-Frame-Options",
      "Referrer-Policy",
    ]) {
      expect(text).toContain(header);
    }
    expect(text).toContain("format json");
    expect(text).toContain("encode zstd gzip");
  });

  it("renders byte-identical text for the same input", () => {
    expect(caddyfileOf("express-socketio-nextjs")).toBe(caddyfileOf("express-socketio-nextjs"));
  });
});
