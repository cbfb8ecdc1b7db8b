import { defineConfig } from "vitest/config";

// The VM suite (`npm run test:vm`): one Debian VM under TCG, minutes per step, tests in order.
export default defineConfig({
  test: {
    root: `${import.meta.dirname}/../..`,
    include: ["tests/vm/**/*.vmtest.ts"],
    pool: "forks",
    isolate: true,
    fileParallelism: false,
    sequence: { concurrent: false },
    testTimeout: 30 * 60_000,
    hookTimeout: 120 * 60_000,
    reporters: ["verbose"],
  },
});
