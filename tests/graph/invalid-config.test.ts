/**
 * Invalid stack configs fail before any resource is registered, with a message that names the key,
 * the bad value and what is allowed. Each case runs the real program under mocks.
 */
import { generateKeyPairSync } from "node:crypto";
import * as sshpk from "sshpk";
import { describe, expect, it } from "vitest";
import { ConfigError } from "../../config/problems";
import { ProgramFailed, runProgram } from "../../scripts/mock-engine";
import { withChanges } from "../support/fixtures";

const rsa2048 = sshpk
  .parseKey(
    generateKeyPairSync("rsa", { modulusLength: 2048 }).publicKey.export({ type: "spki", format: "pem" }),
    "pem",
  )
  .toString("ssh");

interface Case {
  what: string;
  changes: Record<string, unknown>;
  /** Every fragment must appear in the message. */
  expect: (string | RegExp)[];
}

const CASES: Case[] = [
  {
    what: "an x86 server type as tier",
    changes: { tier: "cx22" },
    expect: ["webstack:tier", '"cx22"', "x86", "small (cax11)"],
  },
  { what: "a CAX type instead of a tier name", changes: { tier: "cax21" }, expect: ["webstack:tier", "medium"] },
  { what: "an unknown tier", changes: { tier: "huge" }, expect: ["webstack:tier", '"huge"', "allowed tiers"] },
  {
    what: "a location without ARM servers",
    changes: { location: "ash" },
    expect: ["webstack:location", '"ash"', "fsn1, nbg1, hel1"],
  },
  {
    what: "an unknown location",
    changes: { location: "mars1" },
    expect: ["webstack:location", "unknown Hetzner location"],
  },
  {
    what: "a malformed CIDR",
    changes: { sshAllowedCidrs: ["203.0.113.300/24"] },
    expect: ["webstack:sshAllowedCidrs[0]", "CIDR"],
  },
  {
    what: "a CIDR without prefix length",
    changes: { sshAllowedCidrs: ["203.0.113.7"] },
    expect: ["webstack:sshAllowedCidrs[0]", "/32"],
  },
  {
    what: "a CIDR with host bits set",
    changes: { sshAllowedCidrs: ["10.1.2.3/8"] },
    expect: ["webstack:sshAllowedCidrs[0]", "10.0.0.0/8"],
  },
  { what: "no SSH networks", changes: { sshAllowedCidrs: [] }, expect: ["webstack:sshAllowedCidrs", "at least one"] },
  {
    what: "a malformed SSH key",
    changes: { adminSshKeys: ["ssh-ed25519 not-base64!"] },
    expect: ["webstack:adminSshKeys[0]", "OpenSSH public key"],
  },
  {
    what: "a short RSA key",
    changes: { adminSshKeys: [rsa2048] },
    expect: ["webstack:adminSshKeys[0]", "2048-bit", "3072"],
  },
  { what: "no admin keys", changes: { adminSshKeys: [] }, expect: ["webstack:adminSshKeys", "at least one"] },
  {
    what: "admin keys missing",
    changes: { adminSshKeys: undefined },
    expect: ["webstack:adminSshKeys", "is required"],
  },
  {
    what: "a route on the origin name of direct exposure",
    changes: { routes: [{ hostname: "shop-prod-origin.example.com", service: "web" }] },
    expect: ["webstack:routes[0].hostname", '"shop-prod-origin.example.com"', "direct exposure"],
  },
  {
    what: "a route on the name SSH answers on through the tunnel",
    changes: { routes: [{ hostname: "shop-prod-ssh.example.com", service: "web" }] },
    expect: ["webstack:routes[0].hostname", '"shop-prod-ssh.example.com"', "sshThroughTunnel"],
  },
  {
    what: "no admin network and SSH not through the tunnel (port 22 would be closed to everyone)",
    changes: { sshAllowedCidrs: [] },
    expect: ["webstack:sshAllowedCidrs", "at least one network", "sshThroughTunnel: true"],
  },
  {
    what: "SSH through the tunnel with direct exposure, which has no tunnel",
    changes: { sshThroughTunnel: true, exposure: "direct" },
    expect: ["webstack:sshThroughTunnel", 'exposure "tunnel"'],
  },
  {
    what: "SSH through the tunnel as a string",
    changes: { sshThroughTunnel: "yes" },
    expect: ["webstack:sshThroughTunnel", '"yes"'],
  },
  {
    what: "a backup recipient with a mistyped character (age would refuse it every night)",
    changes: { backupRecipients: ["age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8q"] },
    expect: ["webstack:backupRecipients[0]", "checksum is wrong", "age-keygen -y"],
  },
  {
    what: "a post-quantum backup recipient the server's age cannot use",
    changes: { backupRecipients: [`age1pq1${"q".repeat(60)}`] },
    expect: ["webstack:backupRecipients[0]", "post-quantum"],
  },
  {
    what: "a hostname outside the domain",
    changes: { routes: [{ hostname: "app.example.org", service: "web" }] },
    expect: ["webstack:routes[0].hostname", '"app.example.org"', "example.com"],
  },
  {
    what: "a hostname two labels below the zone, which Universal SSL does not cover",
    changes: { routes: [{ hostname: "api.staging.example.com", service: "api" }] },
    expect: [
      "webstack:routes[0].hostname",
      '"api.staging.example.com"',
      "api-staging.example.com",
      "certifiedHostnames",
    ],
  },
  {
    what: "a deep hostname that the listed certificate does not cover",
    changes: {
      routes: [{ hostname: "a.b.staging.example.com", service: "api" }],
      certifiedHostnames: ["*.staging.example.com"],
    },
    expect: ["webstack:routes[0].hostname", '"a.b.staging.example.com"', "Universal SSL"],
  },
  {
    what: "a certificate name outside the zone",
    changes: { certifiedHostnames: ["*.staging.example.org"] },
    expect: ["webstack:certifiedHostnames[0]", '"*.staging.example.org"', "outside the zone example.com"],
  },
  {
    what: "a certificate name that is not a hostname",
    changes: { certifiedHostnames: ["staging.example.com/*"] },
    expect: ["webstack:certifiedHostnames[0]", "wildcard"],
  },
  { what: "no routes", changes: { routes: [] }, expect: ["webstack:routes", "at least one route"] },
  {
    what: "a route path with a wildcard",
    changes: { routes: [{ hostname: "app.example.com", path: "/api/*", service: "api" }] },
    expect: ["webstack:routes[0].path", "path prefix"],
  },
  { what: "a volume below 10 GB", changes: { volumeSizeGb: 5 }, expect: ["webstack:volumeSizeGb", "5", "at least 10"] },
  {
    what: "a fractional volume size",
    changes: { volumeSizeGb: 20.5 },
    expect: ["webstack:volumeSizeGb", "whole number"],
  },
  {
    what: "an unknown exposure mode",
    changes: { exposure: "public" },
    expect: ["webstack:exposure", "tunnel, direct"],
  },
  { what: "backups as a word", changes: { hetznerBackups: "yes" }, expect: ["webstack:hetznerBackups", "boolean"] },
  {
    what: "an invalid app name",
    changes: { appName: "My_Shop" },
    expect: ["webstack:appName", '"My_Shop"', "lowercase"],
  },
  { what: "a domain that is not one", changes: { domain: "localhost" }, expect: ["webstack:domain", "example.com"] },
  {
    what: "an image other than Debian 13",
    changes: { image: "ubuntu-24.04" },
    expect: ["webstack:image", "debian-13"],
  },
  { what: "a reserved label", changes: { labels: ["stack=other"] }, expect: ["webstack:labels[0]", "reserved"] },
  {
    what: "a label without a value separator",
    changes: { labels: ["team"] },
    expect: ["webstack:labels[0]", "key=value"],
  },
  {
    what: "a reboot time that is not HH:MM",
    changes: { autoRebootTime: "3am" },
    expect: ["webstack:autoRebootTime", "HH:MM"],
  },
  {
    what: "a registry no image comes from (a misspelled host)",
    changes: { registries: [{ server: "ghcr.com", username: "shop-bot", passwordSecret: "GHCR_TOKEN" }] },
    expect: ["webstack:registries[0].server", '"ghcr.com"', "not the registry of any image", "ghcr.io"],
  },
  {
    what: "a registry given as a URL",
    changes: { registries: [{ server: "https://ghcr.io", username: "shop-bot", passwordSecret: "GHCR_TOKEN" }] },
    expect: ["webstack:registries[0].server", "no https://"],
  },
  {
    what: "the same registry twice",
    changes: {
      registries: [
        { server: "ghcr.io", username: "shop-bot", passwordSecret: "GHCR_TOKEN" },
        { server: "ghcr.io", username: "other-bot", passwordSecret: "GHCR_TOKEN_2" },
      ],
    },
    expect: ["webstack:registries[1].server", "listed twice"],
  },
  {
    what: "a registry password given in place of its secret's name",
    changes: { registries: [{ server: "ghcr.io", username: "shop-bot", passwordSecret: "ghp_abc123" }] },
    expect: ["webstack:registries[0].passwordSecret", "secrets:<NAME>"],
  },
  {
    what: "a production stack without alerts",
    changes: { alerts: undefined },
    expect: ["webstack:alerts", "required for a production stack", "secrets:ALERTS_URL"],
  },
  {
    what: "an unknown alerts channel",
    changes: { alerts: { channel: "pagerduty", urlSecret: "ALERTS_URL" } },
    expect: ["webstack:alerts.channel", "ntfy", "slack", "healthchecks"],
  },
  {
    what: "an alerts URL given in place of its secret's name",
    changes: { alerts: { channel: "ntfy", urlSecret: "https://ntfy.sh/shop-alerts" } },
    expect: ["webstack:alerts.urlSecret", "secrets:<NAME>"],
  },
  {
    what: "an e-mail address for a channel that cannot mail",
    changes: { alerts: { channel: "slack", urlSecret: "ALERTS_URL", email: "ops@example.com" } },
    expect: ["webstack:alerts.email", "ntfy only", "slack"],
  },
  {
    what: "a disk threshold of 100 percent",
    changes: { alerts: { channel: "ntfy", urlSecret: "ALERTS_URL", diskPercent: 100 } },
    expect: ["webstack:alerts.diskPercent", "at most 99"],
  },
  {
    what: "a misspelled key",
    changes: { volumeSize: 40 },
    expect: ["webstack:volumeSize", "unknown key", "volumeSizeGb"],
  },
];

describe("an invalid config", () => {
  it.each(CASES)(
    "with $what is rejected naming the key, and registers no resource",
    async ({ changes, expect: fragments }) => {
      const failure = await runProgram("prod", withChanges("prod", changes)).then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(failure).toBeInstanceOf(ProgramFailed);
      const { cause, resources } = failure as ProgramFailed;
      expect(cause).toBeInstanceOf(ConfigError);
      for (const fragment of fragments) expect((cause as ConfigError).message).toMatch(fragment);
      expect(resources).toEqual([]);
    },
  );

  it("table covers at least 20 cases", () => {
    expect(CASES.length).toBeGreaterThanOrEqual(20);
  });
});
