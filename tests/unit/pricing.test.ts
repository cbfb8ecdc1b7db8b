import { describe, expect, it } from "vitest";
import { estimateMonthlyCost, formatCost, HETZNER_PRICES_EUR, PRICES_AS_OF } from "../../model/pricing";
import { TIER_NAMES, TIERS } from "../../model/tiers";

describe("the monthly cost estimate", () => {
  it("adds the server, the IPv4 address and the volume", () => {
    const cost = estimateMonthlyCost({ tier: TIERS.small, volumeSizeGb: 20, hetznerBackups: false });
    expect(cost.totalEur).toBeCloseTo(3.79 + 0.5 + 20 * 0.044, 2);
  });

  it("adds 20% of the server price for Hetzner backups", () => {
    const without = estimateMonthlyCost({ tier: TIERS.large, volumeSizeGb: 20, hetznerBackups: false });
    const withBackups = estimateMonthlyCost({ tier: TIERS.large, volumeSizeGb: 20, hetznerBackups: true });
    expect(withBackups.totalEur - without.totalEur).toBeCloseTo(12.49 * 0.2, 2);
  });

  it("has a list price for the server type of every tier", () => {
    for (const t of TIER_NAMES) expect(HETZNER_PRICES_EUR.server[TIERS[t].serverType]).toBeGreaterThan(0);
  });

  it("states the date of its prices", () => {
    expect(formatCost(estimateMonthlyCost({ tier: TIERS.small, volumeSizeGb: 10, hetznerBackups: false }))).toContain(
      PRICES_AS_OF,
    );
  });
});

describe("the tiers", () => {
  it.each(TIER_NAMES)("%s splits exactly its RAM between the OS, Postgres, Redis, the proxies and the apps", (name) => {
    const { memory, memoryMb } = TIERS[name];
    expect(memory.osMb + memory.postgresMb + memory.redisMb + memory.proxyMb + memory.appsMb).toBe(memoryMb);
  });

  it("grow in memory from small to xlarge", () => {
    const sizes = TIER_NAMES.map((t) => TIERS[t].memoryMb);
    expect(sizes).toEqual([...sizes].sort((a, b) => a - b));
  });
});
