/**
 * The twin's data volume: an ext4 filesystem on a loop device (a sparse file on the host), as a
 * Hetzner Volume is a block device of its own that outlives its server. The host mounts it and
 * the twin gets the mount at /srv/data and the device node, so the tools on the server (findmnt,
 * resize2fs) see a real block device. It is not grown here: resizing a mounted ext4 takes
 * CAP_SYS_RESOURCE, which this sandbox cannot give a container (the VM suite grows its volume).
 */
import { mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { run } from "../support/stack-configs";

const GB = 1024 ** 3;

export class DataVolume {
  private constructor(
    private readonly file: string,
    /** Where the host mounts it (bound into the twin at /srv/data). */
    readonly mountPoint: string,
    /** The loop device, e.g. /dev/loop3. */
    readonly device: string,
  ) {}

  /** A blank volume of `sizeGb`, formatted ext4 (what first boot's data-volume-mount does). */
  static create(name: string, sizeGb: number): DataVolume {
    const file = join(tmpdir(), `${name}.img`);
    const mountPoint = join(tmpdir(), `${name}-mnt`);
    DataVolume.removeLeftovers(file, mountPoint);
    sh(`truncate -s ${sizeGb * GB} '${file}'`);
    sh(`mkfs.ext4 -q -L data '${file}'`);
    const device = sh(`losetup --find --show '${file}'`).trim();
    mkdirSync(mountPoint, { recursive: true });
    sh(`mount -t ext4 -o noatime '${device}' '${mountPoint}'`);
    return new DataVolume(file, mountPoint, device);
  }

  remove(): void {
    DataVolume.removeLeftovers(this.file, this.mountPoint);
  }

  private static removeLeftovers(file: string, mountPoint: string): void {
    run("umount", ["-l", mountPoint]);
    for (const line of run("losetup", ["-j", file]).stdout.split("\n").filter(Boolean)) {
      run("losetup", ["-d", line.split(":")[0]]);
    }
    rmSync(mountPoint, { recursive: true, force: true });
    rmSync(file, { force: true });
  }
}

function sh(script: string): string {
  const r = run("sh", ["-c", script]);
  if (r.status !== 0) throw new Error(`${script}: ${r.stderr}`);
  return r.stdout;
}
