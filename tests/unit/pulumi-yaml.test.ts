/**
 * Pulumi.yaml declares every config key the schema knows, with the same type and default, so the
 * CLI and the program agree on what a stack may set: its `config:` block is generated from the
 * schema (scripts/pulumi-yaml.ts), and the committed file must be what the generator writes.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { z } from "zod";
import { PROJECT } from "../../config/namespaces";
import { CONFIG_KEYS } from "../../config/schema";
import { configDeclarations, PULUMI_YAML, pulumiType, renderPulumiYaml } from "../../scripts/pulumi-yaml";
import { STACKS, stackValues } from "../support/fixtures";

const text = readFileSync(PULUMI_YAML, "utf8");
const project = parse(text) as { name: string; runtime: { name: string }; config: Record<string, unknown> };

describe("Pulumi.yaml", () => {
  it("names the project after the config namespace and runs on nodejs", () => {
    expect(project.name).toBe(PROJECT);
    expect(project.runtime.name).toBe("nodejs");
  });

  it("holds the config block the schema generates (run `npm run docs` after changing a key)", () => {
    expect(text).toBe(renderPulumiYaml(text));
  });

  it("declares exactly the schema's keys, as YAML readers see them", () => {
    expect(project.config).toEqual(configDeclarations());
    expect(Object.keys(project.config)).toEqual(CONFIG_KEYS);
  });

  it("gives every key a description", () => {
    for (const [key, d] of Object.entries(configDeclarations())) expect(d.description.trim(), key).not.toBe("");
  });
});

describe("the Pulumi type of a schema field", () => {
  it("is integer for whole numbers, and the scalar's own type for strings and booleans", () => {
    expect(pulumiType(z.int().min(1).default(3))).toEqual({ type: "integer" });
    expect(pulumiType(z.string().optional())).toEqual({ type: "string" });
    expect(pulumiType(z.boolean().default(false))).toEqual({ type: "boolean" });
  });

  it("is an array of scalars for a list of scalars", () => {
    expect(pulumiType(z.array(z.string()).default([]))).toEqual({ type: "array", items: { type: "string" } });
  });

  it("is left out for objects and lists of objects, which Pulumi cannot declare", () => {
    expect(pulumiType(z.object({ a: z.string() }))).toEqual({});
    expect(pulumiType(z.array(z.object({ a: z.string() })))).toEqual({});
  });
});

describe("the stack files", () => {
  it.each(STACKS)("Pulumi.%s.yaml sets only keys of the project namespace", (stack) => {
    for (const key of Object.keys(stackValues(stack))) expect(CONFIG_KEYS).toContain(key);
  });

  it("put staging on a tier no larger than prod's, with different hostnames", () => {
    const order = ["small", "medium", "large", "xlarge"];
    const tierOf = (s: string) => order.indexOf(String(stackValues(s).tier ?? "small"));
    expect(tierOf("staging")).toBeLessThanOrEqual(tierOf("prod"));
    const hosts = (s: string) => (stackValues(s).routes as { hostname: string }[]).map((r) => r.hostname);
    expect(hosts("staging").filter((h) => hosts("prod").includes(h))).toEqual([]);
  });
});
