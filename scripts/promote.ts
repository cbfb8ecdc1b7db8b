/**
 * Promotion without drift: `npm run promote -- staging prod`.
 *
 * Copies the image of every app service from one stack file to another (matched by service
 * name), so prod runs exactly the images staging ran. Only digest-pinned images are promoted: a tag
 * can move between the staging rollout and the prod one, a digest cannot. The target file is
 * edited in place with its comments and layout kept; review the change in a pull request, where
 * `pulumi preview` shows what it rolls out.
 *
 *   npm run promote -- staging prod            write Pulumi.prod.yaml
 *   npm run promote -- staging prod --check    change nothing; exit 1 if prod differs from staging
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { isMap, isSeq, parseDocument, type YAMLMap } from "yaml";
import { PROJECT } from "../config/namespaces";

const SERVICES_KEY = `${PROJECT}:services`;
const DIGEST = /@sha256:[a-f0-9]{64}$/;

export interface ImageChange {
  service: string;
  from: string;
  to: string;
}

export interface PromotionPlan {
  changes: ImageChange[];
  /** Services of the source stack that the target does not run (nothing to promote them into). */
  onlyInSource: string[];
  /** Services of the target that the source does not run (left as they are). */
  onlyInTarget: string[];
  /** The target file's text after the promotion. */
  text: string;
}

export class PromotionError extends Error {}

function servicesOf(file: string, text: string) {
  const doc = parseDocument(text);
  if (doc.errors.length > 0) throw new PromotionError(`${file}: ${doc.errors[0].message}`);
  const services = doc.getIn(["config", SERVICES_KEY]);
  if (!isSeq(services)) throw new PromotionError(`${file}: has no ${SERVICES_KEY} list`);
  const byName = new Map<string, YAMLMap>();
  for (const item of services.items) {
    if (!isMap(item)) throw new PromotionError(`${file}: every entry of ${SERVICES_KEY} must be a map`);
    const name = item.get("name");
    if (typeof name !== "string") throw new PromotionError(`${file}: a service of ${SERVICES_KEY} has no name`);
    byName.set(name, item as YAMLMap);
  }
  return { doc, byName };
}

/** What promoting `sourceText` into `targetText` changes; pure. */
export function planPromotion(
  sourceFile: string,
  sourceText: string,
  targetFile: string,
  targetText: string,
): PromotionPlan {
  const source = servicesOf(sourceFile, sourceText);
  const target = servicesOf(targetFile, targetText);
  const unpinned = [...source.byName]
    .filter(([, svc]) => !DIGEST.test(String(svc.get("image"))))
    .map(([name, svc]) => `${name} (${String(svc.get("image"))})`);
  if (unpinned.length > 0) {
    throw new PromotionError(
      `${sourceFile}: only images pinned by digest are promoted (image:tag@sha256:… or image@sha256:…); not pinned: ${unpinned.join(", ")}`,
    );
  }
  const changes: ImageChange[] = [];
  for (const [name, svc] of source.byName) {
    const into = target.byName.get(name);
    if (!into) continue;
    const from = String(into.get("image"));
    const to = String(svc.get("image"));
    if (from !== to) {
      into.set("image", to);
      changes.push({ service: name, from, to });
    }
  }
  return {
    changes,
    onlyInSource: [...source.byName.keys()].filter((n) => !target.byName.has(n)),
    onlyInTarget: [...target.byName.keys()].filter((n) => !source.byName.has(n)),
    text: changes.length > 0 ? target.doc.toString({ lineWidth: 0 }) : targetText,
  };
}

/** Run the command; returns the exit code. */
export function promote(argv: string[], root: string, log: (line: string) => void = console.log): number {
  const args = argv.filter((a) => !a.startsWith("--"));
  const check = argv.includes("--check");
  if (args.length !== 2) {
    log("usage: npm run promote -- <from-stack> <to-stack> [--check]   e.g. npm run promote -- staging prod");
    return 2;
  }
  const [from, to] = args;
  const sourceFile = `Pulumi.${from}.yaml`;
  const targetFile = `Pulumi.${to}.yaml`;
  let plan: PromotionPlan;
  try {
    plan = planPromotion(
      sourceFile,
      readFileSync(join(root, sourceFile), "utf8"),
      targetFile,
      readFileSync(join(root, targetFile), "utf8"),
    );
  } catch (err) {
    log(`promote: ${err instanceof Error ? err.message : String(err)}`);
    return 1;
  }
  for (const c of plan.changes) log(`${c.service}: ${c.from} -> ${c.to}`);
  for (const name of plan.onlyInSource) log(`${name}: only in ${from}, not promoted`);
  for (const name of plan.onlyInTarget) log(`${name}: only in ${to}, left as it is`);
  if (plan.changes.length === 0) {
    log(`${to} already runs the images of ${from}`);
    return 0;
  }
  if (check) {
    log(`${to} differs from ${from} in ${plan.changes.length} image(s)`);
    return 1;
  }
  writeFileSync(join(root, targetFile), plan.text);
  log(`wrote ${targetFile}: ${plan.changes.length} image(s) promoted from ${from}; review, commit, then pulumi up`);
  return 0;
}

if (require.main === module) {
  process.exit(promote(process.argv.slice(2), join(__dirname, "..")));
}
