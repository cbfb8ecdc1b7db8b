/**
 * The release's `.registries` file, which the deploy script reads to log in before it pulls: one
 * line per registry, `server<TAB>username<TAB>base64(password)`, so a password of any bytes passes
 * through `base64 -d` to `docker login --password-stdin` unchanged. Pure; its text is a secret and
 * travels like the `.env`, inside a Pulumi secret on the SSH session's stdin.
 */
import type { Registry } from "../config/registries";

/** The `.registries` text, in the config's order. `passwords` holds each registry's password by its secret's name. */
export function renderRegistryLogins(
  registries: readonly Registry[],
  passwords: Readonly<Record<string, string>>,
): string {
  return registries
    .map((r) => {
      const password = passwords[r.passwordSecret];
      if (password === undefined)
        throw new Error(`.registries: no password for ${r.server} (secrets:${r.passwordSecret})`);
      for (const field of [r.server, r.username]) {
        if (/\s/.test(field)) throw new Error(`.registries: "${field}" holds white space`);
      }
      return `${r.server}\t${r.username}\t${Buffer.from(password, "utf8").toString("base64")}\n`;
    })
    .join("");
}
