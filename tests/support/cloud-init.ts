import { parse } from "yaml";
import type { CloudInitInput } from "../../cloud-init/render";

export const SAMPLE_INPUT: CloudInitInput = {
  hostname: "shop-prod",
  adminSshKeys: ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIC5PqA7hUthsrNf7q5yfsuPKS1KH8KVKN0HK6mfvzZMO alice@example.com"],
  deployPublicKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKm1gnGkYlq7U3WBuF1dOmqHdaJDlhJyTrDeyFk1s2Ck",
  exposure: "tunnel",
  swapMb: 2048,
  volumeDevice: "/dev/disk/by-id/scsi-0HC_Volume_4242",
  autoRebootTime: "03:30",
  sshAllowedCidrs: ["198.51.100.0/24", "2001:db8:42::/48"],
};

export interface CloudConfig {
  users: { name: string; ssh_authorized_keys: string[]; groups: string[]; lock_passwd: boolean; sudo?: string }[];
  write_files: { path: string; content: string; permissions: string }[];
  runcmd: string[][];
  packages: string[];
  swap: { filename: string; size: number };
  [key: string]: unknown;
}

export function parseCloudConfig(text: string): CloudConfig {
  return parse(text) as CloudConfig;
}

export function writtenFile(config: CloudConfig, path: string): string {
  const file = config.write_files.find((f) => f.path === path);
  if (!file) throw new Error(`cloud-init writes no ${path}`);
  return file.content;
}
