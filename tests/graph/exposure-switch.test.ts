/**
 * Switching a running stack between tunnel and direct exposure, as `pulumi up` applies it
 * (tests/lifecycle/engine.ts's order: creates and updates in dependency order, deletes last), to a
 * model of the zone that enforces Cloudflare's rule: a CNAME stands alone under its name (the API
 * refuses a CNAME beside any other record, and any record beside a CNAME). After every step each
 * hostname must still resolve: to a tunnel that exists, or to origin records that do.
 */
import { describe, expect, it } from "vitest";
import type { RecordedResource } from "../../scripts/mock-engine";
import { runProgram } from "../../scripts/mock-engine";
import { planChange, type Step } from "../lifecycle/engine";
import { withChanges } from "../support/fixtures";

const DNS = "cloudflare:index/dnsRecord:DnsRecord";
const TUNNEL = "cloudflare:index/zeroTrustTunnelCloudflared:ZeroTrustTunnelCloudflared";
const HOSTNAMES = ["api.example.com", "app.example.com"];

interface Zone {
  records: Map<string, { name: string; type: string; content: string }>;
  tunnels: Set<string>;
}

/** Apply the steps to the zone; the first refusal or unresolvable hostname, with the step. */
function applyToZone(zone: Zone, steps: Step[], hostnames = HOSTNAMES): string | undefined {
  for (const step of steps) {
    const { resource } = step;
    if (resource.type === TUNNEL) {
      if (step.op === "delete") zone.tunnels.delete(resource.id!);
      else zone.tunnels.add(resource.id!);
    }
    if (resource.type === DNS) {
      if (step.op === "delete") zone.records.delete(resource.urn);
      else {
        const record = {
          name: String(resource.inputs.name),
          type: String(resource.inputs.type),
          content: String(resource.inputs.content),
        };
        const others = [...zone.records.entries()].filter(([urn, r]) => urn !== resource.urn && r.name === record.name);
        if (others.length > 0 && (record.type === "CNAME" || others.some(([, r]) => r.type === "CNAME"))) {
          return `${step.op} ${resource.name}: Cloudflare refuses a ${record.type} beside ${others.map(([, r]) => r.type).join(", ")} at ${record.name}`;
        }
        zone.records.set(resource.urn, record);
      }
    }
    for (const hostname of hostnames) {
      const problem = resolves(zone, hostname);
      if (problem) return `after ${step.op} ${resource.name}: ${problem}`;
    }
  }
  return undefined;
}

function resolves(zone: Zone, name: string): string | undefined {
  const records = [...zone.records.values()].filter((r) => r.name === name);
  if (records.length === 0) return `${name} has no record`;
  const cname = records.find((r) => r.type === "CNAME");
  if (!cname) return undefined;
  const tunnel = /^(.+)\.cfargotunnel\.com$/.exec(cname.content);
  if (tunnel) return zone.tunnels.has(tunnel[1]) ? undefined : `${name} points at a tunnel that is gone`;
  return resolves(zone, cname.content);
}

function zoneOf(resources: readonly RecordedResource[]): Zone {
  const zone: Zone = { records: new Map(), tunnels: new Set() };
  applyToZone(
    zone,
    resources.map((resource) => ({ op: "create" as const, resource, changed: [] })),
    [],
  );
  return zone;
}

async function switchExposure(from: "tunnel" | "direct", to: "tunnel" | "direct") {
  const before = await runProgram("prod", withChanges("prod", { exposure: from }));
  const after = await runProgram("prod", withChanges("prod", { exposure: to }));
  const zone = zoneOf(before.resources);
  const steps = planChange(before.resources, after.resources);
  return { zone, steps, refused: applyToZone(zone, steps), after };
}

describe("switching exposure on a running stack", () => {
  it("from tunnel to direct changes each hostname's record in place and never leaves a name unresolved", async () => {
    const { zone, steps, refused, after } = await switchExposure("tunnel", "direct");
    expect(refused).toBeUndefined();
    const dnsSteps = steps.filter((s) => s.resource.type === DNS);
    expect(dnsSteps.filter((s) => HOSTNAMES.includes(String(s.resource.inputs.name))).map((s) => s.op)).toEqual([
      "update",
      "update",
    ]);
    expect(resolves(zone, "api.example.com")).toBeUndefined();
    expect(zone.tunnels.size).toBe(0);
    // Pulumi may run independent steps in any order: the CNAMEs wait for the origin records.
    const origin = after.resources.filter((r) => r.type === DNS && r.name.includes("-origin-")).map((r) => r.urn);
    for (const cname of after.resources.filter((r) => r.type === DNS && r.inputs.type === "CNAME")) {
      expect(
        cname.options.dependsOn.map((d) => after.resources.find((r) => `${r.type}::${r.name}` === d)?.urn),
      ).toEqual(expect.arrayContaining(origin));
    }
  });

  it("from direct to tunnel points each hostname at the new tunnel and deletes the origin records last", async () => {
    const { zone, steps, refused } = await switchExposure("direct", "tunnel");
    expect(refused).toBeUndefined();
    expect(steps.at(-1)?.op).toBe("delete");
    expect([...zone.records.values()].map((r) => r.type)).toEqual(["CNAME", "CNAME"]);
  });
});
