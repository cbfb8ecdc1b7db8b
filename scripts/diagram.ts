/**
 * A picture of a planned stack: a Mermaid flowchart drawn from what the program registered (the
 * server, volume, firewall, tunnel, DNS records, buckets, backups) and from the compose file it
 * ships (services, their networks, ports and dependencies). `npm run plan` writes it next to the
 * other artifacts; the README shows prod's.
 */
import { parse } from "yaml";
import type { StackConfig } from "../config/resolve";
import { DATA_DIR } from "../model/server";
import type { ProgramRun, RecordedResource } from "./mock-engine";

/** What the diagram takes from the resolved config: the routes and the services' ports. */
export type DiagramConfig = Pick<StackConfig, "routes" | "services">;

interface ComposeService {
  image?: string;
  networks?: string[] | Record<string, unknown>;
  ports?: (string | { published?: string | number; target?: number })[];
  expose?: (string | number)[];
  depends_on?: string[] | Record<string, unknown>;
  deploy?: { replicas?: number };
}
interface ComposeFile {
  services: Record<string, ComposeService>;
  networks?: Record<string, { internal?: boolean } | null>;
}

const BACKUP_PREFIXES_NOTE = "daily 7 d · weekly 35 d · monthly 365 d";

/** Mermaid node ids: letters, digits and underscores only. */
const id = (s: string) => s.replace(/[^A-Za-z0-9]/g, "_");
/** Mermaid labels in double quotes: no double quotes inside. */
const label = (s: string) => `"${s.replace(/"/g, "'")}"`;

function byType(run: ProgramRun, suffix: string): RecordedResource[] {
  return run.resources.filter((r) => r.type.endsWith(suffix));
}

function list<T>(value: T[] | Record<string, unknown> | undefined): string[] {
  if (!value) return [];
  return Array.isArray(value) ? value.map(String) : Object.keys(value);
}

/** The Mermaid text of one planned stack. */
export function stackDiagram(run: ProgramRun, composeText: string | undefined, config: DiagramConfig): string {
  const servicePorts = new Map(config.services.map((s) => [s.name, s.port]));
  const lines: string[] = ["flowchart LR"];
  const add = (line: string) => lines.push(`  ${line}`);
  const server = byType(run, "/server:Server")[0];
  const volume = byType(run, "/volume:Volume")[0];
  const firewall = byType(run, "/firewall:Firewall")[0];
  const tunnel = byType(run, "/zeroTrustTunnelCloudflared:ZeroTrustTunnelCloudflared")[0];
  const records = byType(run, "/dnsRecord:DnsRecord");
  const buckets = byType(run, "/r2Bucket:R2Bucket");
  const backupsComponent = run.resources.find((r) => r.type === "vps:backups:Backups");
  const compose: ComposeFile | undefined = composeText ? (parse(composeText) as ComposeFile) : undefined;

  const hostnames = [...new Set(records.map((r) => String(r.inputs.name)))].sort();
  const recordTypes = [...new Set(records.map((r) => String(r.inputs.type)))].sort().join("/");
  const rules = (firewall?.inputs.rules ?? []) as { protocol: string; port?: string; sourceIps: string[] }[];
  const sshRule = rules.find((r) => r.port === "22");
  const webPorts = rules.filter((r) => r.port && r.port !== "22").map((r) => `${r.port}/${r.protocol}`);

  add(`users([${label("Users")}])`);
  add(`admins([${label("Admins")}])`);

  add(`subgraph cloudflare[${label("Cloudflare")}]`);
  add(`  dns[${label(`DNS ${recordTypes || "records"} (proxied)<br/>${hostnames.join("<br/>")}`)}]`);
  if (tunnel) add(`  tunnel[${label(`Named tunnel ${tunnel.inputs.name}`)}]`);
  for (const b of buckets) {
    const name = String(b.inputs.name);
    const note = name.endsWith("-backups") ? `<br/>${BACKUP_PREFIXES_NOTE}` : "";
    add(`  ${id(`bucket_${name}`)}[(${label(`R2 ${name}${note}`)})]`);
  }
  add("end");

  const location = String(server?.inputs.location ?? "");
  add(`subgraph hetzner[${label(`Hetzner ${location}`)}]`);
  const fwText = [`SSH from ${sshRule?.sourceIps.length ?? 0} admin networks`, "ICMP", ...webPorts].join(", ");
  add(`  firewall{{${label(`Firewall: ${fwText}`)}}}`);
  add(
    `  subgraph server[${label(`Server ${server?.inputs.name} · ${server?.inputs.serverType} · ${server?.inputs.image}`)}]`,
  );
  if (compose) {
    const networks = compose.networks ?? {};
    const roles: Record<string, string[]> = { proxy: [], apps: [], data: [] };
    for (const [name, svc] of Object.entries(compose.services)) {
      const nets = list(svc.networks);
      const role =
        name === "caddy" || name === "cloudflared"
          ? "proxy"
          : nets.every((n) => networks[n]?.internal)
            ? "data"
            : "apps";
      const port = servicePorts.get(name);
      const ports = [
        ...(port ? [`:${port}`] : []),
        ...(svc.expose ?? []).map((p) => `:${p}`),
        ...(svc.ports ?? []).map((p) => `published ${typeof p === "string" ? p : p.published}`),
      ];
      const replicas = svc.deploy?.replicas && svc.deploy.replicas > 1 ? ` ×${svc.deploy.replicas}` : "";
      const text = `${name}${replicas}${ports.length ? ` ${ports.join(" ")}` : ""}<br/>net: ${nets.join(", ")}`;
      roles[role].push(
        role === "data" ? `${id(`svc_${name}`)}[(${label(text)})]` : `${id(`svc_${name}`)}[${label(text)}]`,
      );
    }
    const titles: Record<string, string> = {
      proxy: "Proxy",
      apps: "App services",
      data: `Data (internal network: ${Object.keys(networks)
        .filter((n) => networks[n]?.internal)
        .join(", ")})`,
    };
    for (const [role, nodes] of Object.entries(roles)) {
      if (nodes.length === 0) continue;
      add(`    subgraph ${role}[${label(titles[role])}]`);
      for (const n of nodes) add(`      ${n}`);
      add("    end");
    }
  }
  if (backupsComponent) add(`    backupjob[${label("Backup timer: pg_dump → age → R2<br/>weekly restore drill")}]`);
  add("  end");
  if (volume) {
    add(`  volume[(${label(`Volume ${volume.inputs.name} · ${volume.inputs.size} GB<br/>${DATA_DIR}, protected`)})]`);
  }
  add("end");

  // Flows.
  add("admins -->|SSH| firewall");
  add("firewall --> server");
  if (tunnel) {
    add("users -->|HTTPS| dns");
    add("dns --> tunnel");
    if (compose?.services.cloudflared) add("tunnel -->|outbound connection| svc_cloudflared");
  } else {
    add("users -->|HTTPS| dns");
    add("dns --> firewall");
    if (compose?.services.caddy) add("firewall -->|80/443| svc_caddy");
  }
  if (compose) {
    if (compose.services.caddy) {
      const routesByService = new Map<string, string[]>();
      for (const r of config.routes) {
        routesByService.set(r.service, [...(routesByService.get(r.service) ?? []), `${r.hostname}${r.path ?? ""}`]);
      }
      for (const [service, routes] of routesByService) {
        add(`svc_caddy -->|${label(routes.join("<br/>"))}| ${id(`svc_${service}`)}`);
      }
    }
    for (const [name, svc] of Object.entries(compose.services)) {
      for (const dep of list(svc.depends_on)) add(`${id(`svc_${name}`)} -.-> ${id(`svc_${dep}`)}`);
    }
    for (const name of ["postgres", "redis"]) if (compose.services[name] && volume) add(`svc_${name} -.-> volume`);
  }
  const backupsBucket = buckets.find((b) => String(b.inputs.name).endsWith("-backups"));
  if (backupsComponent && backupsBucket) {
    if (compose?.services.postgres) add("svc_postgres -.->|pg_dump| backupjob");
    add(`backupjob -->|encrypted| ${id(`bucket_${backupsBucket.inputs.name}`)}`);
  }
  return `${lines.join("\n")}\n`;
}
