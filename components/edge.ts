/**
 * The Cloudflare edge: a proxied CNAME for every route's hostname, to a named Cloudflare Tunnel
 * (`tunnel` exposure: the server opens no web port, cloudflared dials out) or to the origin name's
 * proxied A record, the server's primary IPv4 (`direct` exposure, where the Hetzner firewall opens
 * the web ports only to `cloudflareOriginRanges`). Optionally the zone settings the stack relies on.
 *
 * Cost: tunnels, proxied DNS records and these zone settings are free on every Cloudflare plan.
 */
import * as cloudflare from "@pulumi/cloudflare";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import type { Route } from "../config/server";
import { HOST_SSH_FROM_CONTAINER, HSTS_MAX_AGE_SECONDS, originHostname, sshHostname } from "../model/ports";
import { CADDY_INTERNAL_URL } from "../model/services";
import { SshAccess } from "./ssh-access";

export interface EdgeArgs {
  /**
   * Prefix of every resource name, `<app>-<stack>`; also the tunnel's name.
   * @example "shop-prod"
   */
  prefix: string;
  /** The Cloudflare account that owns the zone and the tunnel (32 hex characters). */
  accountId: string;
  /**
   * The zone the hostnames live in; it must already exist on the account.
   * @example "example.com"
   */
  domain: string;
  /** The routes the stack serves, in config order (for their URLs). */
  routes: readonly Route[];
  /** The hostnames of the routes; each becomes one DNS name. */
  hostnames: readonly string[];
  /** The routes in the order cloudflared must try them; each becomes one ingress rule. */
  routesInMatchOrder: readonly Route[];
  /**
   * `tunnel`: a named tunnel and CNAMEs to it; `direct`: CNAMEs to the origin's A record.
   * @default "tunnel"
   */
  exposure: "tunnel" | "direct";
  /**
   * Manage zone-wide settings (always HTTPS, TLS 1.2+, HSTS, and SSL full strict when direct).
   * @default true
   */
  manageZoneSettings: boolean;
  /**
   * SSH through the tunnel too, behind Access (`SshAccess`); tunnel mode only.
   * @default false
   */
  sshThroughTunnel?: boolean;
  /** The server's primary IPv4 address (direct mode). */
  ipv4?: pulumi.Input<string>;
  /**
   * Where cloudflared sends every request, as seen from its container.
   * @default CADDY_INTERNAL_URL ("http://caddy:80")
   */
  originUrl?: string;
}

export class Edge extends pulumi.ComponentResource {
  /** The zone's id. */
  readonly zoneId: pulumi.Output<string>;
  /** The tunnel's UUID (tunnel mode only). */
  readonly tunnelId?: pulumi.Output<string>;
  /** The token cloudflared runs with (`TUNNEL_TOKEN`); tunnel mode only. Secret. */
  readonly tunnelToken?: pulumi.Output<string>;
  /** The public URL of every route, in route order. */
  readonly routeUrls: string[];
  /** The DNS records: a CNAME per hostname, and in direct mode the origin's A. */
  readonly dnsRecords: cloudflare.DnsRecord[];
  /** SSH through the tunnel: its name and the deploy service token (sshThroughTunnel only). */
  readonly ssh?: { hostname: string; clientId: pulumi.Output<string>; clientSecret: pulumi.Output<string> };

  constructor(name: string, args: EdgeArgs, opts?: pulumi.ComponentResourceOptions) {
    super("vps:edge:Edge", name, {}, opts);
    const parent = { parent: this };
    const { hostnames } = args;
    if (args.sshThroughTunnel && args.exposure !== "tunnel") {
      throw new Error("Edge: SSH through the tunnel needs tunnel exposure");
    }
    const sshName = args.sshThroughTunnel ? sshHostname(args.prefix, args.domain) : undefined;

    const zoneId = lookupZone();
    const tunnel = args.exposure === "tunnel" ? createTunnel() : undefined;
    // Config validation refuses a route on this name (resolveConfig).
    const originName = originHostname(args.prefix, args.domain);
    // The origin records exist before a hostname points at them, so no name ever dangles.
    const origin = tunnel ? [] : originRecords();
    const target = tunnel ? pulumi.interpolate`${tunnel.id}.cfargotunnel.com` : originName;
    this.dnsRecords = [...origin, ...hostnameRecords(target, origin)];
    if (args.manageZoneSettings) createZoneSettings();
    if (tunnel && sshName) {
      const access = new SshAccess(
        `${name}-ssh`,
        { prefix: args.prefix, accountId: args.accountId, zoneId, hostname: sshName, tunnelId: tunnel.id },
        parent,
      );
      this.ssh = { hostname: sshName, clientId: access.clientId, clientSecret: access.clientSecret };
    }

    this.zoneId = zoneId;
    this.tunnelId = tunnel?.id;
    this.tunnelToken = tunnel?.token;
    this.routeUrls = args.routes.map(routeUrl);
    this.registerOutputs({
      zoneId: this.zoneId,
      tunnelId: this.tunnelId,
      tunnelToken: this.tunnelToken,
      routeUrls: this.routeUrls,
    });

    function lookupZone(): pulumi.Output<string> {
      const zone = cloudflare.getZoneOutput(
        { filter: { name: args.domain, account: { id: args.accountId }, match: "all" } },
        parent,
      );
      return zone.zoneId;
    }

    function createTunnel() {
      // A remotely managed tunnel: its ingress lives in Cloudflare (configSrc "cloudflare"), so
      // cloudflared needs nothing but the token. The secret is generated once and kept in state.
      const secret = new random.RandomBytes(`${name}-tunnel-secret`, { length: 32 }, parent);
      const created = new cloudflare.ZeroTrustTunnelCloudflared(
        `${name}-tunnel`,
        {
          accountId: args.accountId,
          name: args.prefix,
          configSrc: "cloudflare",
          tunnelSecret: pulumi.secret(secret.base64),
        },
        parent,
      );
      new cloudflare.ZeroTrustTunnelCloudflaredConfig(
        `${name}-tunnel-config`,
        {
          accountId: args.accountId,
          tunnelId: created.id,
          source: "cloudflare",
          config: {
            ingresses: tunnelIngressRules(args.routesInMatchOrder, args.originUrl ?? CADDY_INTERNAL_URL, sshName),
          },
        },
        parent,
      );
      const token = cloudflare
        .getZeroTrustTunnelCloudflaredTokenOutput({ accountId: args.accountId, tunnelId: created.id }, parent)
        .apply((result) => result.token);
      return { id: created.id, token: pulumi.secret(token) };
    }

    /**
     * Every hostname is a proxied CNAME in both modes, to the tunnel or to the origin records:
     * switching modes changes each record's content in place. Records of another type under the
     * same name could not be created while the CNAME is there (Cloudflare refuses a CNAME beside
     * any other record), and Pulumi creates before it deletes.
     */
    function hostnameRecords(target: pulumi.Input<string>, dependsOn: pulumi.Resource[]): cloudflare.DnsRecord[] {
      return hostnames.map(
        (hostname) =>
          new cloudflare.DnsRecord(
            `${name}-cname-${hostname}`,
            {
              zoneId,
              name: hostname,
              type: "CNAME",
              content: target,
              proxied: true,
              ttl: 1,
              comment: `${args.prefix}: ${tunnel ? "Cloudflare Tunnel" : "server"} (managed by Pulumi)`,
            },
            { ...parent, dependsOn },
          ),
      );
    }

    /**
     * Direct mode: the origin name, a proxied A record to the server's primary IPv4. No AAAA: the
     * published ports answer on IPv4 only (Docker's bridges are IPv4, no userland proxy), so
     * Cloudflare must never try the server's IPv6. Visitors still reach the site over IPv6,
     * which Cloudflare's edge answers.
     */
    function originRecords(): cloudflare.DnsRecord[] {
      if (args.ipv4 === undefined) throw new Error("Edge: direct exposure needs the server's ipv4 address");
      const addresses = [{ type: "A", content: args.ipv4 }];
      return addresses.map(
        ({ type, content }) =>
          new cloudflare.DnsRecord(
            `${name}-origin-${type.toLowerCase()}`,
            {
              zoneId,
              name: originName,
              type,
              content,
              proxied: true,
              ttl: 1,
              comment: `${args.prefix}: server (managed by Pulumi)`,
            },
            parent,
          ),
      );
    }

    function createZoneSettings(): void {
      for (const setting of zoneSettingsFor(args.exposure)) {
        new cloudflare.ZoneSetting(
          `${name}-zone-${setting.settingId}`,
          { zoneId, settingId: setting.settingId, value: setting.value },
          parent,
        );
      }
    }
  }
}

/** One ingress rule of a remotely managed tunnel. */
export interface IngressRule {
  hostname?: string;
  path?: string;
  service: string;
}

/** The catch-all every tunnel ingress list must end with. */
export const CATCH_ALL_SERVICE = "http_status:404";

/**
 * The tunnel's ingress rules: one per route, all to the origin, then the catch-all. cloudflared
 * takes the first rule that matches, so the routes come in match order (the resolved config's
 * `routesInMatchOrder`: on each hostname the longer path prefixes first). With `sshName`, that
 * name goes to the host's sshd first (no route may use it: config validation).
 */
export function tunnelIngressRules(
  routesInMatchOrder: readonly Route[],
  originUrl: string,
  sshName?: string,
): IngressRule[] {
  const ssh: IngressRule[] = sshName ? [{ hostname: sshName, service: HOST_SSH_FROM_CONTAINER }] : [];
  const rules: IngressRule[] = routesInMatchOrder.map((route) => ({
    hostname: route.hostname,
    ...(route.path === undefined ? {} : { path: pathPrefixRegex(route.path) }),
    service: originUrl,
  }));
  return [...ssh, ...rules, { service: CATCH_ALL_SERVICE }];
}

/**
 * A path prefix as the regular expression cloudflared matches against the request path:
 * `/api` → `^/api(/.*)?$`, which matches `/api` and `/api/…` but not `/apix`.
 */
export function pathPrefixRegex(prefix: string): string {
  const escaped = prefix.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  return `^${escaped}(/.*)?$`;
}

/** The public URL of a route. */
export function routeUrl(route: Route): string {
  return `https://${route.hostname}${route.path ?? ""}`;
}

export interface ZoneSettingSpec {
  settingId: string;
  value: unknown;
}

/**
 * The zone settings the stack relies on. SSL "strict" only in direct mode, where Cloudflare
 * connects to the server's own certificate; tunnel traffic does not use the zone's SSL mode.
 */
export function zoneSettingsFor(exposure: "tunnel" | "direct"): ZoneSettingSpec[] {
  return [
    ...(exposure === "direct" ? [{ settingId: "ssl", value: "strict" }] : []),
    { settingId: "always_use_https", value: "on" },
    { settingId: "min_tls_version", value: "1.2" },
    {
      settingId: "security_header",
      // The value is passed to the API as is: its keys are the API's snake_case names (camelCase
      // keys, as in the provider's docs example, never converge: pulumi/pulumi-cloudflare#1579).
      // No includeSubdomains/preload: those bind every other name of the zone for months.
      value: {
        strict_transport_security: {
          enabled: true,
          max_age: HSTS_MAX_AGE_SECONDS,
          include_subdomains: false,
          preload: false,
          nosniff: true,
        },
      },
    },
  ];
}

/**
 * The IPv4 networks Cloudflare's proxies connect to origins from, as Cloudflare publishes them
 * (https://www.cloudflare.com/ips/), read at every `pulumi up`: direct exposure opens the web
 * ports to these alone, so nobody can reach the origin around Cloudflare. Sorted, so a list that
 * comes back in another order shows no diff. IPv4 only: the origin has no AAAA record.
 */
export function cloudflareOriginRanges(): pulumi.Output<string[]> {
  return cloudflare.getIpRangesOutput({}).ipv4Cidrs.apply((cidrs) => [...cidrs].sort());
}
