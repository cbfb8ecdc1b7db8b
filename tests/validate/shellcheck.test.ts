/**
 * Every shell script the stack ships (embedded in the user data) and every script of the project
 * passes shellcheck.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { renderCloudInit } from "../../cloud-init/render";
import { PROJECT_ROOT } from "../../scripts/mock-engine";
import { parseCloudConfig, SAMPLE_INPUT } from "../support/cloud-init";
import { shellcheck } from "../support/tools";

const embedded = parseCloudConfig(renderCloudInit({ ...SAMPLE_INPUT, exposure: "direct" }))
  .write_files.filter((f) => f.content.startsWith("#!") || f.path.startsWith("/etc/profile.d/"))
  .map((f) => [f.path, f.content] as const);

const projectScripts = [
  ...readdirSync(join(PROJECT_ROOT, "scripts"))
    .filter((f) => f.endsWith(".sh"))
    .map((f) => `scripts/${f}`),
  ".ci/run",
].map((p) => [p, readFileSync(join(PROJECT_ROOT, p), "utf8")] as const);

describe("shellcheck", () => {
  it("finds the scripts the user data embeds", () => {
    expect(embedded.map(([path]) => path)).toEqual(
      expect.arrayContaining([
        "/usr/local/sbin/data-volume-mount",
        "/usr/local/sbin/data-volume-enable",
        "/etc/profile.d/webstack-hardening.sh",
      ]),
    );
  });

  it.each(embedded)("passes the embedded script %s", (path, script) => {
    const result = shellcheck(path, script);
    expect(result.output).toBe("");
    expect(result.status).toBe(0);
  });

  it.each(projectScripts)("passes the project script %s", (path, script) => {
    const result = shellcheck(path, script);
    expect(result.output).toBe("");
    expect(result.status).toBe(0);
  });

  it("flags a broken script, so a pass means something", () => {
    expect(shellcheck("broken.sh", "#!/bin/sh\nrm -rf $1/*\n").status).not.toBe(0);
  });
});
