/**
 * How long the offline plan takes: `npm run bench`.
 *
 * Runs `scripts/plan.ts` for each stack in fresh processes and prints the program time (the
 * evaluation of index.ts under mocks, as the plan reports it) and the wall time of the whole
 * process (Node start, TypeScript loading, writing out/). Target: well under 2 s of program time
 * for prod.
 */
import { spawnSync } from "node:child_process";
import { join } from "node:path";

const ROOT = join(__dirname, "..");
const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const STACKS = ["prod", "staging"];

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

console.log(`Offline plan, ${RUNS} runs per stack (median, min, max in ms)`);
console.log("stack     program time            process wall time");
for (const stack of STACKS) {
  const program: number[] = [];
  const wall: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const started = process.hrtime.bigint();
    const r = spawnSync(process.execPath, ["--import", "tsx", "scripts/plan.ts", stack], {
      cwd: ROOT,
      encoding: "utf8",
    });
    wall.push(Number(process.hrtime.bigint() - started) / 1e6);
    if (r.status !== 0) {
      console.error(r.stderr);
      process.exit(1);
    }
    const ms = r.stdout.match(/Program time: (\d+) ms/);
    if (!ms) throw new Error("plan printed no program time");
    program.push(Number(ms[1]));
  }
  const fmt = (v: number[]) =>
    `${median(v).toFixed(0).padStart(5)} ${Math.min(...v)
      .toFixed(0)
      .padStart(5)} ${Math.max(...v)
      .toFixed(0)
      .padStart(5)}`;
  console.log(`${stack.padEnd(9)} ${fmt(program)}       ${fmt(wall)}`);
}
