// Runs s3rver in its own node process, started by test/harness/s3-server.ts with
// `node --openssl-legacy-provider` (without it, s3rver answers listings with MaxKeys with 500
// to @aws-sdk/client-s3 v3).
//   argv[2]: JSON { port: number, directory: string, buckets: string[] }
// Prints `S3RVER_READY <port>` on stdout once it listens on 127.0.0.1. Exits on SIGTERM/SIGINT
// and when its stdin closes (the parent test process died), so it never outlives the tests.
/* global process, console, setTimeout */
import S3rver from 's3rver';

const { port, directory, buckets, key, cert } = JSON.parse(process.argv[2] ?? '{}');

const server = new S3rver({
  address: '127.0.0.1',
  port,
  directory,
  silent: true,
  configureBuckets: (buckets ?? []).map((name) => ({ name })),
  ...(key && cert ? { key, cert } : {}),
});

let closing = false;
function shutdown(code) {
  if (closing) return;
  closing = true;
  // close() waits for keep-alive sockets: do not let it hold the exit
  setTimeout(() => process.exit(code), 500).unref();
  server.close().then(
    () => process.exit(code),
    () => process.exit(code),
  );
}
process.on('SIGTERM', () => shutdown(0));
process.on('SIGINT', () => shutdown(0));
process.stdin.on('end', () => shutdown(0));
process.stdin.on('error', () => shutdown(0));
process.stdin.resume();

try {
  const addr = await server.run();
  console.log(`S3RVER_READY ${addr.port}`);
} catch (err) {
  console.error(`s3rver failed to start: ${err && err.stack ? err.stack : String(err)}`);
  process.exit(1);
}
