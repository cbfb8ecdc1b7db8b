/**
 * The ports the server opens. SSH always (from the admin networks only); in `direct` exposure
 * also the web ports (at the Hetzner firewall to Cloudflare's proxies only), which the Hetzner firewall, the host firewall and Caddy's published
 * ports all take from here.
 */

export const SSH_PORT = 22;

export interface PublicPort {
  readonly port: number;
  readonly protocol: "tcp" | "udp";
  /** Why it is open (the Hetzner firewall rule's description). */
  readonly description: string;
}

/** The web ports `direct` exposure opens, in this order everywhere. */
export const DIRECT_MODE_PORTS: readonly PublicPort[] = [
  { port: 80, protocol: "tcp", description: "HTTP (redirects to HTTPS, ACME)" },
  { port: 443, protocol: "tcp", description: "HTTPS" },
  { port: 443, protocol: "udp", description: "HTTP/3" },
];

/** The web ports open in an exposure mode: none with the tunnel. */
export function publicWebPorts(exposure: "tunnel" | "direct"): readonly PublicPort[] {
  return exposure === "direct" ? DIRECT_MODE_PORTS : [];
}

/**
 * The name every hostname's CNAME points to in `direct` exposure, `<prefix>-origin.<domain>`: its
 * proxied A record holds the server's IPv4, so public DNS never gives it out.
 * No route may use it.
 */
export function originHostname(prefix: string, domain: string): string {
  return `${prefix}-origin.${domain}`;
}

/**
 * The name SSH answers on through the tunnel with `sshThroughTunnel`, `<prefix>-ssh.<domain>`:
 * behind a Cloudflare Access application that admits the stack's deploy service token only.
 * One label below the zone, so Universal SSL covers it. No route may use it.
 */
export function sshHostname(prefix: string, domain: string): string {
  return `${prefix}-ssh.${domain}`;
}

/** Where cloudflared reaches the host's sshd from its container (compose maps it to the host gateway). */
export const HOST_SSH_FROM_CONTAINER = `ssh://host.docker.internal:${SSH_PORT}`;

/**
 * HSTS as both the zone setting and Caddy send it: six months, for the names the stack serves
 * only. No includeSubDomains or preload: those would bind every other name of the zone, for
 * months, to HTTPS it may not have.
 */
export const HSTS_MAX_AGE_SECONDS = 15_552_000;
/** The Strict-Transport-Security header value that goes with it. */
export const HSTS_HEADER = `max-age=${HSTS_MAX_AGE_SECONDS}`;
