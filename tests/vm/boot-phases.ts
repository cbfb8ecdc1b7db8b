/**
 * Where a first boot's time went, from the logs the server keeps anyway: cloud-init's own module
 * timings (`cloud-init analyze blame`), apt's history and dpkg's log. Pure: log text in, figures
 * out, so the next slow run says which phase was slow (the mirror, unpacking, a maintainer
 * script, a trigger) instead of only that it was.
 *
 * dpkg logs one line per step with a one-second clock: `install P`, `upgrade P`, `configure P`,
 * `trigproc P`, then `status ...` lines. The time between one line and the next is charged to
 * the step the last non-status line started, and to its package.
 */

/** One apt-get run that changed packages, from /var/log/apt/history.log. */
export interface AptRun {
  commandLine: string;
  startMs: number;
  endMs: number;
}

/** What dpkg spent its time on, in ms, and the slowest packages of each step. */
export interface DpkgSteps {
  unpack: number;
  configure: number;
  trigger: number;
  remove: number;
  /** `step package` → ms, e.g. `configure docker.io`. */
  byPackage: Map<string, number>;
}

export interface BootPhases {
  /** The slowest units of the boot (`systemd-analyze blame`: AppArmor's profiles, cloud-init's stages), in ms. */
  units: { name: string; ms: number }[];
  /** cloud-init's slowest stages and modules, slowest first, in ms. */
  modules: { name: string; ms: number }[];
  /** Each apt-get run of the boot (apt logs its start once it has downloaded: this is dpkg's time). */
  aptRuns: { commandLine: string; ms: number; dpkg: DpkgSteps }[];
}

/** `2026-12-01  21:24:45` or `2026-12-01 21:24:45` (the guest's clock is UTC) → ms since the epoch. */
function parseTime(date: string, time: string): number {
  return Date.parse(`${date}T${time}Z`);
}

/** `cloud-init analyze blame` lines: `     12.34500s (modules-final/config-package-update-upgrade-install)`. */
export function parseBlame(text: string): { name: string; ms: number }[] {
  const rows: { name: string; ms: number }[] = [];
  for (const match of text.matchAll(/^\s*(\d+(?:\.\d+)?)s \(([^)]+)\)\s*$/gm)) {
    rows.push({ name: match[2], ms: Math.round(Number(match[1]) * 1000) });
  }
  return rows.sort((a, b) => b.ms - a.ms);
}

/** `systemd-analyze blame` lines: `2min 3.456s apparmor.service`, `812ms ssh.service`. */
export function parseUnitBlame(text: string): { name: string; ms: number }[] {
  const unitMs: Record<string, number> = { h: 3_600_000, min: 60_000, s: 1000, ms: 1, us: 0.001 };
  const rows: { name: string; ms: number }[] = [];
  for (const line of text.split("\n")) {
    const match = /^\s*((?:\d+(?:\.\d+)?(?:h|min|s|ms|us) ?)+)\s+(\S+)$/.exec(line);
    if (!match) continue;
    let ms = 0;
    for (const part of match[1].matchAll(/(\d+(?:\.\d+)?)(h|min|s|ms|us)/g)) ms += Number(part[1]) * unitMs[part[2]];
    rows.push({ name: match[2], ms: Math.round(ms) });
  }
  return rows.sort((a, b) => b.ms - a.ms);
}

/** The runs in apt's history.log (blank-line separated stanzas). */
export function parseAptHistory(text: string): AptRun[] {
  const runs: AptRun[] = [];
  for (const stanza of text.split(/\n\s*\n/)) {
    const start = /^Start-Date: (\S+)\s+(\S+)$/m.exec(stanza);
    const end = /^End-Date: (\S+)\s+(\S+)$/m.exec(stanza);
    if (!start || !end) continue;
    runs.push({
      commandLine: /^Commandline: (.*)$/m.exec(stanza)?.[1] ?? "",
      startMs: parseTime(start[1], start[2]),
      endMs: parseTime(end[1], end[2]),
    });
  }
  return runs;
}

interface DpkgLine {
  ms: number;
  words: string[];
}

function parseDpkgLog(text: string): DpkgLine[] {
  const lines: DpkgLine[] = [];
  for (const line of text.split("\n")) {
    const match = /^(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d) (.*)$/.exec(line);
    if (match) lines.push({ ms: parseTime(match[1], match[2]), words: match[3].split(" ") });
  }
  return lines;
}

const STEP_OF_ACTION: Record<string, keyof Omit<DpkgSteps, "byPackage">> = {
  install: "unpack",
  upgrade: "unpack",
  configure: "configure",
  trigproc: "trigger",
  remove: "remove",
  purge: "remove",
};

/** dpkg's time between `fromMs` and `toMs`, by step and by package. */
export function dpkgSteps(dpkgLog: string, fromMs: number, toMs: number): DpkgSteps {
  const steps: DpkgSteps = {
    unpack: 0,
    configure: 0,
    trigger: 0,
    remove: 0,
    byPackage: new Map(),
  };
  const lines = parseDpkgLog(dpkgLog).filter((l) => l.ms >= fromMs && l.ms <= toMs);
  let step: keyof Omit<DpkgSteps, "byPackage"> = "unpack";
  let pkg = "";
  for (let i = 0; i < lines.length; i++) {
    const [kind, second, third] = lines[i].words;
    if (kind === "startup") {
      step = second === "packages" && third !== "remove" ? "configure" : second === "archives" ? "unpack" : "remove";
      pkg = "";
    } else if (kind in STEP_OF_ACTION) {
      step = STEP_OF_ACTION[kind];
      pkg = second.replace(/:[a-z0-9]+$/, "");
    }
    const next = lines[i + 1]?.ms ?? lines[i].ms;
    const gap = next - lines[i].ms;
    if (gap === 0) continue;
    steps[step] += gap;
    if (pkg) {
      const key = `${step} ${pkg}`;
      steps.byPackage.set(key, (steps.byPackage.get(key) ?? 0) + gap);
    }
  }
  return steps;
}

/** The phases of the boot that started at `bootMs` (apt runs of the image build come before it). */
export function bootPhases(
  logs: { unitBlame: string; blame: string; aptHistory: string; dpkgLog: string },
  bootMs: number,
): BootPhases {
  const runs = parseAptHistory(logs.aptHistory).filter((r) => r.startMs >= bootMs);
  return {
    units: parseUnitBlame(logs.unitBlame),
    modules: parseBlame(logs.blame),
    aptRuns: runs.map((r) => ({
      commandLine: r.commandLine,
      ms: r.endMs - r.startMs,
      dpkg: dpkgSteps(logs.dpkgLog, r.startMs, r.endMs),
    })),
  };
}

const seconds = (ms: number) => Math.round(ms / 1000);

/** The apt-get subcommand of a history command line: `install`, `dist-upgrade`, ... */
function aptVerb(commandLine: string): string {
  return (
    commandLine
      .split(" ")
      .slice(1)
      .find((word) => !word.startsWith("-") && !word.includes("=")) ?? "?"
  );
}

/** Figure lines for the suite's summary: `first boot: <phase> (s)` → seconds. */
export function phaseFigures(phases: BootPhases, top = 4): [string, string | number][] {
  const rows: [string, string | number][] = [];
  if (phases.units.length > 0) {
    rows.push([
      "first boot: slowest units (s)",
      phases.units
        .slice(0, top)
        .map((u) => `${u.name} ${seconds(u.ms)}`)
        .join(", "),
    ]);
  }
  for (const m of phases.modules.slice(0, top)) rows.push([`first boot: cloud-init ${m.name} (s)`, seconds(m.ms)]);
  for (const run of phases.aptRuns) {
    const verb = aptVerb(run.commandLine);
    const { dpkg } = run;
    rows.push([
      // apt writes Start-Date once it has downloaded, so the run's time is dpkg's: the update,
      // resolving and downloading are the package module's time less its apt runs.
      `first boot: apt-get ${verb} (dpkg): total, unpack, configure, triggers (s)`,
      [run.ms, dpkg.unpack, dpkg.configure, dpkg.trigger].map(seconds).join(", "),
    ]);
    const slowest = [...dpkg.byPackage.entries()].sort((a, b) => b[1] - a[1]).slice(0, top);
    if (slowest.length > 0) {
      rows.push([
        `first boot: apt-get ${verb}: slowest dpkg steps (s)`,
        slowest.map(([key, ms]) => `${key} ${seconds(ms)}`).join(", "),
      ]);
    }
  }
  return rows;
}
