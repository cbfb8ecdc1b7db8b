/**
 * One file shipped to the server over SSH, atomically and with its mode: its text travels on the
 * command's stdin (never on a command line, so a secret stays inside the Pulumi secret), is
 * written beside the target and renamed over it, so a reader sees the old file or the new one,
 * never half of one. The app stack and the backups ship every file this way.
 */
import { createHash } from "node:crypto";
import * as command from "@pulumi/command";
import type * as pulumi from "@pulumi/pulumi";

export const FILE_MODES = ["0644", "0755", "0600"] as const;
export type FileMode = (typeof FILE_MODES)[number];

/** A file to put on the server: absolute path, mode and text. */
export interface RemoteFile {
  readonly path: string;
  readonly mode: FileMode;
  readonly content: pulumi.Input<string>;
  /**
   * The user (and group of the same name) that owns the file, for root's writes into a user's
   * home (sshd reads authorized_keys as that user).
   * @default "root"
   */
  readonly owner?: string;
  /**
   * A command (run as root) that must accept the file once it is in place, such as `sshd -t`;
   * if it refuses, the previous file is put back and the step fails, so a file the server's own
   * tool rejects never waits on disk for the next restart (for sshd: a lockout). Root writes only.
   */
  readonly check?: string;
}

/**
 * Who writes the file: the deploy user, into a directory it owns (the app's releases), or root
 * through sudo (system paths: /etc, /usr/local, systemd units).
 */
export type Writer = "deploy" | "root";

export interface ShipFileArgs {
  readonly connection: command.types.input.remote.ConnectionArgs;
  readonly writer: Writer;
  /** Values whose change re-ships the file (a replacement, see FACTS on @pulumi/command). */
  readonly triggers?: pulumi.Input<unknown>[];
}

/**
 * What a component reports, in its registered outputs (`shipped`), for each file it ships: where
 * the file goes, its mode, and the name of the command resource whose stdin carries its text. The
 * plan, the diagram and the tests read this instead of parsing the command lines.
 */
export interface ShippedFile {
  readonly path: string;
  readonly mode: FileMode;
  /** The name of the `command:remote:Command` that ships it (its stdin is the file's text). */
  readonly command: string;
}

/** The report of a file shipped by the command named `name` (see ShippedFile). */
export function shippedFile(name: string, file: RemoteFile): ShippedFile {
  return { path: file.path, mode: file.mode, command: name };
}

/**
 * The remote command that ships `file`. It has no `delete`: a replacement (new content, a new
 * server) is created before the old command is deleted, so an `rm` there would remove the file
 * the replacement just wrote.
 */
export function shipFile(
  name: string,
  file: RemoteFile,
  args: ShipFileArgs,
  opts: pulumi.CustomResourceOptions,
): command.remote.Command {
  return new command.remote.Command(
    name,
    {
      connection: args.connection,
      create: writeFileCommand(file.path, file.mode, args.writer, file.owner, file.check),
      stdin: file.content,
      triggers: args.triggers,
    },
    opts,
  );
}

/** A shell command that writes stdin to `path` with `mode`, atomically (and checked, see RemoteFile). */
export function writeFileCommand(path: string, mode: FileMode, writer: Writer, owner?: string, check?: string): string {
  const dir = path.slice(0, path.lastIndexOf("/"));
  if (writer === "root") {
    const chown = owner ? ` && chown ${owner}:${owner} ${path}.new` : "";
    const mkdir = owner ? `sudo install -d -m 0700 -o ${owner} -g ${owner} ${dir}` : `sudo install -d -m 0755 ${dir}`;
    const write = `umask 077 && cat > ${path}.new && chmod ${mode} ${path}.new${chown}`;
    if (check === undefined) return `${mkdir} && sudo sh -c '${write} && mv -f ${path}.new ${path}'`;
    if (check.includes("'")) throw new Error(`writeFileCommand: the check of ${path} must not contain a single quote`);
    const keep = `if [ -e ${path} ]; then cp -p ${path} ${path}.old; else rm -f ${path}.old; fi`;
    const putBack = `if [ -e ${path}.old ]; then mv -f ${path}.old ${path}; else rm -f ${path}; fi`;
    const refused = `echo "${path}: refused by ${check}; the previous file is back" >&2; exit 1`;
    return (
      `${mkdir} && sudo sh -c '${write} && ${keep} && mv -f ${path}.new ${path} && ` +
      `if ${check}; then rm -f ${path}.old; else ${putBack}; ${refused}; fi'`
    );
  }
  if (check !== undefined) throw new Error(`writeFileCommand: only root's writes are checked (${path})`);
  const tmp = shq(`${path}.tmp`);
  // A private file is created private (umask 077 before it exists), so it needs no chmod and is
  // never readable by anyone else, not even between the write and the rename.
  const write =
    mode === "0600"
      ? `umask 077; mkdir -p ${shq(dir)}; cat > ${tmp}`
      : `mkdir -p ${shq(dir)}; cat > ${tmp}; chmod ${mode} ${tmp}`;
  return `set -eu; ${write}; mv ${tmp} ${shq(path)}`;
}

/** Quote a word for a POSIX shell. */
export function shq(word: string): string {
  return `'${word.replaceAll("'", `'\\''`)}'`;
}

/** One hash of a set of files' paths and texts: the trigger of a step that follows them all. */
export function filesHash(files: readonly { path: string; content: string }[]): string {
  return createHash("sha256")
    .update(files.map((f) => `${f.path}\n${f.content}`).join("\n"))
    .digest("hex");
}

/** A file's path as part of a resource name: `/etc/ssh/x.conf` → `etc-ssh-x-conf`. */
export function pathSlug(path: string): string {
  return path.replace(/^\//, "").replace(/[^a-zA-Z0-9]+/g, "-");
}
