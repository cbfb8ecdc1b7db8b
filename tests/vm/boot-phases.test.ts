import { describe, expect, test } from "vitest";
import { bootPhases, dpkgSteps, parseAptHistory, parseBlame, parseUnitBlame, phaseFigures } from "./boot-phases";

const BLAME = `-- Boot Record 01 --
     0.00300s (init-network/config-ssh)
    612.50000s (modules-final/config-package-update-upgrade-install)
     41.25000s (modules-final/config-runcmd)
`;

const HISTORY = `
Start-Date: 2026-12-01  10:00:00
Commandline: apt-get full-upgrade -y -qq
Upgrade: passwd:amd64 (1:4.17.4-2, 1:4.17.4-2+deb13u1)
End-Date: 2026-12-01  10:00:05

Start-Date: 2026-12-01  12:00:10
Commandline: /usr/bin/apt-get --option=Dpkg::Options::=--force-confold --assume-yes --quiet install docker.io ufw
Install: docker.io:amd64 (26.1.5), ufw:amd64 (0.36.2)
End-Date: 2026-12-01  12:01:10
`;

const DPKG = `2026-12-01 10:00:01 startup archives unpack
2026-12-01 10:00:04 status installed passwd:amd64 1:4.17.4-2+deb13u1
2026-12-01 12:00:30 startup archives unpack
2026-12-01 12:00:30 install docker.io:amd64 <none> 26.1.5
2026-12-01 12:00:30 status half-installed docker.io:amd64 26.1.5
2026-12-01 12:00:40 status unpacked docker.io:amd64 26.1.5
2026-12-01 12:00:40 install ufw:amd64 <none> 0.36.2
2026-12-01 12:00:42 status unpacked ufw:amd64 0.36.2
2026-12-01 12:00:42 startup packages configure
2026-12-01 12:00:42 configure docker.io:amd64 26.1.5 <none>
2026-12-01 12:00:42 status half-configured docker.io:amd64 26.1.5
2026-12-01 12:00:57 status installed docker.io:amd64 26.1.5
2026-12-01 12:00:57 configure ufw:amd64 0.36.2 <none>
2026-12-01 12:01:00 status installed ufw:amd64 0.36.2
2026-12-01 12:01:00 trigproc man-db:amd64 2.13.1-1 <none>
2026-12-01 12:01:06 status installed man-db:amd64 2.13.1-1
`;

const UNITS = `2min 3.456s apparmor.service
     12.040s cloud-init-main.service
       812ms ssh.service
`;

const BOOT = Date.parse("2026-12-01T11:58:00Z");

describe("where a first boot's time went", () => {
  test("cloud-init's module timings are read slowest first", () => {
    expect(parseBlame(BLAME)).toEqual([
      { name: "modules-final/config-package-update-upgrade-install", ms: 612_500 },
      { name: "modules-final/config-runcmd", ms: 41_250 },
      { name: "init-network/config-ssh", ms: 3 },
    ]);
  });

  test("systemd's unit timings are read in any of its units, slowest first", () => {
    expect(parseUnitBlame(UNITS)).toEqual([
      { name: "apparmor.service", ms: 123_456 },
      { name: "cloud-init-main.service", ms: 12_040 },
      { name: "ssh.service", ms: 812 },
    ]);
  });

  test("apt's history gives each run's command line and its start and end", () => {
    const runs = parseAptHistory(HISTORY);
    expect(runs).toHaveLength(2);
    expect(runs[1].commandLine).toMatch(/install docker\.io ufw$/);
    expect(runs[1].endMs - runs[1].startMs).toBe(60_000);
  });

  test("dpkg's time is charged to the step and package its last action line started", () => {
    const steps = dpkgSteps(DPKG, Date.parse("2026-12-01T12:00:10Z"), Date.parse("2026-12-01T12:01:10Z"));
    expect(steps).toMatchObject({ unpack: 12_000, configure: 18_000, trigger: 6_000, remove: 0 });
    expect(Object.fromEntries(steps.byPackage)).toEqual({
      "unpack docker.io": 10_000,
      "unpack ufw": 2_000,
      "configure docker.io": 15_000,
      "configure ufw": 3_000,
      "trigger man-db": 6_000,
    });
  });

  test("only the apt runs of this boot count, not the image build's", () => {
    const phases = bootPhases({ unitBlame: UNITS, blame: BLAME, aptHistory: HISTORY, dpkgLog: DPKG }, BOOT);
    expect(phases.aptRuns.map((r) => r.ms)).toEqual([60_000]);
  });

  test("the figures name each phase in seconds", () => {
    const figures = Object.fromEntries(
      phaseFigures(bootPhases({ unitBlame: UNITS, blame: BLAME, aptHistory: HISTORY, dpkgLog: DPKG }, BOOT), 2),
    );
    expect(figures).toEqual({
      "first boot: slowest units (s)": "apparmor.service 123, cloud-init-main.service 12",
      "first boot: cloud-init modules-final/config-package-update-upgrade-install (s)": 613,
      "first boot: cloud-init modules-final/config-runcmd (s)": 41,
      "first boot: apt-get install (dpkg): total, unpack, configure, triggers (s)": "60, 12, 18, 6",
      "first boot: apt-get install: slowest dpkg steps (s)": "configure docker.io 15, unpack docker.io 10",
    });
  });
});
