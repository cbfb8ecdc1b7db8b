/**
 * The config's check of `backupRecipients` agrees with the tool that reads them every night: the
 * real `age -r <recipient>` accepts exactly the values the check lets through. A recipient the
 * check passed but age refused would fail every backup (it did: "zstd: broken pipe").
 */
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ageRecipientProblem } from "../../config/checks";

let dir: string;
const keys = { age: "", ed25519: "", rsa: "", ecdsa: "" };

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "recipients-"));
  execFileSync("age-keygen", ["-o", join(dir, "age.txt")], { stdio: "ignore" });
  keys.age = execFileSync("age-keygen", ["-y", join(dir, "age.txt")], { encoding: "utf8" }).trim();
  for (const [name, args] of [
    ["ed25519", ["-t", "ed25519"]],
    ["rsa", ["-t", "rsa", "-b", "3072"]],
    ["ecdsa", ["-t", "ecdsa"]],
  ] as const) {
    execFileSync("ssh-keygen", ["-q", ...args, "-N", "", "-C", "ops@example.com", "-f", join(dir, name)]);
    keys[name] = readFileSync(join(dir, `${name}.pub`), "utf8").trim();
  }
});

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Whether the real age encrypts to the recipient. */
function ageAccepts(recipient: string): boolean {
  return spawnSync("age", ["-r", recipient], { input: "x" }).status === 0;
}

/** A character of the key's data part changed: the bech32 checksum no longer matches. */
function mistyped(key: string): string {
  const i = key.length - 10;
  return key.slice(0, i) + (key[i] === "q" ? "p" : "q") + key.slice(i + 1);
}

const cases: [string, () => string][] = [
  ["an X25519 key from age-keygen", () => keys.age],
  ["an X25519 key with one character mistyped", () => mistyped(keys.age)],
  ["an X25519 key missing its last character", () => keys.age.slice(0, -1)],
  ["an X25519 key in capitals", () => keys.age.toUpperCase()],
  ["an ssh-ed25519 line with a comment", () => keys.ed25519],
  ["an ssh-ed25519 line without its comment", () => keys.ed25519.split(" ").slice(0, 2).join(" ")],
  ["an ssh-ed25519 line whose base64 lost a chunk", () => keys.ed25519.replace(/AAAA(.{8})/, "AAAA")],
  ["an ssh-rsa line", () => keys.rsa],
  ["an ecdsa line (age takes no ECDSA keys)", () => keys.ecdsa],
  ["a post-quantum age recipient", () => `age1pq1${"q".repeat(60)}`],
  ["an age identity (the private key)", () => readFileSync(join(dir, "age.txt"), "utf8").split("\n")[2]],
];

describe("a backup recipient", () => {
  it.each(cases)("%s: the config check and age -r agree", (_what, value) => {
    const recipient = value();
    const problem = ageRecipientProblem(recipient);
    expect(problem === undefined, problem ?? "accepted").toBe(ageAccepts(recipient));
  });

  it("is judged by the check at all: most of the cases above are refused", () => {
    expect(cases.filter(([, value]) => ageRecipientProblem(value()) !== undefined).length).toBeGreaterThanOrEqual(6);
  });
});
