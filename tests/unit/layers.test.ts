/**
 * The layers' one-way imports (README, "Layout and tests"): components → renderers (cloud-init/,
 * compose/, backup/) → config/ and model/. Read from the source files' import lines.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { PROJECT_ROOT } from "../../scripts/mock-engine";

function imports(dir: string): { file: string; from: string }[] {
  return readdirSync(join(PROJECT_ROOT, dir))
    .filter((f) => f.endsWith(".ts"))
    .flatMap((f) =>
      [...readFileSync(join(PROJECT_ROOT, dir, f), "utf8").matchAll(/^import[^"]*"([^"]+)";$/gm)].map((m) => ({
        file: `${dir}/${f}`,
        from: m[1],
      })),
    );
}

const outward = (allowed: RegExp) => (i: { from: string }) => !i.from.startsWith(".") || allowed.test(i.from);

describe("the layers", () => {
  it("keeps Pulumi and components/ out of the renderers", () => {
    const renderers = ["cloud-init", "compose", "backup", "alerts"].flatMap(imports);
    const bad = renderers.filter((i) => i.from.startsWith("@pulumi/") || i.from.includes("components/"));
    expect(bad).toEqual([]);
  });

  it("lets the renderers import only config/ and model/ from the project", () => {
    const renderers = ["cloud-init", "compose", "backup"].flatMap(imports);
    const bad = renderers.filter((i) => !outward(/^(\.\/|\.\.\/(config|model)\/)/)(i));
    expect(bad).toEqual([]);
  });

  it("lets the alerts' renderer import config/, model/ and backup/'s file writers alone", () => {
    const bad = imports("alerts").filter((i) => !outward(/^(\.\/|\.\.\/(config|model)\/|\.\.\/backup\/render$)/)(i));
    expect(bad).toEqual([]);
  });

  it("keeps config/ and model/ below everything: model imports nothing of the project's, config only model", () => {
    const model = imports("model").filter((i) => !outward(/^\.\//)(i));
    const config = imports("config").filter((i) => !outward(/^(\.\/|\.\.\/model\/)/)(i));
    expect([...model, ...config]).toEqual([]);
  });

  it("reads Pulumi config in config/load.ts alone", () => {
    const readers = ["config", "model", "cloud-init", "compose", "backup", "alerts", "components"]
      .flatMap(imports)
      .filter((i) => i.from.startsWith("@pulumi/pulumi") && i.file.startsWith("config/"));
    expect(readers.map((i) => i.file)).toEqual(["config/load.ts"]);
  });
});
