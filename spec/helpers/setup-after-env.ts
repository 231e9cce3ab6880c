/**
 * Unhandled promise rejections fail the test run.
 *
 * While a test file runs, jest-circus listens on the real process and fails the test (or hook) that
 * made the rejected promise, even when the rejection surfaces after that test ended. Outside that
 * window (after a file's last hook, e.g. in a worker waiting for its next file) nothing would. The
 * listener below, on the real process (the `process` a test sees is a copy), records rejections
 * that jest-circus is not there to see; the global teardown then fails the run.
 */
import { appendFileSync } from 'node:fs';
import { inspect } from 'node:util';
import { runInThisContext } from 'node:vm';

const installed = Symbol.for('knex-connection-manager.test.rejection-recorder');
const realProcess = runInThisContext('process') as NodeJS.Process & { [installed]?: true };

/** jest-circus's own listener, present while a test file runs. */
const circusIsListening = () =>
  realProcess.listeners('unhandledRejection').some((listener) => listener.name === 'unhandledRejectionListener');

if (!realProcess[installed]) {
  realProcess[installed] = true;
  realProcess.on('unhandledRejection', (reason) => {
    if (circusIsListening()) return;
    const text = `Unhandled promise rejection outside any test: ${inspect(reason)}\n`;
    realProcess.stderr.write(text);
    realProcess.exitCode = 1;
    const file = realProcess.env.KCM_TEST_REJECTIONS_FILE;
    if (file) appendFileSync(file, text);
  });
}
