/**
 * What a config error may echo back, decided once for every message: never the value of a key
 * that is secret (declared so, or set with `--secret`), and never anything that looks like a
 * private key or a token, whatever key it was put in. Error messages land in CI logs and in pull
 * requests; a pasted token there is a leaked token.
 */

/** What replaces a hidden value in a message. */
export const HIDDEN = "(hidden: looks like a secret)";

/**
 * Shapes of secrets people paste into the wrong key: private keys (PEM, OpenSSH, age), tokens with
 * a vendor prefix, JWTs, webhook and ping URLs, URLs with a password in them, and long random strings (API tokens, S3
 * secret keys: 40 characters or more of a token's alphabet with letters and digits mixed).
 */
const SECRET_SHAPES: readonly RegExp[] = [
  /-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----[\s\S]*?(-----END [A-Z0-9 ]*PRIVATE KEY-----|$)/g,
  // The base64 of "openssh-key-v1", how an OpenSSH private key's body starts.
  /b3BlbnNzaC1rZXktdjE[A-Za-z0-9+/=\s]*/g,
  /AGE-SECRET-KEY-1[0-9A-Z]+/g,
  /\b(ghp|gho|ghu|ghs|ghr|github_pat|glpat|xox[abposr]|sk|sk_live|rk_live|pk_live|npm|hf|dop_v1)[-_][A-Za-z0-9_-]{16,}/g,
  /\b(AKIA|ASIA)[0-9A-Z]{16}\b/g,
  /\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*/g,
  // Alert channels' URLs, whose path is the credential: Slack and Discord webhooks, healthchecks pings.
  /(?<=hooks\.slack\.com\/services\/|discord(app)?\.com\/api\/webhooks\/|hc-ping\.com\/)[^\s"']+/g,
  // A password in a URL's user info: https://user:password@host.
  /(?<=[a-z][a-z0-9+.-]*:\/\/[^\s:/@]*:)[^\s@/]+(?=@)/gi,
];

/** A run of a token's alphabet, judged by `isRandomLooking`. */
const LONG_RUN = /[A-Za-z0-9_+/=-]{40,}/g;

/**
 * Whether a long run of characters looks random (a token) rather than a word, a path or a public
 * key: letters and digits mixed, and not an SSH public key's blob (`AAAA…`), an age public key
 * (`age1…`) or an image digest.
 */
function isRandomLooking(run: string, before: string): boolean {
  if (run.startsWith("AAAA") || /sha256:$/.test(before) || /^age1[02-9ac-hj-np-z]+$/.test(run)) return false;
  return /[0-9]/.test(run) && /[A-Za-z]/.test(run);
}

/** The text with every secret-looking part, and each of `secretValues`, replaced by HIDDEN. */
export function withoutSecrets(text: string, secretValues: readonly string[] = []): string {
  let out = text;
  // Longest first, so a value that contains another is hidden whole. Short values (a flag, a
  // port) are not hidden: they would blank out ordinary words of the message.
  for (const value of [...secretValues].filter((v) => v.length >= 6).sort((a, b) => b.length - a.length)) {
    out = out.split(value).join(HIDDEN);
    // A value shown inside a JSON string has its quotes and backslashes escaped.
    const quoted = JSON.stringify(value).slice(1, -1);
    if (quoted !== value) out = out.split(quoted).join(HIDDEN);
  }
  for (const shape of SECRET_SHAPES) out = out.replace(shape, HIDDEN);
  return out.replace(LONG_RUN, (run, at: number) => (isRandomLooking(run, out.slice(0, at)) ? HIDDEN : run));
}

/** Whether a value holds anything that looks like a secret (so that it is not shown at all). */
export function looksSecret(value: string): boolean {
  return withoutSecrets(value) !== value;
}
