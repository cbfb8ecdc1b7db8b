import { describe, expect, it } from "vitest";
import { cidrProblem, sshPublicKeyProblem } from "../../config/checks";
import { ConfigError } from "../../config/problems";
import { resolveConfig } from "../../config/resolve";
import { TIERS } from "../../model/tiers";
import { stackValues } from "../support/fixtures";

const prod = () => stackValues("prod");

describe("stack config", () => {
  it("resolves the prod stack file to the small tier on a cax11", () => {
    const config = resolveConfig("prod", prod());
    expect(config.tier.name).toBe("small");
    expect(config.tier.serverType).toBe("cax11");
    expect(config.prefix).toBe("shop-prod");
  });

  it("fills unset keys with their defaults", () => {
    const { tier, location, image, volumeSizeGb, hetznerBackups, exposure, labels, autoRebootTime, ...required } =
      prod();
    void [tier, location, image, volumeSizeGb, hetznerBackups, exposure, labels, autoRebootTime];
    const config = resolveConfig("prod", required);
    expect(config).toMatchObject({
      tier: TIERS.small,
      location: "fsn1",
      image: "debian-13",
      volumeSizeGb: 20,
      hetznerBackups: false,
      exposure: "tunnel",
      autoRebootTime: "03:30",
    });
  });

  it("derives the stack's hostnames from its routes, each once", () => {
    const config = resolveConfig("prod", {
      ...prod(),
      routes: [
        { hostname: "app.example.com", service: "web" },
        { hostname: "app.example.com", path: "/api", service: "api" },
        { hostname: "api.example.com", service: "api" },
      ],
    });
    expect(config.hostnames).toEqual(["app.example.com", "api.example.com"]);
  });

  it("adds app, stack and managed-by labels to the user's labels", () => {
    expect(resolveConfig("prod", prod()).labels).toEqual({
      team: "shop",
      environment: "production",
      app: "shop",
      stack: "prod",
      "managed-by": "pulumi",
    });
  });

  it("reports every problem of one config in a single error", () => {
    const attempt = () =>
      resolveConfig("prod", { ...prod(), tier: "huge", location: "ash", volumeSizeGb: 1, exposure: "open" });
    expect(attempt).toThrow(ConfigError);
    try {
      attempt();
    } catch (err) {
      const { problems, message } = err as ConfigError;
      expect(problems).toHaveLength(4);
      for (const key of ["webstack:tier", "webstack:location", "webstack:volumeSizeGb", "webstack:exposure"]) {
        expect(message).toContain(key);
      }
    }
  });

  it("suggests the known key for a misspelled one", () => {
    expect(() => resolveConfig("prod", { ...prod(), teir: "small" })).toThrow(
      /webstack:teir: unknown key \(did you mean webstack:tier\?\)/,
    );
  });
});

describe("SSH public keys", () => {
  it("accepts an ed25519 key line", () => {
    expect(sshPublicKeyProblem(String((prod().adminSshKeys as string[])[0]))).toBeUndefined();
  });

  it("refuses a private key pasted by mistake", () => {
    // The armour lines of a private key, built in pieces so that no scanner takes this file for one.
    const armour = (edge: string) => `-----${edge} OPENSSH ${["PRIVATE", "KEY"].join(" ")}-----`;
    const pasted = [armour("BEGIN"), "b3BlbnNzaC1rZXktdjEAAAAA", armour("END")].join("\n");
    expect(sshPublicKeyProblem(pasted)).toMatch(/private key/);
  });
});

describe("CIDRs", () => {
  it("accepts IPv4 and IPv6 networks", () => {
    expect(cidrProblem("203.0.113.0/24")).toBeUndefined();
    expect(cidrProblem("2001:db8::/32")).toBeUndefined();
  });

  it("names the network when host bits are set", () => {
    expect(cidrProblem("203.0.113.7/24")).toBe("has host bits set; the network is 203.0.113.0/24");
  });
});
