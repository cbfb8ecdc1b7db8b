/**
 * `npm run plan` as a newcomer runs it: a child process on the real stack files.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { PROJECT_ROOT } from "../../scripts/mock-engine";
import { stackValues } from "../support/fixtures";

function plan(arg: string) {
  const r = spawnSync(process.execPath, ["--import", "tsx", "scripts/plan.ts", arg], {
    cwd: PROJECT_ROOT,
    encoding: "utf8",
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe("npm run plan", () => {
  it("plans prod offline and writes the user data and resources.json", () => {
    const r = plan("prod");
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    expect(r.stdout).toContain(
      "hcloud:index/server:Server  shop-prod-server  (protect; ignoreChanges=[userData,image,sshKeys]",
    );
    expect(r.stdout).toMatch(/total\s+€\s*6\.81/);
    const doc = JSON.parse(readFileSync(join(PROJECT_ROOT, "out/prod/resources.json"), "utf8"));
    expect(doc.resources.map((x: { type: string }) => x.type)).toContain("hcloud:index/volume:Volume");
    expect(readFileSync(join(PROJECT_ROOT, "out/prod/cloud-init.yaml"), "utf8")).toMatch(/^#cloud-config\n/);
  });

  it.each(readdirSync(join(PROJECT_ROOT, "examples")).map((f) => `examples/${f}`))(
    "plans %s by its path, as the README says, into out/ under its file name",
    (path) => {
      const r = plan(path);
      expect(r.stderr).toBe("");
      expect(r.status).toBe(0);
      expect(r.stdout).toContain(`Plan of stack "example" from ${path}`);
      const name = path.replace(/^examples\//, "").replace(/\.yaml$/, "");
      expect(readFileSync(join(PROJECT_ROOT, `out/${name}/cloud-init.yaml`), "utf8")).toMatch(/^#cloud-config\n/);
    },
  );

  it("masks every secret in resources.json and the printed outputs", () => {
    const r = plan("staging");
    expect(r.status).toBe(0);
    expect(r.stdout).toContain("deployPrivateKey: [secret]");
    const text = readFileSync(join(PROJECT_ROOT, "out/staging/resources.json"), "utf8");
    expect(`${r.stdout}${text}`).not.toMatch(/stand-in private key|stand-in-password|stand-in-secret/);
  });

  it("prints the validation message and exits non-zero on a bad config", () => {
    const dir = mkdtempSync(join(tmpdir(), "plan-"));
    const file = join(dir, "broken.yaml");
    const values = { ...stackValues("staging"), tier: "cx22", volumeSizeGb: 2 };
    const config = Object.fromEntries(Object.entries(values).map(([k, v]) => [`webstack:${k}`, v]));
    writeFileSync(file, stringify({ config }));
    const r = plan(file);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('Invalid config for stack "example" (2 problems)');
    expect(r.stderr).toContain("webstack:tier");
    expect(r.stderr).toContain("webstack:volumeSizeGb");
    expect(r.stdout).toBe("");
  });

  it("warns about an image known to be amd64-only, naming its key and what to use instead", () => {
    const dir = mkdtempSync(join(tmpdir(), "plan-"));
    const file = join(dir, "amd64.yaml");
    const values = { ...stackValues("staging"), postgres: { image: "postgis/postgis:17-3.5" } };
    const config = Object.fromEntries(Object.entries(values).map(([k, v]) => [`webstack:${k}`, v]));
    writeFileSync(file, stringify({ config }));
    const r = plan(file);
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('webstack:postgres.image ("postgis/postgis:17-3.5") is built for linux/amd64 only');
    expect(r.stdout).toContain("imresamu/postgis");
    expect(plan("staging").stdout).not.toContain("Warnings:");
  });

  it("refuses an unknown stack with the stacks it knows", () => {
    const r = plan("qa");
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain("stacks here: prod, staging");
  });
});
