/**
 * A real browser for the dashboard tests: Debian's chromium (installed by .ci/run when missing),
 * driven headless by playwright-core. Without it the test fails and says how to fix that; it is
 * never skipped.
 */
import { accessSync, constants } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';

/** The chromium binary: KCM_CHROMIUM_PATH, or Debian's. */
export const CHROMIUM_PATH = process.env.KCM_CHROMIUM_PATH ?? '/usr/bin/chromium';

const ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

/** Starts headless chromium; rejects with a message that names the fix when it cannot. */
export async function launchChromium(): Promise<Browser> {
  try {
    accessSync(CHROMIUM_PATH, constants.X_OK);
  } catch {
    throw new Error(
      `The dashboard test needs chromium at ${CHROMIUM_PATH}, and there is none. ` +
        'Install it (Debian/Ubuntu: apt-get install chromium; .ci/run does this) or set KCM_CHROMIUM_PATH to a Chromium binary.',
    );
  }
  try {
    return await chromium.launch({ executablePath: CHROMIUM_PATH, headless: true, args: ARGS, timeout: 30_000 });
  } catch (error) {
    throw new Error(`Chromium at ${CHROMIUM_PATH} could not start: ${(error as Error).message}`);
  }
}
