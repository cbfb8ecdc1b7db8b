/**
 * Every stack file the project ships (and every example config) keeps the edge's invariants:
 * valid R2 bucket names, and stacks that never share a hostname, a bucket, or a zone's settings.
 */
import { describe, expect, it } from "vitest";
import { bucketNames, r2BucketNameProblem } from "../../components/storage";
import { resolveConfig } from "../../config/resolve";
import { stackValues } from "../support/fixtures";
import { allStackFiles } from "../support/stack-files";

const files = allStackFiles();

describe("stack files", () => {
  it("include at least prod and staging", () => {
    expect(files.map((f) => f.file)).toEqual(expect.arrayContaining(["Pulumi.prod.yaml", "Pulumi.staging.yaml"]));
  });

  it.each(files.map((f) => [f.file, f] as const))("%s names its buckets validly for R2", (_file, { stack, values }) => {
    const appName = String(values.appName);
    for (const name of Object.values(bucketNames(`${appName}-${stack}`))) {
      expect(r2BucketNameProblem(name), name).toBeUndefined();
    }
  });
});

describe("prod and staging", () => {
  const prod = resolveConfig("prod", stackValues("prod"));
  const staging = resolveConfig("staging", stackValues("staging"));

  it("share no hostname", () => {
    expect(prod.hostnames.filter((h) => staging.hostnames.includes(h))).toEqual([]);
  });

  it("share no bucket", () => {
    const prodBuckets = Object.values(bucketNames(prod.prefix));
    expect(Object.values(bucketNames(staging.prefix)).filter((b) => prodBuckets.includes(b))).toEqual([]);
  });

  it("do not both manage the settings of a zone they share", () => {
    const sameZone = prod.domain === staging.domain && prod.cloudflareAccountId === staging.cloudflareAccountId;
    expect(sameZone && prod.manageZoneSettings && staging.manageZoneSettings).toBe(false);
  });

  it("do not both use one tunnel name", () => {
    expect(prod.prefix).not.toBe(staging.prefix);
  });
});
