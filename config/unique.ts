/**
 * Lists whose entries must be unique: a second entry is at best pointless and at worst silently
 * loses the first (Hetzner keeps one value per label key). Entries are compared in the form the
 * consuming tool compares them: an SSH key by its type and key data (not its comment), a network
 * by its canonical address, a label by its key.
 */
import { canonicalCidr } from "./checks";
import type { CrossCheck, Problem } from "./problems";

type Loose = Record<string, unknown>;
const isObject = (v: unknown): v is Loose => v !== null && typeof v === "object" && !Array.isArray(v);

/** A list's entries that repeat an earlier one under `sameness`, with the earlier entry's index. */
function repeats(
  list: unknown,
  path: (string | number)[],
  sameness: (entry: string) => string | undefined,
  why: string,
): Problem[] {
  if (!Array.isArray(list)) return [];
  const first = new Map<string, number>();
  return list.flatMap((entry, i): Problem[] => {
    const id = typeof entry === "string" ? sameness(entry) : undefined;
    if (id === undefined) return [];
    const earlier = first.get(id);
    if (earlier === undefined) {
      first.set(id, i);
      return [];
    }
    return [{ path: [...path, i], message: `${why} as entry [${earlier}]; list each once` }];
  });
}

const itself = (entry: string) => entry.trim();

/** An OpenSSH key line's type and key data: the comment does not make another key. */
function sshKeyIdentity(line: string): string | undefined {
  const [type, data] = line.trim().split(/\s+/);
  return type && data ? `${type} ${data}` : undefined;
}

function canonicalNetwork(cidr: string): string | undefined {
  try {
    return canonicalCidr(cidr);
  } catch {
    return undefined;
  }
}

function labelKey(label: string): string | undefined {
  const at = label.indexOf("=");
  return at > 0 ? label.slice(0, at) : undefined;
}

export const uniquenessChecks: CrossCheck[] = [
  function listsHoldEachEntryOnce(raw) {
    const problems = [
      ...repeats(raw.adminSshKeys, ["adminSshKeys"], sshKeyIdentity, "is the same key"),
      ...repeats(raw.sshAllowedCidrs, ["sshAllowedCidrs"], canonicalNetwork, "is the same network"),
      ...repeats(raw.labels, ["labels"], labelKey, "sets the same label key (Hetzner keeps one value per key)"),
      ...repeats(raw.backupRecipients, ["backupRecipients"], itself, "is the same recipient"),
      ...repeats(raw.certifiedHostnames, ["certifiedHostnames"], (h) => h.toLowerCase(), "is the same name"),
      ...repeats(raw.backupUploadsDirs, ["backupUploadsDirs"], (d) => d.replace(/\/+$/, ""), "is the same directory"),
    ];
    if (isObject(raw.postgres)) {
      problems.push(...repeats(raw.postgres.extensions, ["postgres", "extensions"], itself, "is the same extension"));
    }
    if (isObject(raw.uploads)) {
      problems.push(...repeats(raw.uploads.services, ["uploads", "services"], itself, "is the same service"));
    }
    if (Array.isArray(raw.services)) {
      raw.services.forEach((s, i) => {
        if (isObject(s)) problems.push(...repeats(s.secrets, ["services", i, "secrets"], itself, "is the same secret"));
      });
    }
    return problems;
  },
];
