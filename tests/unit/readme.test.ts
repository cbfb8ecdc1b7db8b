import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { PROJECT_ROOT } from "../../scripts/mock-engine";
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

  it("describes every folder of the project and of tests/ in its layout section", () => {
    const from = text.indexOf("## Layout and tests");
    const block = text.slice(text.indexOf("```", from), text.indexOf("```", text.indexOf("```", from) + 3));
    const described = block.split("\n").map((line) => line.split(/\s+/)[0].replace(/\/$/, ""));
    const folders = (dir: string) =>
      readdirSync(join(PROJECT_ROOT, dir), { withFileTypes: true })
        .filter((e) => e.isDirectory() && !e.name.startsWith(".") && !["node_modules", "out"].includes(e.name))
        .map((e) => (dir ? `${dir}/${e.name}` : e.name));
    const expected = [...folders(""), ...folders("tests")].filter((f) => f !== "tests");
    expect(expected.filter((f) => !described.includes(f))).toEqual([]);
  });
});
