/**
 * The bench report keeps the sections other scripts measured (`npm run bench` rewrites
 * docs/benchmarks.md, which would otherwise drop them).
 */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { carriedSections } from '../../scripts/bench/report';

describe('carriedSections', () => {
  test('carries the statement classification section of the committed report, whole', () => {
    const committed = readFileSync(path.join(__dirname, '..', '..', 'docs', 'benchmarks.md'), 'utf8');
    const kept = carriedSections(committed);
    expect(kept.trim()).toBe(committed.slice(committed.indexOf('\n## Statement classification\n') + 1).trim());
    expect(kept).toContain('scripts/measure-classify.ts');
  });

  test('stops at the next top-level heading; nothing when the section or the file is missing', () => {
    expect(carriedSections('# B\n\n## Statement classification\nbody\n### kept\nmore\n## Next\nnot kept\n')).toBe('\n## Statement classification\nbody\n### kept\nmore\n');
    expect(carriedSections('# B\n\n## Other\n')).toBe('');
    expect(carriedSections(undefined)).toBe('');
  });
});
