/**
 * The prod stack's resource graph under mocks: what the Hetzner side of `pulumi up` creates.
 */
import * as pulumi from "@pulumi/pulumi";
import { beforeAll, describe, expect, it } from "vitest";
import { type ProgramRun, readStackFile, runProgram, STAND_IN_DEPLOY_PUBLIC_KEY } from "../../scripts/mock-engine";
import { planChange } from "../lifecycle/engine";
import { only, openPorts, T } from "../support/graph";

let run: ProgramRun;
beforeAll(async () => {
  run = await runProgram("prod", readStackFile("prod"));
});

describe("the prod stack", () => {
  it("puts every Hetzner resource and the deploy key under the Server component", () => {
    const component = run.resources.find((r) => r.type === "vps:server:Server");
    expect(component?.parent).toBeUndefined();
    const mine = run.resources.filter((x) => /^(hcloud|tls):/.test(x.type));
    expect(mine.length).toBeGreaterThan(0);
    for (const r of mine) expect(r.parent).toBe("vps:server:Server::shop-prod");
  });

  it("creates a cax11 server from the small tier, in fsn1, from debian-13", () => {
    expect(only(run.resources, T.server).inputs).toMatchObject({
      serverType: "cax11",
      location: "fsn1",
      image: "debian-13",
      backups: true,
    });
  });

  it("protects the volume in Pulumi and at Hetzner", () => {
    const volume = only(run.resources, T.volume);
    expect(volume.options.protect).toBe(true);
    expect(volume.inputs).toMatchObject({ deleteProtection: true, size: 40, format: "ext4", automount: false });
  });

  it("protects the server in Pulumi and at Hetzner, delete and rebuild", () => {
    const server = only(run.resources, T.server);
    expect(server.options.protect).toBe(true);
    expect(server.inputs).toMatchObject({ deleteProtection: true, rebuildProtection: true });
  });

  it("never replaces the server for a change of user data, image or SSH keys", () => {
    expect(only(run.resources, T.server).options.ignoreChanges.sort()).toEqual(["image", "sshKeys", "userData"]);
  });

  it("keeps the disk size on a tier change so the change can be undone", () => {
    expect(only(run.resources, T.server).inputs.keepDisk).toBe(true);
  });

  it("gives the server primary IPs that are not deleted with it", () => {
    const ips = run.resources.filter((r) => r.type === T.primaryIp);
    expect(ips.map((ip) => ip.inputs.type).sort()).toEqual(["ipv4", "ipv6"]);
    for (const ip of ips)
      expect(ip.inputs).toMatchObject({ autoDelete: false, assigneeType: "server", location: "fsn1" });
    const publicNets = only(run.resources, T.server).inputs.publicNets as Record<string, unknown>[];
    expect(publicNets).toHaveLength(1);
    expect(publicNets[0]).toMatchObject({ ipv4Enabled: true, ipv6Enabled: true });
    expect(typeof publicNets[0].ipv4).toBe("number");
  });

  it("opens SSH from the admin networks, ICMP, and nothing else in tunnel mode", () => {
    const firewall = only(run.resources, T.firewall);
    expect(openPorts(firewall).sort()).toEqual(["icmp", "tcp/22"]);
    const ssh = (firewall.inputs.rules as { port?: string; sourceIps: string[] }[]).find((r) => r.port === "22");
    expect(ssh?.sourceIps).toEqual(["203.0.113.0/24", "2001:db8:1234::/48"]);
  });

  it("attaches the firewall to the server", () => {
    const firewall = only(run.resources, T.firewall);
    expect(only(run.resources, T.server).inputs.firewallIds).toEqual([Number(firewall.id)]);
  });

  it("registers only the stack's own deploy key with Hetzner, never an admin's, and gives the server that key", () => {
    const key = only(run.resources, T.sshKey);
    expect(key.inputs).toMatchObject({ name: "shop-prod-deploy", publicKey: STAND_IN_DEPLOY_PUBLIC_KEY });
    expect(key.options.dependsOn).toContain(`${T.privateKey}::shop-prod-deploy-key`);
    const adminKeys = JSON.parse(readStackFile("prod").values["webstack:adminSshKeys"]) as string[];
    for (const admin of adminKeys) expect(JSON.stringify(key.rawInputs)).not.toContain(admin.split(" ")[1]);
    expect(only(run.resources, T.server).inputs.sshKeys).toEqual([key.id]);
  });

  it("upgrading a stack whose server was created with the admins' keys registered leaves the server alone", () => {
    // The state the release before left: one Hetzner key per admin key, named on the server.
    const current = only(run.resources, T.sshKey);
    const oldKeys = [0, 1].map((i) => ({
      ...current,
      name: `shop-prod-admin-key-${i}`,
      urn: current.urn.replace(/::shop-prod-deploy-ssh-key$/, `::shop-prod-admin-key-${i}`),
      id: String(90_000 + i),
    }));
    const before = run.resources.flatMap((r) => {
      if (r.type === T.sshKey) return oldKeys;
      if (r.type === T.server) return [{ ...r, rawInputs: { ...r.rawInputs, sshKeys: oldKeys.map((k) => k.id) } }];
      return [r];
    });
    const steps = planChange(before, run.resources);
    expect(steps.map((s) => `${s.op} ${s.resource.name}`)).toEqual([
      "create shop-prod-deploy-ssh-key",
      "delete shop-prod-admin-key-1",
      "delete shop-prod-admin-key-0",
    ]);
  });

  it("lets prod and staging share a Hetzner project and their admins: no key name or key is registered twice", async () => {
    // A project refuses a second key with the same name or fingerprint. Each stack's key is the
    // ED25519 key its own tls.PrivateKey generates, so only the names could collide.
    const staging = await runProgram("staging", readStackFile("staging"));
    const names = [...run.resources, ...staging.resources].filter((r) => r.type === T.sshKey).map((k) => k.inputs.name);
    expect(names).toEqual(["shop-prod-deploy", "shop-staging-deploy"]);
    const admins = (stack: string) => JSON.parse(readStackFile(stack).values["webstack:adminSshKeys"]) as string[];
    expect(admins("staging").some((k) => admins("prod").includes(k))).toBe(true);
  });

  it("generates an ED25519 deploy key in the program", () => {
    expect(only(run.resources, T.privateKey).inputs).toMatchObject({ algorithm: "ED25519" });
  });

  it("attaches the volume to the server without Hetzner's automount", () => {
    const attachment = only(run.resources, T.volumeAttachment);
    expect(attachment.inputs).toMatchObject({
      automount: false,
      serverId: Number(only(run.resources, T.server).id),
      volumeId: Number(only(run.resources, T.volume).id),
    });
    expect(attachment.options.dependsOn).toEqual(
      expect.arrayContaining([`${T.server}::shop-prod-server`, `${T.volume}::shop-prod-data`]),
    );
  });

  it("labels every Hetzner resource with app, stack and managed-by", () => {
    for (const r of run.resources.filter((x) => x.type.startsWith("hcloud:") && x.type !== T.volumeAttachment)) {
      expect(r.inputs.labels).toMatchObject({ app: "shop", stack: "prod", "managed-by": "pulumi" });
    }
  });
});

describe("the server's user data", () => {
  const userData = () => only(run.resources, T.server).rawInputs.userData as string;

  it("is the rendered cloud-config with the deploy key and the volume's device path", () => {
    expect(userData().startsWith("#cloud-config\n")).toBe(true);
    expect(userData()).toContain(STAND_IN_DEPLOY_PUBLIC_KEY);
    const volumeId = only(run.resources, T.volume).id;
    expect(userData()).toContain(`/dev/disk/by-id/scsi-0HC_Volume_${volumeId}`);
  });

  it("is not a secret input and holds no secret of the program", () => {
    const server = only(run.resources, T.server);
    expect(server.secretInputs).not.toContain("userData");
    expect(userData()).not.toMatch(/PRIVATE KEY|stand-in private key|stand-in-password|stand-in-secret/);
  });
});

describe("the stack outputs", () => {
  it("include the addresses, the SSH command and the volume mount point", () => {
    expect(run.outputs).toMatchObject({
      ipv4: "203.0.113.10",
      ipv6: "2001:db8:10::1",
      sshCommand: "ssh admin@203.0.113.10",
      volumeMountPoint: "/srv/data",
    });
  });

  it("keep the deploy private key and the restore credentials secret, and nothing else", async () => {
    expect(run.secretOutputs).toEqual(["deployPrivateKey", "restoreEnv"]);
    expect(await pulumi.isSecret(run.exports.deployPrivateKey as pulumi.Output<string>)).toBe(true);
  });

  it("estimate the monthly cost with the date of the prices", () => {
    const cost = run.outputs.monthlyCostEstimate as { totalEur: number; pricesAsOf: string };
    expect(cost.totalEur).toBeCloseTo(3.79 + 0.5 + 40 * 0.044 + 3.79 * 0.2, 2);
    expect(cost.pricesAsOf).toMatch(/^\d{4}-\d{2}-\d{2}$/);
  });
});
