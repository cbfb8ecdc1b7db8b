/**
 * Prints the memory budget of every tier: the container limits the compose renderer sets (with
 * the prod stack's services) and the Postgres and Redis settings derived from them.
 *
 *   npx tsx bench/memory-budgets.ts [stack]     (default: prod)
 */

import { planMemory, postgresTuning, redisTuning } from "../config/memory";
import { resolveConfig } from "../config/resolve";
import { TIER_NAMES, TIERS } from "../model/tiers";
import { readStackFile } from "../scripts/mock-engine";

const stack = process.argv[2] ?? "prod";
const raw = Object.fromEntries(
  Object.entries(readStackFile(stack).values)
    .filter(([k]) => k.startsWith("webstack:"))
    .map(([k, v]) => {
      try {
        return [k.slice(9), JSON.parse(v)];
      } catch {
        return [k.slice(9), v];
      }
    }),
);
const config = resolveConfig(stack, raw);
const services = config.services.map((s) => `${s.name}${s.replicas > 1 ? `×${s.replicas}` : ""}`).join("/");
console.log(
  `Memory budgets in MiB (apps: ${stack}'s ${services}, shares ${config.services.map((s) => s.memoryShare).join("/")})\n`,
);
console.log(
  "| tier | RAM | OS | postgres | redis | caddy | cloudflared | apps | per service | shared_buffers | effective_cache_size | work_mem | max_connections | redis maxmemory (AOF / cache) |",
);
console.log("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | --- |");
for (const name of TIER_NAMES) {
  const tier = TIERS[name];
  const m = tier.memory;
  const limits = planMemory(tier, config.services, true).limitsMb;
  const pg = postgresTuning(m.postgresMb);
  const perService = config.services.map((s) => limits[s.name]).join("/");
  console.log(
    `| ${name} (${tier.serverType}) | ${tier.memoryMb} | ${m.osMb} | ${m.postgresMb} | ${m.redisMb} | ${limits.caddy} | ${limits.cloudflared} | ${m.appsMb} | ${perService} | ${pg.sharedBuffersMb} MB | ${pg.effectiveCacheSizeMb} MB | ${pg.workMemMb} MB | ${pg.maxConnections} | ${redisTuning(m.redisMb, true).maxmemoryMb} / ${redisTuning(m.redisMb, false).maxmemoryMb} mb |`,
  );
}
