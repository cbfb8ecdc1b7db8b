/**
 * Figures of the server booted in the local VM (`npm run bench:vm`): time from power-on to SSH,
 * to cloud-init done, to the data volume mounted and Docker running, to the app stack deployed
 * (as `pulumi up` deploys it) and healthy, and the lynis hardening index of this server vs stock
 * Debian 13 in the same VM. Measures stock Debian afresh unless
 * `--cached-stock` is given. Takes well over 20 minutes on two shared cores under TCG.
 */
import { rmSync } from "node:fs";
import { join } from "node:path";
import { phaseFigures } from "../tests/vm/boot-phases";
import {
  auditTwin,
  bootAndWait,
  ensureImage,
  makeKeys,
  plugVolumeAndWaitForDocker,
  removeKeys,
  startHardenedServer,
  stockLynisIndex,
} from "../tests/vm/scenario";
import { appStackSteps, loadStandInImages, runAppStackSteps, standInImagesTarball } from "../tests/vm/stack";

async function main(): Promise<void> {
  const t0 = Date.now();
  const imageDir = await ensureImage();
  const imagesTarball = await standInImagesTarball();
  const steps = await appStackSteps();
  const imageS = Math.round((Date.now() - t0) / 1000);
  if (!process.argv.includes("--cached-stock")) rmSync(join(imageDir, "stock-lynis.json"), { force: true });

  const keys = await makeKeys();
  // As in the test: lynis audits a twin booted from the same user data, on the other core, then
  // stock Debian, so that no more than two VMs share the two cores.
  const twin = auditTwin(keys, imageDir);
  twin.catch(() => {});
  const stock = twin.then(() => stockLynisIndex(imageDir));
  stock.catch(() => {});
  const vm = await startHardenedServer(keys, imageDir, imagesTarball);
  try {
    const boot = await bootAndWait(vm, keys.admin.path);
    if (boot.cloudInit.code !== 0) throw new Error(`cloud-init did not finish cleanly:\n${boot.cloudInit.stdout}`);
    await plugVolumeAndWaitForDocker(vm, keys.admin.path);
    const dockerReadyMs = Date.now() - vm.poweredOnAt;
    const loadStarted = Date.now();
    const load = await loadStandInImages(vm, keys.admin.path);
    if (load.code !== 0) throw new Error(`loading the stand-in images failed: ${load.stderr}`);
    const loadMs = Date.now() - loadStarted;
    const failed = await runAppStackSteps(vm, keys.deploy.path, steps);
    if (failed) throw new Error(`${failed.step.name} failed:\n${failed.result.stdout}\n${failed.result.stderr}`);
    const stackHealthyMs = Date.now() - vm.poweredOnAt;
    await vm.stop();
    const hardened = await twin;
    const stockIndex = await stock;
    const rows: [string, string | number][] = [
      ["image and stand-in app images (build or cache hit), s", imageS],
      ["power-on to SSH login, s", Math.round(boot.sshMs / 1000)],
      ["power-on to cloud-init done, s", Math.round(boot.cloudInitMs / 1000)],
      ...(boot.phases ? phaseFigures(boot.phases) : []),
      [
        "power-on to volume mounted + Docker active (volume plugged after cloud-init), s",
        Math.round(dockerReadyMs / 1000),
      ],
      ["stand-in app images loaded into the VM's engine (no registry here), s", Math.round(loadMs / 1000)],
      ["power-on to app stack deployed and healthy, s", Math.round(stackHealthyMs / 1000)],
      ["lynis hardening index, stock Debian 13", `${stockIndex.index}${stockIndex.cached ? " (cached)" : ""}`],
      ["lynis audit of this server (on its twin), s", Math.round(hardened.auditMs / 1000)],
      ["lynis hardening index, this server", hardened.index],
    ];
    for (const [name, value] of rows) console.log(`${name.padEnd(82)} ${value}`);
  } finally {
    await vm.stop();
    removeKeys(keys);
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
