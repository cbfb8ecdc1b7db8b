/**
 * The `.env` beside the compose file: the generated passwords, the tunnel token and the app
 * secrets, in the dotenv dialect Compose v2 reads. Pure; its text is a secret and only ever
 * travels inside a Pulumi secret to the server's stdin.
 */

const NAME = /^[A-Z_][A-Z0-9_]*$/;

/**
 * Quote one value so Compose reads it back byte for byte: single quotes keep everything literal
 * (no `$` interpolation, no escapes); a value holding a single quote or a line break goes into
 * double quotes with `\`, `"`, `$` and newlines escaped.
 */
export function quoteDotenvValue(value: string): string {
  if (!value.includes("'") && !/[\r\n]/.test(value)) return `'${value}'`;
  const escaped = value
    .replaceAll("\\", "\\\\")
    .replaceAll('"', '\\"')
    .replaceAll("$", () => "\\$")
    .replaceAll("\r", "\\r")
    .replaceAll("\n", "\\n");
  return `"${escaped}"`;
}

/** The `.env` text: one `NAME=value` line per variable, sorted by name. */
export function renderDotenv(values: Readonly<Record<string, string>>): string {
  const names = Object.keys(values).sort();
  for (const name of names) {
    if (!NAME.test(name)) throw new Error(`.env: "${name}" is not an environment variable name (A-Z, 0-9, _)`);
  }
  const header = "# Written by webstack's deploy (mode 0600). Secrets: never commit or copy this file.\n";
  return header + names.map((n) => `${n}=${quoteDotenvValue(values[n])}\n`).join("");
}
