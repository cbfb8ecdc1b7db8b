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

  it("names the command that .ci/run runs", () => {
    expect(readFileSync(`${README.replace("README.md", "")}.ci/run`, "utf8")).toMatch(
      /^npm ci --no-audit --no-fund\nnpm test$/m,
    );
  });
});
