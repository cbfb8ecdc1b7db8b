import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { README, renderReadme, SECTIONS } from "../../scripts/readme";

describe("README.md", () => {
  const text = readFileSync(README, "utf8");

  it.each(Object.keys(SECTIONS))(
    "has the %s section as the program generates it (run `npm run docs`)",
    async (name) => {
      const section = (t: string) =>
        t.slice(t.indexOf(`<!-- generated:${name} -->`), t.indexOf(`<!-- /generated:${name} -->`));
      expect(section(text)).toBe(section(await renderReadme(text)));
    },
  );

  it("starts with the two commands for a fresh machine", () => {
    const firstBlock = text.slice(text.indexOf("```sh"), text.indexOf("```", text.indexOf("```sh") + 5));
    expect(firstBlock).toContain("npm ci && npm run plan -- prod");
    expect(firstBlock).toContain("npm ci && npm test");
  });

  it("names the commands that .ci/run runs: the test command and the VM audit's host part", () => {
    const ci = readFileSync(`${README.replace("README.md", "")}.ci/run`, "utf8");
    const npmCommands = [...ci.matchAll(/^(?:setsid -w )?npm (ci|test|run [\w:]+)\b/gm)].map((m) => m[1]);
    expect(npmCommands).toEqual(["ci", "run test:vm:host", "test"]);
    expect(readFileSync(README, "utf8")).toContain("npm ci && npm run test:vm:host");
  });
});
