/**
 * The same config gives the same resources, inputs and files, so a second `pulumi up` with no
 * change shows no diff.
 */
import { describe, expect, it } from "vitest";
import { readStackFile, runProgram } from "../../scripts/mock-engine";
import { artifactsOf, resourcesDocument } from "../../scripts/plan";

describe("evaluating the prod stack twice", () => {
  it("gives byte-identical resources.json and artifacts", async () => {
    const first = await runProgram("prod", readStackFile("prod"));
    const second = await runProgram("prod", readStackFile("prod"));
    expect(JSON.stringify(resourcesDocument(second))).toBe(JSON.stringify(resourcesDocument(first)));
    expect(artifactsOf(second)).toEqual(artifactsOf(first));
    expect(Object.keys(artifactsOf(first))).toContain("cloud-init.yaml");
  });
});
