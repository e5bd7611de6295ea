// A database of its own for a script (benchmarks, screenshots): a fresh database on
// DATABASE_URL's server when it is set, an embedded PostgreSQL otherwise; stop() drops it.
import os from "node:os";
import pg from "pg";
import { startEmbeddedDatabase } from "../server/src/store/embedded-database.js";

/** scratchDatabase creates an empty database (not migrated) and returns its URL. */
export async function scratchDatabase(prefix: string): Promise<{ url: string; stop: () => Promise<void> }> {
  const name = `${prefix}_${Date.now()}`;
  if (process.env.DATABASE_URL) {
    const admin = new pg.Client({ connectionString: process.env.DATABASE_URL });
    await admin.connect();
    await admin.query(`create database ${name}`);
    await admin.end();
    const url = new URL(process.env.DATABASE_URL);
    url.pathname = `/${name}`;
    return {
      url: url.toString(),
      stop: async () => {
        const again = new pg.Client({ connectionString: process.env.DATABASE_URL });
        await again.connect();
        await again.query(`drop database if exists ${name} with (force)`);
        await again.end();
      },
    };
  }
  const embedded = await startEmbeddedDatabase({ dataDir: `${os.tmpdir()}/${prefix}-${process.pid}`, persistent: false });
  return { url: embedded.url, stop: embedded.stop };
}

