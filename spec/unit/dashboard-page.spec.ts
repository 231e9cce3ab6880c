/**
 * The dashboard page inlines its script files (render.js, then client.js) as one script allowed by
 * its hash, and refuses to start when a file is missing or holds text that would end the inline
 * `<script>` early, naming the file. The browser side is spec/integration/dashboard.spec.ts.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';

type PageModule = typeof import('../../lib/admin/dashboard/page');

const DIR = path.resolve(__dirname, '../../lib/admin/dashboard');

/** A fresh copy of the module (it builds the page once), reading `replace[file]` instead of that file's text. */
function loadPage(replace: Record<string, string | Error> = {}): PageModule {
  const fakeRead = (file: fs.PathOrFileDescriptor, options?: unknown): string | Buffer => {
    const override = typeof file === 'string' ? replace[path.basename(file)] : undefined;
    if (override instanceof Error) throw override;
    if (override !== undefined) return override;
    return (fs.readFileSync as (f: fs.PathOrFileDescriptor, o?: unknown) => string | Buffer)(file, options);
  };
  let loaded: PageModule | undefined;
  jest.isolateModules(() => {
    jest.doMock('node:fs', () => ({ ...jest.requireActual<typeof fs>('node:fs'), readFileSync: fakeRead }));
    loaded = jest.requireActual<PageModule>('../../lib/admin/dashboard/page');
  });
  jest.dontMock('node:fs');
  return loaded!;
}

test('the page inlines render.js then client.js as one script, allowed by the hash of exactly that text', () => {
  const { dashboardPage, DASHBOARD_SCRIPT_PATHS } = loadPage();
  expect(DASHBOARD_SCRIPT_PATHS).toEqual([path.join(DIR, 'render.js'), path.join(DIR, 'client.js')]);
  const script = `${fs.readFileSync(path.join(DIR, 'render.js'), 'utf8')}\n${fs.readFileSync(path.join(DIR, 'client.js'), 'utf8')}`;
  const { html, csp } = dashboardPage();
  expect(html.match(/<script>/g)).toHaveLength(1);
  expect(/<script>([\s\S]*)<\/script>/.exec(html)?.[1]).toBe(script);
  expect(csp).toContain(`script-src 'sha256-${createHash('sha256').update(script, 'utf8').digest('base64')}'`);
  expect(script.indexOf('var kcmRender')).toBeLessThan(script.indexOf('kcmRender.esc'));
});

test.each(['render.js', 'client.js'])('a missing %s fails with what a build must copy', (file) => {
  const { dashboardPage } = loadPage({ [file]: Object.assign(new Error(`ENOENT: no such file, open '${file}'`), { code: 'ENOENT' }) });
  expect(() => dashboardPage()).toThrow(
    /script is missing \(ENOENT.*a build must copy lib\/admin\/dashboard\/render\.js and lib\/admin\/dashboard\/client\.js to dist\/admin\/dashboard\//,
  );
});

test.each(['render.js', 'client.js'])('a "</script" in %s is refused, naming the file', (file) => {
  const { dashboardPage } = loadPage({ [file]: 'var s = "</SCRIPT>";\n' });
  expect(() => dashboardPage()).toThrow(`${path.join(DIR, file)} contains "</script", which would end the inline script early.`);
});
