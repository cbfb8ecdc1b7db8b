/**
 * A signature-checking S3 server on loopback for the backup suites and the benchmark:
 *   node --import tsx tests/backup/s3-server.ts DIR BUCKET...
 * Serves @20minutes/s3rver (its built-in account S3RVER/S3RVER; any other key fails the signature
 * check) from DIR, prints {"port": N} on one line once listening, and stops on SIGTERM. A process
 * of its own, so that tests may block on synchronous tools while it serves.
 */
interface S3rverInstance {
  run(): Promise<{ port: number }>;
  close(): Promise<void>;
}
type S3rverClass = new (options: Record<string, unknown>) => S3rverInstance;

async function main(): Promise<void> {
  const [dir, ...buckets] = process.argv.slice(2);
  if (!dir || buckets.length === 0) {
    console.error("usage: s3-server.ts DIR BUCKET...");
    process.exit(2);
  }
  const S3rver = require("@20minutes/s3rver") as S3rverClass;
  const server = new S3rver({
    // Loopback unless told otherwise (the lifecycle suite serves the server twin on the Docker bridge).
    address: process.env.S3_ADDRESS ?? "127.0.0.1",
    port: 0,
    silent: true,
    directory: dir,
    configureBuckets: buckets.map((name) => ({ name })),
  });
  const { port } = await server.run();
  process.on("SIGTERM", () => {
    server.close().then(() => process.exit(0));
  });
  console.log(JSON.stringify({ port }));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
