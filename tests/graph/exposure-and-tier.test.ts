/**
 * What the config's tier and exposure mode change in the graph. Each case runs the program again.
 */
import { describe, expect, it } from "vitest";
import { CLOUDFLARE_IP_RANGES, runProgram } from "../../scripts/mock-engine";
import { planChange } from "../lifecycle/engine";
import { withChanges } from "../support/fixtures";
import { only, openPorts, T } from "../support/graph";

describe("the exposure mode", () => {
  it("tunnel opens only SSH and ICMP on the Hetzner firewall", async () => {
    const run = await runProgram("staging", withChanges("staging", { exposure: "tunnel" }));
    expect(openPorts(only(run.resources, T.firewall)).sort()).toEqual(["icmp", "tcp/22"]);
  });

  it("direct opens 80 and 443 (and HTTP/3) to Cloudflare's published IPv4 ranges alone, sorted", async () => {
    const run = await runProgram("staging", withChanges("staging", { exposure: "direct" }));
    const firewall = only(run.resources, T.firewall);
    expect(openPorts(firewall).sort()).toEqual(["icmp", "tcp/22", "tcp/443", "tcp/80", "udp/443"]);
    const web = (firewall.inputs.rules as { port?: string; sourceIps: string[] }[]).filter(
      (r) => r.port !== "22" && r.port,
    );
    expect(web).toHaveLength(3);
    for (const rule of web) expect(rule.sourceIps).toEqual([...CLOUDFLARE_IP_RANGES.ipv4Cidrs].sort());
    for (const rule of web) expect(rule.sourceIps).not.toContain("0.0.0.0/0");
  });

  it("direct opens 80 and 443 in the host firewall of the user data too", async () => {
    const run = await runProgram("staging", withChanges("staging", { exposure: "direct" }));
    const userData = only(run.resources, T.server).rawInputs.userData as string;
    expect(userData).toContain("- 80/tcp");
    expect(userData).toContain("- 443/tcp");
  });
});

describe("the tier", () => {
  it.each([
    ["small", "cax11", 2048],
    ["medium", "cax21", 2048],
    ["large", "cax31", 4096],
    ["xlarge", "cax41", 4096],
  ])("%s gives a %s server with a %i MiB swap file", async (tier, serverType, swapMb) => {
    const run = await runProgram("staging", withChanges("staging", { tier }));
    const server = only(run.resources, T.server);
    expect(server.inputs.serverType).toBe(serverType);
    expect(server.rawInputs.userData as string).toContain(`size: ${swapMb * 1024 * 1024}\n`);
  });

  it("changed on a running stack updates the server in place and resizes its swap file to the new tier's", async () => {
    const before = await runProgram("staging", withChanges("staging", { tier: "small" }));
    const after = await runProgram("staging", withChanges("staging", { tier: "large" }));
    const steps = planChange(before.resources, after.resources);
    const server = steps.find((s) => s.resource.type === T.server);
    expect(server && [server.op, server.changed]).toEqual(["update", ["serverType"]]);
    // Replaced or updated, the command runs again (an update runs `create` when there is no `update`).
    const swap = steps.find((s) => s.resource.name.endsWith("-host-swap") && s.op !== "delete");
    expect(swap?.resource.rawInputs.create).toBe("sudo /usr/local/sbin/swap-resize 4096");
  });
});
