/**
 * Renovate proposes image digest updates for what the stack files pin, and never for prod.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { DEFAULT_IMAGES } from "../../model/default-images";
import { PROJECT_ROOT } from "../../scripts/mock-engine";

interface RegexManager {
  managerFilePatterns: string[];
  matchStrings: string[];
}
const renovate = JSON.parse(readFileSync(join(PROJECT_ROOT, "renovate.json"), "utf8")) as {
  customManagers: RegexManager[];
  packageRules: { matchFileNames?: string[]; enabled?: boolean; pinDigests?: boolean }[];
};
const manager = renovate.customManagers[0];
const patterns = manager.managerFilePatterns.map((p) => new RegExp(p.slice(1, -1)));
const matchString = new RegExp(manager.matchStrings[0], "g");

function pinnedImages(text: string) {
  return [...text.matchAll(matchString)].map((m) => m.groups as Record<string, string | undefined>);
}

const DIGEST = `sha256:${"a".repeat(64)}`;

describe("the Renovate image manager", () => {
  it("reads the images of a digest-pinned service with and without a tag", () => {
    const found = pinnedImages(
      `    - name: api\n      image: ghcr.io/acme/api:1.4.2@${DIGEST}\n    - name: web\n      image: registry.example.com:5000/web@${DIGEST}\n`,
    );
    expect(found).toEqual([
      { depName: "ghcr.io/acme/api", currentValue: "1.4.2", currentDigest: DIGEST },
      { depName: "registry.example.com:5000/web", currentValue: undefined, currentDigest: DIGEST },
    ]);
  });

  it("leaves tag-only images to the user (they cannot be promoted either)", () => {
    expect(pinnedImages("      image: ghcr.io/acme/api:1.4.2\n")).toEqual([]);
  });

  it("covers the stack files and the examples", () => {
    const files = ["Pulumi.prod.yaml", "Pulumi.staging.yaml", "examples/nestjs-expo.yaml"];
    for (const f of files) expect(patterns.some((p) => p.test(f))).toBe(true);
    expect(patterns.some((p) => p.test("Pulumi.yaml"))).toBe(false);
  });

  it("finds every digest a stack file or example pins", () => {
    const files = [
      ...readdirSync(PROJECT_ROOT).filter((f) => /^Pulumi\.[a-z0-9-]+\.yaml$/.test(f)),
      ...readdirSync(join(PROJECT_ROOT, "examples"), { withFileTypes: true })
        .filter((e) => e.isFile() && e.name.endsWith(".yaml"))
        .map((e) => `examples/${e.name}`),
    ];
    for (const f of files) {
      const text = readFileSync(join(PROJECT_ROOT, f), "utf8");
      const digests = text.match(/@sha256:[a-f0-9]{64}/g) ?? [];
      expect(pinnedImages(text)).toHaveLength(digests.length);
    }
  });

  it("is disabled for the prod stack file, whose images come from npm run promote", () => {
    const rule = renovate.packageRules.find((r) => r.matchFileNames?.includes("Pulumi.prod.yaml"));
    expect(rule?.enabled).toBe(false);
  });
});

describe("the Renovate manager of the default images", () => {
  const defaults = renovate.customManagers[1];
  const find = new RegExp(defaults.matchStrings[0], "g");
  const text = readFileSync(join(PROJECT_ROOT, "model", "default-images.ts"), "utf8");

  it("reads model/default-images.ts and nothing else", () => {
    const patterns = defaults.managerFilePatterns.map((p) => new RegExp(p.slice(1, -1)));
    expect(patterns.some((p) => p.test("model/default-images.ts"))).toBe(true);
    expect(patterns.some((p) => p.test("config/app.ts"))).toBe(false);
  });

  it("finds every default image, with its tag", () => {
    const found = [...text.matchAll(find)].map((m) => `${m.groups?.depName}:${m.groups?.currentValue}`);
    expect(found.sort()).toEqual(
      Object.values(DEFAULT_IMAGES)
        .map((i) => i.split("@")[0])
        .sort(),
    );
  });

  it("finds a default already pinned by digest, and pins the others (pinDigests)", () => {
    const pinned = `  redis: "redis:7.4@${DIGEST}",`;
    expect([...`\n${pinned}`.matchAll(find)][0].groups?.currentDigest).toBe(DIGEST);
    const rule = renovate.packageRules.find((r) => r.matchFileNames?.includes("model/default-images.ts"));
    expect(rule?.pinDigests).toBe(true);
  });
});
