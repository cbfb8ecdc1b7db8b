// @ts-check
/**
 * The dead man's switch: a Cloudflare Worker that runs every hour and alerts when the server's
 * daily backup has not completed for too long. A dead server can alert no one, so this check lives
 * on Cloudflare and looks at the one thing a working server leaves behind: the backup writes
 * `latest.json` at the root of its R2 bucket each time it completes.
 *
 * Uploaded as is (no build step, no dependencies): plain JavaScript, type-checked through JSDoc.
 *
 * Bindings:
 * - BACKUPS        the backups bucket (R2)
 * - ALERT_URL      secret: the webhook; never logged nor put in a message
 * - ALERT_CHANNEL  "ntfy" | "slack" | "healthchecks": the format ALERT_URL expects
 * - ALERT_EMAIL    optional, ntfy only: ntfy also mails the alert there
 * - STACK          e.g. "shop-prod", in every title
 * - BUCKET         the bucket's name, for the message
 * - MAX_AGE_HOURS  e.g. "26": a day plus slack for a slow backup
 */

const LATEST = "latest.json";
/** What the switch remembers between runs, beside the backups (the root is not under the lock). */
const STATE = "dead-mans-switch.json";
const HOUR = 3_600_000;
/** An alert nobody acted on is sent again this often, so it does not sink in a busy channel. */
const REMIND_EVERY = 12 * HOUR;
const CHANNELS = ["ntfy", "slack", "healthchecks"];

/**
 * @typedef {object} Env
 * @property {BackupsBucket} BACKUPS
 * @property {string} ALERT_URL
 * @property {string} ALERT_CHANNEL
 * @property {string} [ALERT_EMAIL]
 * @property {string} STACK
 * @property {string} BUCKET
 * @property {string} MAX_AGE_HOURS
 *
 * The part of the R2 bucket binding this worker uses.
 * @typedef {object} BackupsBucket
 * @property {(key: string) => Promise<{ uploaded: Date } | null>} head
 * @property {(key: string) => Promise<{ text(): Promise<string> } | null>} get
 * @property {(key: string, value: string, options?: { httpMetadata?: { contentType?: string } }) => Promise<unknown>} put
 *
 * Times as ISO strings, so that the object reads well in the bucket.
 * @typedef {object} State
 * @property {string} [firstSeen] when the switch first found no latest.json: the start of the wait
 * @property {string} [alertingSince] when the alert went out; unset while backups are fresh
 * @property {string} [lastSent] when the alert (or its last reminder) went out
 *
 * @typedef {object} Message
 * @property {"alert" | "resolved"} kind
 * @property {string} title
 * @property {string} body
 */

export default {
  /**
   * @param {{ scheduledTime: number }} controller
   * @param {Env} env
   */
  async scheduled(controller, env) {
    // The run's own time rather than the clock: Cloudflare sets it to the minute the cron fired,
    // and the tests move it.
    await check(env, controller.scheduledTime);
  },

  // The worker has nothing to serve; the cron trigger is its only entry.
  async fetch() {
    return new Response("not found", { status: 404 });
  },
};

/**
 * One run: how old is the last backup, and whom must that be told?
 * @param {Env} env
 * @param {number} now ms since the epoch
 */
async function check(env, now) {
  // Configuration errors fail every run, not only the one that would have alerted.
  const maxAge = maxAgeMs(env.MAX_AGE_HOURS);
  channel(env.ALERT_CHANNEL);

  const latest = await env.BACKUPS.head(LATEST);
  const { state, stored } = await readState(env.BACKUPS);
  // A new stack has no latest.json before its first backup: the wait starts when the switch first
  // saw it missing, so a stack whose backup never works still alerts. Once a backup exists, its
  // time is the start and firstSeen is of no more use.
  const firstSeen = latest ? undefined : (state.firstSeen ?? stamp(now));
  const since = latest ? latest.uploaded.getTime() : Date.parse(/** @type {string} */ (firstSeen));
  const stale = now - since > maxAge;

  // An alert with no lastSent on record is due again (NaN is never "less than").
  const reminderDue = !(now - Date.parse(state.lastSent ?? "") < REMIND_EVERY);

  /** @type {State} */
  let next = { ...state, firstSeen };
  if (stale && !state.alertingSince) {
    await send(env, alertMessage(env, now, since, latest !== null, false));
    next = { firstSeen, alertingSince: stamp(now), lastSent: stamp(now) };
  } else if (stale && reminderDue) {
    await send(env, alertMessage(env, now, since, latest !== null, true));
    next = { firstSeen, alertingSince: state.alertingSince, lastSent: stamp(now) };
  } else if (!stale && state.alertingSince && latest) {
    // Only a backup resolves: a latest.json that vanished restarts the wait, it is no good news.
    await send(env, resolvedMessage(env, since));
    next = { firstSeen };
  }

  // Written only when it changes: an hourly write of the same thing is a cost and says nothing.
  // Never reached when a send threw, so the next run tries again from the same state.
  const text = JSON.stringify(tidy(next));
  if (text !== (stored ?? "{}")) {
    await env.BACKUPS.put(STATE, text, { httpMetadata: { contentType: "application/json" } });
  }
}

/**
 * @param {string} value
 * @returns {number}
 */
function maxAgeMs(value) {
  const hours = Number(value);
  if (!value || !Number.isFinite(hours) || hours <= 0) {
    throw new Error(`MAX_AGE_HOURS must be a positive number of hours, got ${JSON.stringify(value)}`);
  }
  return hours * HOUR;
}

/**
 * @param {string} name
 * @returns {"ntfy" | "slack" | "healthchecks"}
 */
function channel(name) {
  if (!CHANNELS.includes(name)) {
    throw new Error(`ALERT_CHANNEL must be one of ${CHANNELS.join(", ")}, got ${JSON.stringify(name)}`);
  }
  return /** @type {"ntfy" | "slack" | "healthchecks"} */ (name);
}

/**
 * The state, and its text as stored (null when there is none). An unreadable object starts over
 * rather than failing every run: the worst that does is one alert too many.
 * @param {BackupsBucket} bucket
 * @returns {Promise<{ state: State, stored: string | null }>}
 */
async function readState(bucket) {
  const object = await bucket.get(STATE);
  const stored = object ? await object.text() : null;
  try {
    const parsed = JSON.parse(stored ?? "{}");
    return { state: tidy(parsed && typeof parsed === "object" ? parsed : {}), stored };
  } catch {
    console.warn(`${STATE} is not JSON; starting over`);
    return { state: {}, stored };
  }
}

/**
 * The known fields that hold a time, in one order, so that two states compare as their JSON. A
 * field that is no time is dropped: a NaN start would never grow old enough to alert.
 * @param {Record<string, unknown>} state
 * @returns {State}
 */
function tidy(state) {
  /** @type {(key: string) => string | undefined} */
  const time = (key) => {
    const value = state[key];
    return typeof value === "string" && !Number.isNaN(Date.parse(value)) ? value : undefined;
  };
  return { firstSeen: time("firstSeen"), alertingSince: time("alertingSince"), lastSent: time("lastSent") };
}

/** @param {number} ms */
function stamp(ms) {
  return new Date(ms).toISOString();
}

/**
 * For people: an ISO time to the second.
 * @param {number} ms
 */
function iso(ms) {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");
}

/**
 * @param {Env} env
 * @param {number} now
 * @param {number} since when the last backup finished, or when the wait for the first began
 * @param {boolean} backedUp whether any backup ever finished
 * @param {boolean} reminder
 * @returns {Message}
 */
function alertMessage(env, now, since, backedUp, reminder) {
  const hours = Math.floor((now - since) / HOUR);
  const what = backedUp ? `no backup for ${hours} hours` : `no backup has completed since ${iso(since)}`;
  const last = backedUp
    ? `The last backup finished at ${iso(since)}, in bucket ${env.BUCKET}.`
    : `No backup has ever finished in bucket ${env.BUCKET}: it has had no ${LATEST} since ${iso(since)}.`;
  return {
    kind: "alert",
    title: reminder ? `still ${what}` : what,
    body: [
      last,
      `The daily backup should have run since: the server may be down or its backup timer stopped.`,
      `Check on the server: systemctl status webstack-backup.timer, journalctl -u webstack-backup;`,
      `if the server is lost, docs/restore.md.`,
    ].join("\n"),
  };
}

/**
 * @param {Env} env
 * @param {number} finished
 * @returns {Message}
 */
function resolvedMessage(env, finished) {
  return {
    kind: "resolved",
    title: `backups are back: the last finished at ${iso(finished)}`,
    body: `A backup finished at ${iso(finished)}, in bucket ${env.BUCKET}.`,
  };
}

/**
 * Posts the message in the channel's format. The server's own alert script sends the same
 * formats, so a channel sees one kind of message whoever sent it: keep the two in step.
 * @param {Env} env
 * @param {Message} message
 */
async function send(env, message) {
  const alert = message.kind === "alert";
  const title = `[${env.STACK}] ${message.title}`;
  let url = env.ALERT_URL;
  /** @type {RequestInit} */
  let request;
  switch (channel(env.ALERT_CHANNEL)) {
    case "ntfy": {
      /** @type {Record<string, string>} */
      const headers = {
        Title: title,
        Priority: alert ? "high" : "default",
        Tags: alert ? "rotating_light" : "white_check_mark",
      };
      if (env.ALERT_EMAIL) headers.Email = env.ALERT_EMAIL;
      request = { headers, body: message.body };
      break;
    }
    case "slack": {
      const emoji = alert ? ":rotating_light:" : ":white_check_mark:";
      request = {
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ text: `${emoji} ${title}\n${message.body}` }),
      };
      break;
    }
    case "healthchecks":
      // A ping URL: /fail marks the check down, the URL itself marks it up again.
      if (alert) url = `${url.replace(/\/+$/, "")}/fail`;
      request = { body: `${title}\n${message.body}` };
      break;
  }

  // Failing loudly marks the cron run as failed, and leaves the state as it was for the next run.
  // Neither error names the URL: it is a secret, and errors end up in the dashboard's logs.
  let response;
  try {
    response = await fetch(url, { method: "POST", ...request });
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new Error(`could not reach the ${env.ALERT_CHANNEL} webhook: ${redact(reason, [url, env.ALERT_URL])}`);
  }
  // Drain the body so that the connection is released before the run ends.
  await response.arrayBuffer();
  if (!response.ok) {
    throw new Error(`the ${env.ALERT_CHANNEL} webhook answered ${response.status} to "${message.title}"`);
  }
}

/**
 * The text with the webhook taken out: the runtime quotes a URL it cannot use ("Invalid URL: …").
 * @param {string} text
 * @param {string[]} urls
 */
function redact(text, urls) {
  let out = text;
  for (const url of urls) if (url) out = out.split(url).join("<ALERT_URL>");
  // And any other spelling of it the runtime may have made (normalised, percent-encoded).
  return out.replace(/[a-z][a-z0-9+.-]*:\/\/\S*/gi, "<ALERT_URL>");
}
