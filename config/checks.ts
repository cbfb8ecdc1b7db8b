/**
 * Checks of single values (SSH keys, CIDRs, labels, age recipients): each returns why a value is
 * unusable, or undefined when it is fine, and `checked` turns one into a zod schema. The schema
 * areas use them; the tests call them directly.
 */
// age's own TypeScript implementation (by age's author): it parses a recipient as age does.
import { Encrypter } from "age-encryption";
import * as ipaddr from "ipaddr.js";
import * as sshpk from "sshpk";
import { z } from "zod";

/** A lowercase DNS hostname (or domain) of at least two labels. */
export const HOSTNAME = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,61}[a-z0-9]$/;
/** Hetzner label keys/values: at most 63 characters of [a-zA-Z0-9._-], alphanumeric at both ends. */
const HETZNER_LABEL_VALUE = /^([a-zA-Z0-9]([a-zA-Z0-9._-]{0,61}[a-zA-Z0-9])?)?$/;
const HETZNER_LABEL_KEY = /^([a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?\/)?[a-zA-Z0-9]([a-zA-Z0-9._-]{0,61}[a-zA-Z0-9])?$/;
const MIN_RSA_BITS = 3072;
/** An age X25519 recipient: "age1" and 58 bech32 characters. */
const AGE_RECIPIENT = /^age1[02-9ac-hj-np-z]{58}$/;
/** age also encrypts to OpenSSH keys (ed25519 and RSA). */
const SSH_RECIPIENT = /^(ssh-ed25519|ssh-rsa) [A-Za-z0-9+/]+={0,2}( \S.*)?$/;

/** A string schema that refuses what `problem` finds wrong, with its message. */
export function checked(problem: (value: string) => string | undefined) {
  return z.string().superRefine((value, ctx) => {
    const message = problem(value);
    if (message) ctx.addIssue({ code: "custom", message });
  });
}

/** Why an OpenSSH public key line is unusable, or undefined when it is fine. */
export function sshPublicKeyProblem(line: string): string | undefined {
  const allowed =
    "allowed: ssh-ed25519, ecdsa-sha2-nistp256/384/521, sk-ssh-ed25519@openssh.com, or ssh-rsa of 3072+ bits, one key per entry";
  if (/PRIVATE KEY/.test(line)) return `is a private key; give the .pub file's line instead (${allowed})`;
  if (line.trim().split("\n").length > 1) return `holds more than one line; ${allowed}`;
  let key: sshpk.Key;
  try {
    key = sshpk.parseKey(line.trim(), "ssh");
  } catch {
    return `is not an OpenSSH public key line; ${allowed}`;
  }
  if (key.type === "dsa") return `DSA keys are refused by modern OpenSSH; ${allowed}`;
  if (key.type === "rsa" && key.size < MIN_RSA_BITS)
    return `is a ${key.size}-bit RSA key; RSA keys need ${MIN_RSA_BITS}+ bits`;
  return undefined;
}

/** Why a CIDR is unusable in a Hetzner firewall rule, or undefined when it is fine. */
export function cidrProblem(cidr: string): string | undefined {
  const allowed = "an IPv4 or IPv6 network in CIDR form, e.g. 203.0.113.0/24 or 2001:db8::/48";
  if (!cidr.includes("/")) return `has no prefix length; ${allowed} (a single host is 203.0.113.7/32)`;
  let parsed: [ipaddr.IPv4 | ipaddr.IPv6, number];
  try {
    parsed = ipaddr.parseCIDR(cidr);
  } catch {
    return `is not ${allowed}`;
  }
  const [addr, bits] = parsed;
  const network =
    addr.kind() === "ipv4"
      ? ipaddr.IPv4.networkAddressFromCIDR(cidr).toString()
      : ipaddr.IPv6.networkAddressFromCIDR(cidr).toString();
  if (network !== addr.toString()) {
    return `has host bits set; the network is ${network}/${bits}`;
  }
  return undefined;
}

/**
 * A network in its canonical spelling (`2001:0DB8::/48` → `2001:db8::/48`), as Hetzner's API
 * returns it: passed on so, a second `pulumi up` sees no difference to correct. For a valid CIDR.
 */
export function canonicalCidr(cidr: string): string {
  const [addr, bits] = ipaddr.parseCIDR(cidr);
  return `${addr.toString()}/${bits}`;
}

/** Why a `key=value` Hetzner label is unusable, or undefined when it is fine. */
export function labelProblem(label: string): string | undefined {
  const at = label.indexOf("=");
  if (at <= 0) return 'must be "key=value"';
  const key = label.slice(0, at);
  const value = label.slice(at + 1);
  if (!HETZNER_LABEL_KEY.test(key))
    return `label key "${key}" is not a valid Hetzner label key (letters, digits, '.', '_', '-'; at most 63 characters)`;
  if (!HETZNER_LABEL_VALUE.test(value))
    return `label value "${value}" is not a valid Hetzner label value (letters, digits, '.', '_', '-'; at most 63 characters)`;
  return undefined;
}

/** Why a string is not an age recipient the backups can encrypt to, or undefined when it is one. */
export function ageRecipientProblem(value: string): string | undefined {
  const allowed = "an age public key (age1…, from age-keygen -y) or an ssh-ed25519/ssh-rsa public key line";
  if (value.startsWith("AGE-SECRET-KEY-")) {
    return `is an age PRIVATE key; give its public key (age-keygen -y FILE) instead, and keep the private key off the server (${allowed})`;
  }
  if (/PRIVATE KEY/.test(value)) return `is a private key; ${allowed}`;
  if (value.startsWith("age1pq")) {
    return `is a post-quantum age recipient, which the server's age (Debian 13's) cannot encrypt to; ${allowed}`;
  }
  if (value.startsWith("age1")) return x25519RecipientProblem(value, allowed);
  if (SSH_RECIPIENT.test(value)) return sshRecipientProblem(value, allowed);
  return `is not ${allowed}`;
}

/** An `age1…` key judged by age's own parser: the bech32 checksum catches a mistyped character. */
function x25519RecipientProblem(value: string, allowed: string): string | undefined {
  try {
    new Encrypter().addRecipient(value);
  } catch (err) {
    const why = /checksum/i.test(String(err))
      ? "its checksum is wrong (a character mistyped or lost)"
      : "it does not parse";
    return `is not a valid age public key: ${why}; ${allowed}`;
  }
  // The library also takes recipient kinds the server's age does not (tags, plugins).
  return AGE_RECIPIENT.test(value) ? undefined : `is not an X25519 age public key; ${allowed}`;
}

/** An SSH public key line as age reads it: a key that parses, ed25519 or RSA. */
function sshRecipientProblem(value: string, allowed: string): string | undefined {
  let key: sshpk.Key;
  try {
    key = sshpk.parseKey(value, "ssh");
  } catch {
    return `is not a valid SSH public key (its base64 does not hold a key); ${allowed}`;
  }
  return key.type === "ed25519" || key.type === "rsa" ? undefined : `is not ${allowed}`;
}

/** A whole number from `min` to `max`, with messages that give the unit. */
export function wholeNumber(min: number, max: number, unit: string) {
  return z
    .int({ message: `must be a whole number of ${unit}` })
    .min(min, { message: `must be at least ${min} (${unit})` })
    .max(max, { message: `must be at most ${max} (${unit})` });
}
