import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { PROJECT_ROOT } from "../../scripts/mock-engine";
import { planPromotion, promote } from "../../scripts/promote";

const D1 = `sha256:${"1".repeat(64)}`;
const D2 = `sha256:${"2".repeat(64)}`;
const D3 = `sha256:${"3".repeat(64)}`;

const stackFile = (images: Record<string, string>, extra = "") => `# the ${extra || "stack"} file
config:
  webstack:appName: shop
  webstack:tier: small # prod stays small
  webstack:services:
${Object.entries(images)
  .map(([name, image]) => `    - name: ${name}\n      image: ${image}\n      port: 3000`)
  .join("\n")}
`;

function workspace(staging: string, prod: string): string {
  const dir = mkdtempSync(join(tmpdir(), "promote-"));
  writeFileSync(join(dir, "Pulumi.staging.yaml"), staging);
  writeFileSync(join(dir, "Pulumi.prod.yaml"), prod);
  return dir;
}

const servicesOf = (text: string) =>
  (parse(text).config["webstack:services"] as { name: string; image: string }[]).map((s) => [s.name, s.image]);

describe("npm run promote -- staging prod", () => {
  it("copies every digest from staging to prod by service name", () => {
    const dir = workspace(
      stackFile({ api: `ghcr.io/acme/api:1.5.0@${D2}`, web: `ghcr.io/acme/web@${D3}` }),
      stackFile({ api: `ghcr.io/acme/api:1.4.0@${D1}`, web: `ghcr.io/acme/web@${D1}` }),
    );
    const lines: string[] = [];
    expect(promote(["staging", "prod"], dir, (l) => lines.push(l))).toBe(0);
    expect(servicesOf(readFileSync(join(dir, "Pulumi.prod.yaml"), "utf8"))).toEqual([
      ["api", `ghcr.io/acme/api:1.5.0@${D2}`],
      ["web", `ghcr.io/acme/web@${D3}`],
    ]);
    expect(lines[0]).toBe(`api: ghcr.io/acme/api:1.4.0@${D1} -> ghcr.io/acme/api:1.5.0@${D2}`);
  });

  it("keeps the prod file's comments and other keys", () => {
    const plan = planPromotion(
      "Pulumi.staging.yaml",
      stackFile({ api: `ghcr.io/acme/api@${D2}` }),
      "Pulumi.prod.yaml",
      stackFile({ api: `ghcr.io/acme/api@${D1}` }, "prod"),
    );
    expect(plan.text).toContain("# the prod file");
    expect(plan.text).toContain("webstack:tier: small # prod stays small");
    expect(plan.text).toBe(stackFile({ api: `ghcr.io/acme/api@${D2}` }, "prod"));
  });

  it("refuses to promote an image that staging runs by tag only", () => {
    const dir = workspace(stackFile({ api: "ghcr.io/acme/api:1.5.0" }), stackFile({ api: `ghcr.io/acme/api@${D1}` }));
    const lines: string[] = [];
    expect(promote(["staging", "prod"], dir, (l) => lines.push(l))).toBe(1);
    expect(lines.join("\n")).toContain("not pinned: api (ghcr.io/acme/api:1.5.0)");
    expect(readFileSync(join(dir, "Pulumi.prod.yaml"), "utf8")).toContain(D1);
  });

  it("leaves services that only one stack runs alone and says so", () => {
    const plan = planPromotion(
      "s",
      stackFile({ api: `a@${D2}`, canary: `c@${D2}` }),
      "p",
      stackFile({ api: `a@${D1}`, legacy: "l:1.0" }),
    );
    expect(plan.changes.map((c) => c.service)).toEqual(["api"]);
    expect(plan.onlyInSource).toEqual(["canary"]);
    expect(plan.onlyInTarget).toEqual(["legacy"]);
    expect(servicesOf(plan.text)).toEqual([
      ["api", `a@${D2}`],
      ["legacy", "l:1.0"],
    ]);
  });

  it("with --check changes nothing and fails while prod differs", () => {
    const prod = stackFile({ api: `ghcr.io/acme/api@${D1}` });
    const dir = workspace(stackFile({ api: `ghcr.io/acme/api@${D2}` }), prod);
    expect(promote(["staging", "prod", "--check"], dir, () => {})).toBe(1);
    expect(readFileSync(join(dir, "Pulumi.prod.yaml"), "utf8")).toBe(prod);
    expect(promote(["staging", "prod"], dir, () => {})).toBe(0);
    expect(promote(["staging", "prod", "--check"], dir, () => {})).toBe(0);
  });

  it("passes --check on the stack files as shipped (deploy.yml runs it before prod)", () => {
    const lines: string[] = [];
    expect(
      promote(["staging", "prod", "--check"], PROJECT_ROOT, (l) => lines.push(l)),
      lines.join("\n"),
    ).toBe(0);
  });
});
