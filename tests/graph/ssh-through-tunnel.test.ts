/**
 * SSH through the stack's own tunnel (`sshThroughTunnel`): what CI reaches the server by. What it
 * adds to the graph, what the Hetzner firewall then opens, and what switching it on does to a
 * running stack.
 */
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { type ProgramRun, type RecordedResource, revealSecrets, runProgram, settle } from "../../scripts/mock-engine";
import { artifactsOf } from "../../scripts/plan";
import { planChange } from "../lifecycle/engine";
import { withChanges } from "../support/fixtures";
import { ofType, only, openPorts, T } from "../support/graph";

const {
  accessServiceToken: TOKEN,
  accessPolicy: POLICY,
  accessApplication: APP,
  tunnelConfig: TUNNEL_CONFIG,
  dnsRecord: DNS,
} = T;
const SSH_NAME = "shop-prod-ssh.example.com";

const throughTunnel = (changes: Record<string, unknown> = {}) =>
  runProgram("prod", withChanges("prod", { sshThroughTunnel: true, ...changes }));
const sshRule = (run: ProgramRun) =>
  (only(run.resources, T.firewall).inputs.rules as { port?: string; sourceIps: string[] }[]).find(
    (r) => r.port === "22",
  );

describe("SSH through the tunnel", () => {
  it("with no admin network closes port 22 at the Hetzner firewall: nothing is open but ICMP", async () => {
    const run = await throughTunnel({ sshAllowedCidrs: [] });
    expect(openPorts(only(run.resources, T.firewall))).toEqual(["icmp"]);
  });

  it("beside admin networks keeps SSH open to those networks alone", async () => {
    const run = await throughTunnel({ sshAllowedCidrs: ["198.51.100.0/24"] });
    expect(openPorts(only(run.resources, T.firewall)).sort()).toEqual(["icmp", "tcp/22"]);
    expect(sshRule(run)?.sourceIps).toEqual(["198.51.100.0/24"]);
  });

  it("sends <app>-<stack>-ssh.<domain> to the host's sshd, before every route", async () => {
    const run = await throughTunnel();
    const ingresses = (only(run.resources, TUNNEL_CONFIG).inputs.config as { ingresses: unknown[] }).ingresses;
    expect(ingresses[0]).toEqual({ hostname: SSH_NAME, service: "ssh://host.docker.internal:22" });
    const compose = parse(artifactsOf(run)["compose.yaml"]) as {
      services: Record<string, { extra_hosts?: string[] }>;
    };
    expect(compose.services.cloudflared.extra_hosts).toEqual(["host.docker.internal:host-gateway"]);
  });

  it("publishes that name as a proxied CNAME to the tunnel, never as the server's address", async () => {
    const run = await throughTunnel();
    const record = ofType(run.resources, DNS).filter((r) => r.inputs.name === SSH_NAME);
    expect(record).toHaveLength(1);
    expect(record[0].inputs).toMatchObject({ type: "CNAME", proxied: true });
    expect(String(record[0].inputs.content)).toMatch(/\.cfargotunnel\.com$/);
  });

  it("puts the name behind an Access application whose one policy admits the deploy service token alone", async () => {
    const run = await throughTunnel();
    const token = only(run.resources, TOKEN);
    const policy = only(run.resources, POLICY);
    const app = only(run.resources, APP);
    expect(token.inputs).toMatchObject({ duration: "forever" });
    expect(policy.inputs.decision).toBe("non_identity");
    expect(policy.inputs.includes).toEqual([{ serviceToken: { tokenId: token.id } }]);
    expect(policy.inputs.requires).toBeUndefined();
    expect(app.inputs).toMatchObject({
      type: "self_hosted",
      domain: SSH_NAME,
      policies: [{ id: policy.id, precedence: 1 }],
      serviceAuth401Redirect: true,
    });
  });

  it("exports the name and the token's id, and its secret only as a secret output", async () => {
    const run = await throughTunnel();
    expect(run.outputs.sshHostname).toBe(SSH_NAME);
    expect(run.outputs.deployServiceTokenId).toMatch(/^[0-9a-f]{32}\.access$/);
    expect(run.secretOutputs).toContain("deployServiceTokenSecret");
    expect(run.outputs.deployServiceTokenSecret).toBe("[secret]");
    const secret = String(revealSecrets(await settle(run.exports.deployServiceTokenSecret as never)));
    const visible = JSON.stringify(run.resources.map((r) => r.inputs));
    expect(visible).not.toContain(secret);
  });

  it("never bans cloudflared's container in fail2ban, through which every tunnel login comes", async () => {
    const run = await throughTunnel();
    const jail = artifactsOf(run)["host/etc/fail2ban/jail.local"];
    expect(jail).toMatch(/^ignoreip = .*172\.16\.0\.0\/12 192\.168\.0\.0\/16$/m);
  });

  it("is off by default: no Access resources, no SSH ingress, SSH open to the admin networks", async () => {
    const run = await runProgram("prod", withChanges("prod", {}));
    for (const type of [TOKEN, POLICY, APP]) expect(ofType(run.resources, type)).toEqual([]);
    const ingresses = (only(run.resources, TUNNEL_CONFIG).inputs.config as { ingresses: { hostname?: string }[] })
      .ingresses;
    expect(ingresses.map((i) => i.hostname)).not.toContain(SSH_NAME);
    expect(run.outputs.sshHostname).toBeUndefined();
    expect(artifactsOf(run)["host/etc/fail2ban/jail.local"]).not.toContain("172.16.0.0/12");
  });

  it("switched on for a running stack, creates Access, updates the firewall and tunnel in place, and ships a release", async () => {
    const before = await runProgram("prod", withChanges("prod", {}));
    const after = await throughTunnel({ sshAllowedCidrs: [] });
    const steps = planChange(before.resources, after.resources);
    const op = (r: RecordedResource) => steps.find((s) => s.resource.urn === r.urn)?.op;
    // Only commands are replaced (a new compose file and jail.local are a new release, as any
    // change of them): no server, volume, DNS record or tunnel.
    const replacedOrDeleted = steps.filter((s) => s.op === "replace" || s.op === "delete");
    expect(replacedOrDeleted.filter((s) => s.resource.type !== "command:remote:Command")).toEqual([]);
    expect(replacedOrDeleted.map((s) => s.resource.name)).toContain("shop-prod-app-deploy");
    for (const type of [TOKEN, POLICY, APP]) expect(op(only(after.resources, type))).toBe("create");
    expect(op(only(after.resources, T.firewall))).toBe("update");
    expect(op(only(after.resources, TUNNEL_CONFIG))).toBe("update");
    expect(op(only(after.resources, T.server))).toBeUndefined();
  });
});
