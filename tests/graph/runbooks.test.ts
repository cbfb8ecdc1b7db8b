/**
 * The runbooks name only commands, scripts, units and resources the project really has.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import {
  PROJECT_ROOT,
  type ProgramRun,
  type RecordedResource,
  readStackFile,
  runProgram,
} from "../../scripts/mock-engine";
import { withChanges } from "../support/fixtures";

const docs = ["README.md", ...readdirSync(join(PROJECT_ROOT, "docs")).map((f) => `docs/${f}`)].map(
  (f) => [f, readFileSync(join(PROJECT_ROOT, f), "utf8")] as const,
);
const scripts = Object.keys(
  (JSON.parse(readFileSync(join(PROJECT_ROOT, "package.json"), "utf8")) as { scripts: Record<string, string> }).scripts,
);
const backupFiles = readdirSync(join(PROJECT_ROOT, "backup"));

let run: ProgramRun;
/** Resources of prod as shipped, and of prod with the options the runbooks explain switched on. */
let resources: RecordedResource[];
beforeAll(async () => {
  run = await runProgram("prod", readStackFile("prod"));
  const withSshThroughTunnel = await runProgram("prod", withChanges("prod", { sshThroughTunnel: true }));
  resources = [...run.resources, ...withSshThroughTunnel.resources];
});

describe.each(docs)("%s", (_file, text) => {
  it("runs only npm scripts that package.json has", () => {
    for (const [, name] of text.matchAll(/npm run (?:-s )?([a-z:]+)/g)) expect(scripts).toContain(name);
  });

  it("names only backup scripts the project ships", () => {
    for (const [, name] of text.matchAll(/webstack-backup\/([a-z-]+\.sh)/g)) expect(backupFiles).toContain(name);
  });

  it("names only systemd units the backups component installs", () => {
    for (const [, unit] of text.matchAll(/\b(webstack-[a-z-]+)\.(service|timer)\b/g)) {
      expect(backupFiles.some((f) => f.startsWith(unit) || f === "render.ts")).toBe(true);
    }
  });

  it("replaces or unprotects only resources the prod plan has (with sshThroughTunnel for its token)", () => {
    for (const [, type, name] of text.matchAll(/urn:\[\^ \]\*([A-Za-z:/]*?)::([a-z0-9.-]+)/g)) {
      const match = resources.find(
        (r) => r.name === name && (type === "" || r.type.endsWith(type.replace(/^.*?([A-Z]\w+)$/, "$1"))),
      );
      expect(match, `${type}::${name}`).toBeDefined();
    }
  });
});
