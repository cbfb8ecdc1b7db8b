/**
 * A bigger `volumeSizeGb` on a running stack, as `pulumi up` applies it (tests/lifecycle/engine.ts's
 * order): Hetzner grows the volume in place, then the host configuration grows its file system;
 * nothing else is touched. (The VM suite grows a real volume under a running kernel.)
 */
import { describe, expect, it } from "vitest";
import { runProgram } from "../../scripts/mock-engine";
import { planChange } from "../lifecycle/engine";
import { withChanges } from "../support/fixtures";

const VOLUME = "hcloud:index/volume:Volume";

describe("growing the data volume", () => {
  it("updates the volume in place, then runs the file system's grow, and nothing else", async () => {
    const before = await runProgram("prod", withChanges("prod", { volumeSizeGb: 20 }));
    const after = await runProgram("prod", withChanges("prod", { volumeSizeGb: 40 }));
    const steps = planChange(before.resources, after.resources);
    expect(steps.map((s) => `${s.op} ${s.resource.name}`)).toEqual([
      "update shop-prod-data",
      "replace shop-prod-host-grow-data-volume",
      "delete shop-prod-host-grow-data-volume",
    ]);
    expect(steps[0].changed).toEqual(["size"]);
    const grow = steps[1].resource;
    const volumeId = after.resources.find((r) => r.type === VOLUME)?.id;
    expect(grow.rawInputs.create).toBe(
      `sudo /usr/local/sbin/data-volume-grow /dev/disk/by-id/scsi-0HC_Volume_${volumeId}`,
    );
    // Pulumi may run steps in any order their dependencies allow: the grow waits for the volume.
    expect(grow.options.dependsOn).toContain(`${VOLUME}::shop-prod-data`);
  });
});
