/**
 * Monthly cost estimate of what a stack creates, from Hetzner's list prices.
 *
 * Prices are the monthly caps in EUR excluding VAT for Germany and Finland, as listed on
 * hetzner.com/cloud on the date below. Hetzner changes them now and then (an adjustment took effect
 * on 2026-04-01): check the page before you budget on these figures, and update them here with
 * their date.
 */
import type { Tier } from "./tiers";

export const PRICES_AS_OF = "2025-10-01";

export const HETZNER_PRICES_EUR = {
  /** Server monthly caps by type (ARM64, shared vCPU). */
  server: { cax11: 3.79, cax21: 6.49, cax31: 12.49, cax41: 24.49 } as Readonly<Record<string, number>>,
  /** A primary IPv4 address; IPv6 is free. */
  primaryIpv4: 0.5,
  primaryIpv6: 0,
  /** Volumes, per GB and month. */
  volumePerGb: 0.044,
  /** Hetzner's own daily backups cost this share of the server price. */
  backupsShare: 0.2,
} as const;

export interface CostLine {
  readonly item: string;
  readonly eur: number;
}

export interface CostEstimate {
  readonly lines: readonly CostLine[];
  readonly totalEur: number;
  readonly currency: "EUR";
  readonly pricesAsOf: string;
}

export interface CostInput {
  readonly tier: Tier;
  readonly volumeSizeGb: number;
  readonly hetznerBackups: boolean;
}

const cents = (n: number) => Math.round(n * 100) / 100;

/** The monthly cost of the Hetzner resources one stack creates. */
export function estimateMonthlyCost(input: CostInput): CostEstimate {
  const server = HETZNER_PRICES_EUR.server[input.tier.serverType];
  if (server === undefined) throw new Error(`no list price for server type ${input.tier.serverType}`);
  const lines: CostLine[] = [
    { item: `server ${input.tier.serverType} (${input.tier.name})`, eur: server },
    { item: "primary IPv4", eur: HETZNER_PRICES_EUR.primaryIpv4 },
    { item: "primary IPv6", eur: HETZNER_PRICES_EUR.primaryIpv6 },
    { item: `volume ${input.volumeSizeGb} GB`, eur: cents(input.volumeSizeGb * HETZNER_PRICES_EUR.volumePerGb) },
  ];
  if (input.hetznerBackups) {
    lines.push({ item: "Hetzner server backups (20%)", eur: cents(server * HETZNER_PRICES_EUR.backupsShare) });
  }
  return {
    lines,
    totalEur: cents(lines.reduce((sum, l) => sum + l.eur, 0)),
    currency: "EUR",
    pricesAsOf: PRICES_AS_OF,
  };
}

export function formatCost(estimate: CostEstimate): string {
  const width = Math.max(...estimate.lines.map((l) => l.item.length), 5);
  const rows = estimate.lines.map((l) => `  ${l.item.padEnd(width)}  €${l.eur.toFixed(2).padStart(6)}`);
  return [
    `Estimated monthly cost (Hetzner list prices of ${estimate.pricesAsOf}, EUR excl. VAT):`,
    ...rows,
    `  ${"total".padEnd(width)}  €${estimate.totalEur.toFixed(2).padStart(6)}`,
  ].join("\n");
}
