/**
 * The user data of every stack, as the program sends it, passes Debian 13's `cloud-init schema`,
 * which (unlike bookworm's 22.4) rejects unknown and misspelled keys.
 */
import { describe, expect, it } from "vitest";
import { renderCloudInit } from "../../cloud-init/render";
import { readStackFile, runProgram } from "../../scripts/mock-engine";
import { SAMPLE_INPUT } from "../support/cloud-init";
import { withChanges } from "../support/fixtures";
import { only, T } from "../support/graph";
import { cloudInitSchema, cloudInitVersion } from "../support/tools";

describe("cloud-init schema of Debian 13", () => {
  it("is the validator of cloud-init 25 or later", () => {
    const major = Number(cloudInitVersion().match(/(\d+)\.\d+/)?.[1]);
    expect(major).toBeGreaterThanOrEqual(25);
  });

  it.each([
    ["prod", () => readStackFile("prod")],
    ["staging", () => readStackFile("staging")],
    ["staging in direct mode", () => withChanges("staging", { exposure: "direct" })],
  ])("accepts the user data of %s", async (stack, config) => {
    const run = await runProgram(stack.split(" ")[0], config());
    const userData = only(run.resources, T.server).rawInputs.userData as string;
    const result = cloudInitSchema(userData);
    expect(result.output).toContain("Valid schema");
    expect(result.status).toBe(0);
  });

  it("rejects a misspelled key, so a pass means something", () => {
    const broken = renderCloudInit(SAMPLE_INPUT).replace("package_upgrade:", "package_upgrades:");
    const result = cloudInitSchema(broken);
    expect(result.status).not.toBe(0);
    expect(result.output).toContain("package_upgrades");
  });
});
