/**
 * Pulumi.yaml's `config:` block, generated from the schema (config/schema.ts): every key in the
 * schema's order, with the Pulumi type its zod field maps to, its default and its description.
 * `npm run docs` rewrites the block, and a test fails when the committed file differs from what
 * this would write. The rest of Pulumi.yaml (name, runtime) is kept as written.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { isMap, isScalar, parseDocument, Scalar, type YAMLMap } from "yaml";
import { z } from "zod";
import { CONFIG_AREAS, CONFIG_KEYS, stackConfigSchema } from "../config/schema";
import { PROJECT_ROOT } from "./mock-engine";

export const PULUMI_YAML = join(PROJECT_ROOT, "Pulumi.yaml");

/** One key as Pulumi.yaml declares it. */
export interface Declaration {
  type?: "string" | "integer" | "boolean" | "array";
  items?: { type: "string" | "integer" | "boolean" };
  default?: unknown;
  description: string;
}

const HEADER = [
  " Every key a stack may set, generated from config/schema.ts by `npm run docs` (do not edit by",
  " hand: tests/unit/pulumi-yaml.test.ts fails when this block differs from what it would write).",
  " Keys whose values are objects (or lists of objects) have no `type`: Pulumi's declared types",
  " cover only strings, integers, booleans and arrays of those, and it validates only typed keys;",
  " the program's schema validates every key.",
].join("\n");

/**
 * YAML 1.1's scalar rules, so that strings a 1.1 reader would take for something else (`03:30`, a
 * sexagesimal number there; `on`, a boolean) are quoted.
 */
const YAML_OPTIONS = { version: "1.1" } as const;

type Scalars = "string" | "integer" | "boolean";
const SCALARS: readonly string[] = ["string", "integer", "boolean"];

/** The Pulumi config type of a zod field, or none for objects and lists of objects. */
export function pulumiType(field: z.ZodType): Pick<Declaration, "type" | "items"> {
  const schema = z.toJSONSchema(field, { io: "input", unrepresentable: "any" }) as {
    type?: string;
    items?: { type?: string };
  };
  const scalar = (t: string | undefined): Scalars | undefined =>
    t === "number" ? "integer" : t !== undefined && SCALARS.includes(t) ? (t as Scalars) : undefined;
  if (schema.type === "array") {
    const items = scalar(schema.items?.type);
    return items === undefined ? {} : { type: "array", items: { type: items } };
  }
  const type = scalar(schema.type);
  return type === undefined ? {} : { type };
}

/** Every key's declaration, in the schema's order. */
export function configDeclarations(): Record<string, Declaration> {
  const shape = stackConfigSchema.shape as Record<string, z.ZodType>;
  const descriptions: Record<string, string> = Object.assign({}, ...CONFIG_AREAS.map((a) => a.descriptions));
  const out: Record<string, Declaration> = {};
  for (const key of CONFIG_KEYS) {
    const parsed = shape[key].safeParse(undefined);
    const declaration: Declaration = { ...pulumiType(shape[key]), description: descriptions[key] };
    if (parsed.success && parsed.data !== undefined) declaration.default = parsed.data;
    // Key order in the file: type, items, default, description.
    const { description, ...rest } = declaration;
    out[key] = { ...rest, description };
  }
  return out;
}

/** The `config:` block as a YAML node, each area headed by its comment. */
export function configNode(): YAMLMap {
  const doc = parseDocument("{}", YAML_OPTIONS);
  const node = doc.createNode(configDeclarations()) as YAMLMap;
  for (const area of CONFIG_AREAS) {
    const first = node.items.find((pair) => isScalar(pair.key) && pair.key.value === Object.keys(area.descriptions)[0]);
    if (first && isScalar(first.key)) first.key.commentBefore = ` ${area.title}`;
  }
  return node;
}

/** Pulumi.yaml's text with its `config:` block replaced by the generated one. */
export function renderPulumiYaml(text: string): string {
  const doc = parseDocument(text, YAML_OPTIONS);
  if (!isMap(doc.contents)) throw new Error("Pulumi.yaml is not a map");
  // The parsed map, widened to one that takes built nodes too.
  const top: YAMLMap = doc.contents;
  const key = new Scalar("config");
  key.commentBefore = HEADER;
  key.spaceBefore = true;
  top.items = top.items.filter((pair) => !(isScalar(pair.key) && pair.key.value === "config"));
  top.set(key, configNode());
  return doc.toString({ lineWidth: 0 });
}

if (require.main === module) {
  const before = readFileSync(PULUMI_YAML, "utf8");
  const after = renderPulumiYaml(before);
  writeFileSync(PULUMI_YAML, after);
  console.log(before === after ? "Pulumi.yaml is up to date" : "Pulumi.yaml: config block rewritten");
}
