/**
 * Pulumi.yaml declares every config key the schema knows, with the same type and default, so the
 * CLI and the program agree on what a stack may set.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { z } from "zod";
import { PROJECT } from "../../config/namespaces";
import { CONFIG_KEYS, stackConfigSchema } from "../../config/schema";
import { PROJECT_ROOT } from "../../scripts/mock-engine";
import { STACKS, stackValues } from "../support/fixtures";

interface Declaration {
  type?: string;
  items?: { type?: string };
  default?: unknown;
  description?: string;
}

const project = parse(readFileSync(join(PROJECT_ROOT, "Pulumi.yaml"), "utf8")) as {
  name: string;
  runtime: { name: string };
  config: Record<string, Declaration>;
};
const shape = stackConfigSchema.shape as Record<string, z.ZodType>;

/** The Pulumi config type a zod field corresponds to, or undefined for objects and lists of objects. */
function pulumiType(field: z.ZodType): { type?: string; items?: string } {
  const schema = z.toJSONSchema(field, { io: "input", unrepresentable: "any" }) as {
    type?: string;
    items?: { type?: string };
  };
  if (schema.type === "array") {
    const items = schema.items?.type;
    return items === "object" || items === undefined ? {} : { type: "array", items };
  }
  if (schema.type === "object" || schema.type === undefined) return {};
  return { type: schema.type === "number" ? "integer" : schema.type };
}

describe("Pulumi.yaml", () => {
  it("names the project after the config namespace and runs on nodejs", () => {
    expect(project.name).toBe(PROJECT);
    expect(project.runtime.name).toBe("nodejs");
  });

  it("declares exactly the keys of the schema", () => {
    expect(Object.keys(project.config).sort()).toEqual([...CONFIG_KEYS].sort());
  });

  it.each(CONFIG_KEYS)("declares %s with a description", (key) => {
    expect(project.config[key].description?.length ?? 0).toBeGreaterThan(10);
  });

  it.each(CONFIG_KEYS)("declares %s with the schema's type", (key) => {
    const expected = pulumiType(shape[key]);
    const declared = project.config[key];
    expect({ type: declared.type, items: declared.items?.type }).toEqual({
      type: expected.type,
      items: expected.items,
    });
  });

  it.each(CONFIG_KEYS)("declares %s with the schema's default, or none when the key is required", (key) => {
    const parsed = shape[key].safeParse(undefined);
    const schemaDefault = parsed.success ? parsed.data : undefined;
    expect(project.config[key].default).toEqual(schemaDefault);
  });

  it("uses only the config types Pulumi can declare", () => {
    for (const declaration of Object.values(project.config)) {
      if (declaration.type === undefined) continue;
      expect(["string", "integer", "boolean", "array"]).toContain(declaration.type);
      if (declaration.type === "array") expect(["string", "integer", "boolean"]).toContain(declaration.items?.type);
    }
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
