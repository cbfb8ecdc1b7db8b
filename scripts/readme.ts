/**
 * Generated sections of README.md: `npm run docs` rewrites them, and a test fails when the
 * committed README differs from what the program would write.
 *
 * A section sits between `<!-- generated:NAME -->` and `<!-- /generated:NAME -->`.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { rawConfigFromPulumi, resolveConfig } from "../config/resolve";
import { estimateMonthlyCost, PRICES_AS_OF } from "../model/pricing";
import { TIER_NAMES, TIERS } from "../model/tiers";
import { PROJECT_ROOT, readStackFile, runProgram } from "./mock-engine";
import { diagramOf } from "./plan";

export const README = join(PROJECT_ROOT, "README.md");

const gb = (mb: number) => `${mb / 1024} GB`;

/** The tiers and their memory budgets. */
export function tiersTable(): string {
  const rows = TIER_NAMES.map((name) => {
    const t = TIERS[name];
    const m = t.memory;
    return `| ${name} | ${t.serverType} | ${t.vcpus} | ${gb(t.memoryMb)} | ${gb(t.swapMb)} | ${m.osMb} | ${m.postgresMb} | ${m.redisMb} | ${m.proxyMb} | ${m.appsMb} |`;
  });
  return [
    "| tier | server | vCPU | RAM | swap | OS MiB | Postgres MiB | Redis MiB | proxies MiB | apps MiB |",
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ...rows,
  ].join("\n");
}

/** The prod stack's monthly estimate on every tier, from the same function the plan prints. */
export function costTable(): string {
  const prod = resolveConfig("prod", rawConfigFromPulumi(readStackFile("prod").values));
  const rows = TIER_NAMES.map((name) => {
    const cost = estimateMonthlyCost({ ...prod, tier: TIERS[name] });
    const server = cost.lines[0].eur;
    const rest = cost.totalEur - server;
    return `| ${name} (${TIERS[name].serverType}) | €${server.toFixed(2)} | €${rest.toFixed(2)} | **€${cost.totalEur.toFixed(2)}** |`;
  });
  return [
    `Prod as configured (${prod.volumeSizeGb} GB volume, Hetzner backups ${prod.hetznerBackups ? "on" : "off"}), per tier, EUR per month excluding VAT, Hetzner list prices of ${PRICES_AS_OF}:`,
    "",
    "| tier | server | IPs, volume, backups | total |",
    "| --- | --- | --- | --- |",
    ...rows,
  ].join("\n");
}

/** The prod stack's diagram, as `npm run plan -- prod` writes it to out/prod/diagram.mmd. */
export async function prodDiagram(): Promise<string> {
  const config = readStackFile("prod");
  const run = await runProgram("prod", config);
  return ["```mermaid", diagramOf(run, config).trimEnd(), "```"].join("\n");
}

export const SECTIONS: Record<string, () => string | Promise<string>> = {
  tiers: tiersTable,
  cost: costTable,
  diagram: prodDiagram,
};

/** README text with every generated section replaced by its current content. */
export async function renderReadme(text: string): Promise<string> {
  let out = text;
  for (const [name, render] of Object.entries(SECTIONS)) {
    const start = `<!-- generated:${name} -->`;
    const end = `<!-- /generated:${name} -->`;
    const from = out.indexOf(start);
    const to = out.indexOf(end);
    if (from < 0 || to < from) throw new Error(`README.md has no ${start} … ${end} section`);
    out = `${out.slice(0, from + start.length)}\n${await render()}\n${out.slice(to)}`;
  }
  return out;
}

if (require.main === module) {
  const before = readFileSync(README, "utf8");
  renderReadme(before).then((after) => {
    writeFileSync(README, after);
    console.log(before === after ? "README.md is up to date" : "README.md: generated sections rewritten");
  });
}
