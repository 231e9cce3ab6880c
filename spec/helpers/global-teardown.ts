/**
 * Jest global teardown: stops and deletes the cluster the global setup started, if it started one,
 * and fails the run when setup-after-env.ts recorded unhandled rejections outside any test.
 */
import { readFileSync, rmSync } from 'node:fs';
import type { TestPostgres } from '../../scripts/test-db';
import { GLOBAL_POSTGRES_KEY } from './global-setup';

export default async function globalTeardown(): Promise<void> {
  const store = globalThis as Record<string, unknown>;
  const pg = store[GLOBAL_POSTGRES_KEY] as TestPostgres | undefined;
  if (pg) {
    delete store[GLOBAL_POSTGRES_KEY];
    await pg.remove();
  }

  const file = process.env.KCM_TEST_REJECTIONS_FILE;
  if (!file) return;
  let recorded = '';
  try {
    recorded = readFileSync(file, 'utf8');
  } catch {
    // nothing recorded
  }
  rmSync(file, { force: true });
  if (recorded) throw new Error(`Unhandled promise rejections surfaced outside any test:\n${recorded}`);
}
