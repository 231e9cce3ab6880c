/**
 * A real browser for the dashboard tests, driven headless by playwright-core. It is never skipped:
 * when no browser can start, the test fails and says how to fix that.
 *
 * The browser is, in this order: the binary KCM_CHROMIUM_PATH names; /usr/bin/chromium (Debian's)
 * when it is executable; else the Chromium that the `@sparticuz/chromium` dev dependency carries,
 * so that a machine with no browser installed still runs the test after `npm install`.
 */
import { execFile } from 'node:child_process';
import { accessSync, constants, existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { moveIntoPlace } from '../../scripts/pg-binaries';

/** Debian's chromium, used when present. */
const SYSTEM_CHROMIUM = '/usr/bin/chromium';

/** Flags for every binary: no sandbox (tests may run as root), no GPU, and no traffic to Google. */
const ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

const EXTRACT_TIMEOUT_MS = 90_000;

interface ChromiumBinary {
  executablePath: string;
  /** Flags this binary needs besides ARGS. */
  args: string[];
}

function isExecutable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** The version of the installed @sparticuz/chromium package (its package.json is not exported). */
function packageVersion(entry: string): string {
  for (let dir = path.dirname(entry); dir !== path.dirname(dir); dir = path.dirname(dir)) {
    const file = path.join(dir, 'package.json');
    if (!existsSync(file)) continue;
    const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name?: string; version?: string };
    if (pkg.name === '@sparticuz/chromium' && pkg.version) return pkg.version;
  }
  throw new Error(`no package.json of @sparticuz/chromium above ${entry}`);
}

/** Runs the package's own extraction in a child process whose TMPDIR is dir, where it writes everything. */
function extractInto(entry: string, dir: string): Promise<string> {
  const script =
    'const m = require(process.argv[1]); (m.default ?? m).executablePath()' +
    '.then((p) => process.stdout.write(p), (e) => { console.error(e); process.exit(1); });';
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      ['-e', script, entry],
      { env: { ...process.env, TMPDIR: dir }, timeout: EXTRACT_TIMEOUT_MS },
      (error, stdout, stderr) => {
        if (error) reject(new Error(`extracting @sparticuz/chromium into ${dir} failed: ${error.message}\n${stderr.trim()}`));
        else resolve(stdout.trim());
      },
    );
  });
}

/**
 * The @sparticuz/chromium binary, extracted once into a cache directory of this user, keyed by the
 * package version, and reused by later runs.
 *
 * The package itself extracts into os.tmpdir() under fixed names (/tmp/chromium, /tmp/fonts, the
 * swiftshader libraries) and returns /tmp/chromium as soon as that file exists, even while another
 * process is still writing it: two test runs at once could launch a half-written binary, and
 * another user's /tmp/chromium would be run as this user. So the extraction runs in a child process
 * whose TMPDIR is a fresh private directory, which is then renamed into place: the cache directory
 * either does not exist or is complete, and a process that loses the rename uses the winner's copy.
 */
async function npmChromium(): Promise<ChromiumBinary> {
  let entry: string;
  try {
    entry = require.resolve('@sparticuz/chromium');
  } catch {
    throw new Error('@sparticuz/chromium is not installed (run `npm install`)');
  }
  const { default: sparticuz } = await import('@sparticuz/chromium');
  const uid = process.getuid?.() ?? 0;
  const cacheDir = path.join(os.tmpdir(), `kcm-chromium-${packageVersion(entry)}-uid${uid}`);
  const executablePath = path.join(cacheDir, 'chromium');
  const trusted = (): boolean => {
    // Only a directory this user made and nobody else can write to is run from.
    const stat = statSync(cacheDir);
    return stat.uid === uid && (stat.mode & 0o022) === 0;
  };
  if (!existsSync(cacheDir)) {
    const temporary = mkdtempSync(`${cacheDir}.tmp-`);
    try {
      const extracted = await extractInto(entry, temporary);
      if (extracted !== path.join(temporary, 'chromium')) {
        throw new Error(`@sparticuz/chromium extracted to ${extracted}, not into ${temporary}`);
      }
      moveIntoPlace(temporary, cacheDir);
    } finally {
      rmSync(temporary, { recursive: true, force: true });
    }
  }
  if (!trusted() || !isExecutable(executablePath)) {
    throw new Error(`${cacheDir} holds no usable Chromium, or was not made by this user: delete it and run the test again.`);
  }
  // The package's flags suit one page per browser (serverless functions): with --single-process,
  // closing a page's context ends the whole browser, and the dashboard tests open several pages.
  return { executablePath, args: sparticuz.args.filter((arg) => arg !== '--single-process') };
}

/** KCM_CHROMIUM_PATH, else Debian's chromium, else the npm one. */
async function findChromium(): Promise<ChromiumBinary> {
  const chosen = process.env.KCM_CHROMIUM_PATH;
  if (chosen) {
    if (!isExecutable(chosen)) throw new Error(`KCM_CHROMIUM_PATH=${chosen} is not an executable file: fix or unset it.`);
    return { executablePath: chosen, args: [] };
  }
  if (isExecutable(SYSTEM_CHROMIUM)) return { executablePath: SYSTEM_CHROMIUM, args: [] };
  return npmChromium();
}

/** Starts headless chromium; rejects with a message that names the fix when it cannot. */
export async function launchChromium(): Promise<Browser> {
  let binary: ChromiumBinary;
  try {
    binary = await findChromium();
  } catch (error) {
    throw new Error(
      `The dashboard test found no Chromium: ${(error as Error).message} ` +
        'Run `npm install` (it brings @sparticuz/chromium), install one (Debian/Ubuntu: apt-get install chromium), ' +
        'or set KCM_CHROMIUM_PATH to a Chromium binary.',
    );
  }
  const args = [...new Set([...binary.args, ...ARGS])];
  try {
    return await chromium.launch({ executablePath: binary.executablePath, headless: true, args, timeout: 30_000 });
  } catch (error) {
    throw new Error(`Chromium at ${binary.executablePath} could not start: ${(error as Error).message}`);
  }
}
