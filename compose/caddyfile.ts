/**
 * The Caddyfile renderer: host and path routing from the routes, WebSocket pass-through,
 * compression, security headers, body-size limits, the uploads path served from the volume and
 * JSON access logs. Pure: same input, same bytes.
 *
 * Tunnel mode: cloudflared sends every request to Caddy over plain HTTP inside the compose
 * network (Cloudflare terminates TLS), so each site is `http://<host>` and Caddy listens on port
 * 80 only, publishing nothing. Direct mode: sites are bare hostnames, so Caddy gets certificates
 * itself (ACME) and redirects HTTP to HTTPS.
 */
import type { AppService } from "../config/app";
import type { Route } from "../config/server";
import { HSTS_HEADER } from "../model/ports";
import { CADDY_INTERNAL_PORT } from "../model/services";

/**
 * The Content-Security-Policy of every uploaded file: `sandbox` (no scripts, a unique origin, no
 * forms or pop-ups) and nothing loaded from anywhere but inline styles and the site's own images.
 */
export const UPLOADS_CSP =
  "default-src 'none'; img-src 'self' data:; media-src 'self'; style-src 'unsafe-inline'; sandbox";
/** Extensions of files a browser would render as active content: uploads of them are downloaded. */
export const ACTIVE_UPLOAD_EXTENSIONS = ["html?", "xht(ml)?", "svgz?", "xml", "xsl(t)?", "m?js", "pdf"] as const;

/** Where the Caddy container sees the uploads directory (read-only). */
export const CADDY_UPLOADS_DIR = "/srv/uploads";
/** Caddy's admin endpoint inside its container; the health check asks it. */
export const CADDY_ADMIN = "127.0.0.1:2019";

export interface CaddyfileInput {
  readonly exposure: "tunnel" | "direct";
  /** The hostnames, each one site, in this order. */
  readonly hostnames: readonly string[];
  /** The routes, most specific first on each hostname (the resolved config's `routesInMatchOrder`). */
  readonly routesInMatchOrder: readonly Route[];
  readonly services: readonly Pick<AppService, "name" | "port">[];
  /** URL path prefix of the uploads, or undefined when the stack has none. */
  readonly uploadsPath?: string;
}

const TAB = "\t";

/** The Caddyfile of the stack. */
export function renderCaddyfile(input: CaddyfileInput): string {
  const ports = new Map(input.services.map((s) => [s.name, s.port]));
  const lines: string[] = [
    "# Rendered by webstack from the stack config; edits on the server are overwritten by the next deploy.",
    "{",
    `${TAB}admin ${CADDY_ADMIN}`,
  ];
  if (input.exposure === "tunnel") {
    lines.push(
      `${TAB}# Cloudflare terminates TLS; cloudflared reaches Caddy over the compose network on port ${CADDY_INTERNAL_PORT}.`,
      `${TAB}auto_https off`,
      `${TAB}http_port ${CADDY_INTERNAL_PORT}`,
    );
  }
  lines.push("}");

  for (const hostname of input.hostnames) {
    // Caddy tries `handle` blocks with named matchers in the order written: most specific first.
    const routes = input.routesInMatchOrder.filter((r) => r.hostname === hostname);
    const address = input.exposure === "tunnel" ? `http://${hostname}` : hostname;
    lines.push("", `${address} {`);
    lines.push(...indent(siteCommon()));
    if (input.uploadsPath) {
      lines.push(
        "",
        `${TAB}# Uploaded files, straight from the data volume. They are users' content: nothing in them`,
        `${TAB}# may run as the site. A sandboxing CSP gives a page opened from here no scripts and an`,
        `${TAB}# origin of its own, and the types a browser would run are downloaded, never shown.`,
        `${TAB}handle_path ${input.uploadsPath}/* {`,
        `${TAB}${TAB}root * ${CADDY_UPLOADS_DIR}`,
        `${TAB}${TAB}header {`,
        `${TAB}${TAB}${TAB}X-Content-Type-Options nosniff`,
        `${TAB}${TAB}${TAB}Content-Security-Policy "${UPLOADS_CSP}"`,
        `${TAB}${TAB}}`,
        `${TAB}${TAB}@active path_regexp (?i)\\.(${ACTIVE_UPLOAD_EXTENSIONS.join("|")})$`,
        `${TAB}${TAB}header @active Content-Disposition attachment`,
        `${TAB}${TAB}file_server`,
        `${TAB}}`,
      );
    }
    routes.forEach((route, i) => {
      const upstream = `${route.service}:${ports.get(route.service)}`;
      const body = routeBody(route, upstream);
      lines.push("");
      if (route.path) {
        lines.push(`${TAB}@route${i} path ${route.path} ${route.path}/*`, `${TAB}handle @route${i} {`);
      } else {
        lines.push(`${TAB}handle {`);
      }
      lines.push(...indent(indent(body)), `${TAB}}`);
    });
    lines.push("}");
  }
  return `${lines.join("\n")}\n`;
}

function siteCommon(): string[] {
  // HSTS is sent in both modes: with the tunnel the browser talks HTTPS to Cloudflare.
  return [
    "encode zstd gzip",
    "header {",
    // The same policy as the zone setting (HSTS_HEADER): a stricter one here would bind names
    // the zone setting deliberately leaves out.
    `${TAB}Strict-Transport-Security "${HSTS_HEADER}"`,
    `${TAB}X-Content-Type-Options nosniff`,
    `${TAB}X-Frame-Options SAMEORIGIN`,
    `${TAB}Referrer-Policy strict-origin-when-cross-origin`,
    `${TAB}-Server`,
    "}",
    "log {",
    `${TAB}output stdout`,
    `${TAB}format json`,
    "}",
  ];
}

function routeBody(route: Route, upstream: string): string[] {
  const body: string[] = [];
  if (route.maxBodyMb !== undefined) {
    const bytes = route.maxBodyMb * 1024 * 1024;
    // A declared length over the limit is refused at once with 413 (Caddy 2.6 would answer a
    // body cut short by request_body with 502); request_body still caps chunked bodies.
    const length = "{http.request.header.Content-Length}";
    body.push(
      `@tooLarge expression ${length}.size() > 0 && int(${length}) > ${bytes}`,
      "respond @tooLarge 413",
      "request_body {",
      `${TAB}max_size ${route.maxBodyMb}MiB`,
      "}",
    );
  }
  if (route.websockets) {
    // Caddy passes Upgrade requests through by itself; flushing at once keeps long-polling and
    // server-sent fallbacks (Socket.IO) responsive.
    body.push(`reverse_proxy ${upstream} {`, `${TAB}flush_interval -1`, "}");
  } else {
    body.push(`reverse_proxy ${upstream}`);
  }
  return body;
}

function indent(lines: string[]): string[] {
  return lines.map((l) => (l === "" ? l : `${TAB}${l}`));
}
