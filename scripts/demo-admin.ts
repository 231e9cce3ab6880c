/**
 * The operator demo (`npm run demo:admin`): a manager with the admin endpoint on, under a load that
 * rises and falls, so an operator can open the dashboard in a browser, watch the pool grow, press
 * reset / expire / renew and see it refill — and do the same from `kcm` in a second terminal.
 *
 * It uses DATABASE_URL when set; otherwise it starts a throwaway server (scripts/embedded-db.ts).
 * It stops by itself after KCM_DEMO_SECONDS (default 600) or on Ctrl-C, and removes what it started.
 * The endpoint listens on 127.0.0.1:KCM_DEMO_ADMIN_PORT (default 9470) with a fresh random token.
 */
import { randomBytes } from 'node:crypto';
import winston from 'winston';
import { closeConnectionInstance, getConnectionInstance, isConnectionManagerError } from '../lib';
import { startDemoDatabase, type DemoDatabase } from './embedded-db';

const SECONDS = Number(process.env.KCM_DEMO_SECONDS ?? 600);
const PORT = Number(process.env.KCM_DEMO_ADMIN_PORT ?? 9470);
const MIN = 10;
const MAX = 20;

let database: DemoDatabase | undefined;
let stopping = false;

async function main(): Promise<void> {
  const url = process.env.DATABASE_URL ?? (database = await startDemoDatabase()).url;
  const token = randomBytes(18).toString('base64url');
  const manager = getConnectionInstance({
    connection: url,
    pool: { min: MIN, max: MAX, acquireTimeoutMs: 10_000 },
    admin: { port: PORT, token },
    logger: winston.createLogger({
      level: 'info',
      format: winston.format.printf((info) => `  [pool] ${String(info.message)}`),
      transports: [new winston.transports.Console()],
    }),
  });
  await manager.ready();
  const { url: adminUrl } = await manager.adminReady();
  console.log(`
The manager is running (min ${MIN}, max ${MAX}) with its admin endpoint at ${adminUrl}

  Dashboard:  open ${adminUrl}/ in a browser and paste the token:
              ${token}
  Stats:      KCM_ADMIN_URL=${adminUrl} KCM_ADMIN_TOKEN=${token} npm run --silent kcm -- stats --watch
  Reset:      KCM_ADMIN_URL=${adminUrl} KCM_ADMIN_TOKEN=${token} npm run --silent kcm -- reset
  Metrics:    curl -s ${adminUrl}/metrics

A load that rises and falls runs against the pool: every 15 s a wave of up to 60 callers runs
short queries, so the pool grows to ${MAX} with callers waiting, then drains back.
Stops by itself in ${SECONDS} s, or press Ctrl-C.
`);
  const deadline = Date.now() + SECONDS * 1000;
  let wave = 0;
  while (!stopping && Date.now() < deadline) {
    wave++;
    const callers = 20 + ((wave * 13) % 41); // 20..60, varying wave to wave
    const until = Date.now() + 8_000;
    await Promise.all(
      Array.from({ length: callers }, async () => {
        while (!stopping && Date.now() < until) {
          try {
            await manager.withConnection((conn) => conn.query('SELECT pg_sleep(0.05 + random() * 0.1)'));
          } catch (error) {
            // Resets and closes are expected to interrupt now and then; anything else is reported.
            if (!isConnectionManagerError(error, 'E_POOL_CLOSED')) console.log(`  [load] ${error instanceof Error ? error.message : String(error)}`);
          }
        }
      }),
    );
    const pause = Date.now() + 7_000;
    while (!stopping && Date.now() < pause) await new Promise((resolve) => setTimeout(resolve, 250));
  }
  await shutdown(0);
}

async function shutdown(code: number): Promise<void> {
  stopping = true;
  await closeConnectionInstance().catch(() => undefined);
  await database?.stop().catch(() => undefined);
  database = undefined;
  process.exit(code);
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    console.log('\nStopping…');
    void shutdown(0);
  });
}

main().catch(async (error: unknown) => {
  console.error(error instanceof Error ? error.message : String(error));
  await shutdown(1);
});
