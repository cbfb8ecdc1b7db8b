/**
 * A stack's life on the server twin: `up()` evaluates the real program (index.ts, under the
 * runtime mocks) with the current config, works out what `pulumi up` would do from the state the
 * previous `up()` left (engine.ts) and applies it to the twin. Changes to the config, a
 * `--replace`, or a server lost and dropped by `pulumi refresh` are what a scenario passes.
 */
import { type EngineConfig, type ProgramRun, type RecordedResource, runProgram } from "../../scripts/mock-engine";
import { DataVolume } from "./data-volume";
import { type AppliedStep, applySteps, planChange, type Step, StepFailed, type Target } from "./engine";
import { type LoginKey, makeLoginKey, Twin } from "./twin";

export interface Change {
  /** Config keys (without the `webstack:` namespace) set to these values. */
  readonly set?: Readonly<Record<string, unknown>>;
  /** Resource names replaced as by `pulumi up --replace <urn>`: they get new ids and values. */
  readonly replace?: readonly string[];
  /** Resources that are gone at the provider, which `pulumi refresh` dropped from the state. */
  readonly lost?: readonly string[];
}

export interface Update {
  readonly steps: Step[];
  readonly applied: AppliedStep[];
  readonly run: ProgramRun;
}

export class Life {
  private state: RecordedResource[] | undefined;
  private readonly generations: Record<string, number> = {};
  readonly key: LoginKey = makeLoginKey();
  readonly target: Target;
  private dataVolume: DataVolume | undefined;

  constructor(
    readonly stack: string,
    private config: EngineConfig,
    readonly name: string,
    options: { afterBoot?: (twin: Twin) => void; rewriteStdin?: Target["rewriteStdin"] } = {},
  ) {
    const key = this.key;
    this.target = {
      twin: undefined,
      key,
      createVolume: (sizeGb: number) => {
        this.dataVolume = DataVolume.create(`${name}-data`, sizeGb);
      },
      rebuild: (userData: string) => {
        this.target.twin?.remove();
        const twin = Twin.start(name, this.volume, userData, key);
        options.afterBoot?.(twin);
        return twin;
      },
      rewriteStdin: options.rewriteStdin,
    };
  }

  /** The server's data volume (the Hetzner Volume), kept across rebuilds. */
  get volume(): DataVolume {
    if (!this.dataVolume) throw new Error("no volume yet: call up() first");
    return this.dataVolume;
  }

  get twin(): Twin {
    if (!this.target.twin) throw new Error("no server yet: call up() first");
    return this.target.twin;
  }

  /** The config value of a key as the program reads it (parsed). */
  value(key: string): unknown {
    const raw = this.config.values[`webstack:${key}`];
    if (raw === undefined) return undefined;
    try {
      return JSON.parse(raw);
    } catch {
      return raw;
    }
  }

  /**
   * Change the recorded state as another release of the program would have left it (what its
   * commands' `delete` and triggers were, which resources it did not have: `undefined`), before
   * the next `up()`.
   */
  rewriteState(rewrite: (resource: RecordedResource) => RecordedResource | undefined): void {
    if (!this.state) throw new Error("no state yet: call up() first");
    this.state = this.state.flatMap((r) => rewrite(r) ?? []);
  }

  /** `pulumi up` with this change; throws engine.StepFailed where Pulumi would stop. */
  async up(change: Change = {}): Promise<Update> {
    const { config, generations, state } = this.next(change);
    const run = await runProgram(this.stack, config, { generations });
    const steps = planChange(state, run.resources, { replace: change.replace });
    this.config = config;
    Object.assign(this.generations, generations);
    this.state = state;
    try {
      const applied = applySteps(steps, this.target);
      this.state = run.resources;
      return { steps, applied, run };
    } catch (err) {
      if (err instanceof StepFailed) this.state = partialState(state ?? [], run.resources, err);
      throw err;
    }
  }

  private next(change: Change) {
    const values = { ...this.config.values };
    for (const [key, value] of Object.entries(change.set ?? {})) {
      const full = `webstack:${key}`;
      if (value === undefined) delete values[full];
      else values[full] = typeof value === "string" ? value : JSON.stringify(value);
    }
    const generations = { ...this.generations };
    for (const name of [...(change.replace ?? []), ...(change.lost ?? [])])
      generations[name] = (generations[name] ?? 0) + 1;
    const lost = new Set(change.lost ?? []);
    const state = this.state?.filter((r) => !lost.has(r.name));
    return { config: { ...this.config, values }, generations, state };
  }

  /** Remove the twin and its data volume. */
  end(): void {
    this.target.twin?.remove();
    this.dataVolume?.remove();
  }
}

/**
 * The state a failed update leaves: what it created, updated or replaced before the failure is
 * new; the failed step and the steps it never reached keep their old state (a create that never
 * ran is absent; a delete that never ran is still there, to be deleted by the next update).
 */
function partialState(before: RecordedResource[], after: RecordedResource[], failure: StepFailed): RecordedResource[] {
  const done = new Set(failure.applied.filter((a) => a.op !== "delete").map((a) => a.name));
  done.delete(failure.step.resource.name);
  const old = new Map(before.map((r) => [r.urn, r]));
  const next = after.flatMap((r) => (done.has(r.name) ? [r] : old.has(r.urn) ? [old.get(r.urn)!] : []));
  const kept = new Set(next.map((r) => r.urn));
  return [...next, ...before.filter((r) => !kept.has(r.urn))];
}
