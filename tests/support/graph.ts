/**
 * Helpers for resource-graph tests: find recorded resources by type.
 */
import type { RecordedResource } from "../../scripts/mock-engine";

export const T = {
  server: "hcloud:index/server:Server",
  volume: "hcloud:index/volume:Volume",
  volumeAttachment: "hcloud:index/volumeAttachment:VolumeAttachment",
  firewall: "hcloud:index/firewall:Firewall",
  primaryIp: "hcloud:index/primaryIp:PrimaryIp",
  sshKey: "hcloud:index/sshKey:SshKey",
  privateKey: "tls:index/privateKey:PrivateKey",
  dnsRecord: "cloudflare:index/dnsRecord:DnsRecord",
  tunnelConfig: "cloudflare:index/zeroTrustTunnelCloudflaredConfig:ZeroTrustTunnelCloudflaredConfig",
  accessServiceToken: "cloudflare:index/zeroTrustAccessServiceToken:ZeroTrustAccessServiceToken",
  accessPolicy: "cloudflare:index/zeroTrustAccessPolicy:ZeroTrustAccessPolicy",
  accessApplication: "cloudflare:index/zeroTrustAccessApplication:ZeroTrustAccessApplication",
  accountToken: "cloudflare:index/accountToken:AccountToken",
  r2BucketLock: "cloudflare:index/r2BucketLock:R2BucketLock",
} as const;

export function ofType(resources: RecordedResource[], type: string): RecordedResource[] {
  return resources.filter((r) => r.type === type);
}

export function only(resources: RecordedResource[], type: string): RecordedResource {
  const found = ofType(resources, type);
  if (found.length !== 1) throw new Error(`expected exactly one ${type}, found ${found.length}`);
  return found[0];
}

export interface FirewallRuleInput {
  direction: string;
  protocol: string;
  port?: string;
  sourceIps: string[];
}

/** The inbound ports a firewall opens, as "proto/port" (ICMP as "icmp"). */
export function openPorts(firewall: RecordedResource): string[] {
  const rules = firewall.inputs.rules as FirewallRuleInput[];
  return rules.filter((r) => r.direction === "in").map((r) => (r.port ? `${r.protocol}/${r.port}` : r.protocol));
}
