/**
 * The manager's statement policy on its own: session-state warnings (once per kind, per manager,
 * with the advice of that kind), classification with the declared names, and learning from a
 * replica's refusals (counted, logged once per name, off with `learnFromReadOnlyErrors: false`).
 */
import { SESSION_STATE_ADVICE } from '../../lib/routing/session-state';
import { StatementPolicy } from '../../lib/routing/statement-policy';
import { capturingLogger } from '../helpers/silent-logger';

const NO_NAMES: { primaryFunctions: string[]; primaryRelations: string[]; learnFromReadOnlyErrors: boolean } = {
  primaryFunctions: [],
  primaryRelations: [],
  learnFromReadOnlyErrors: true,
};

function policyWith(routing: Partial<typeof NO_NAMES> = {}) {
  const { logger, lines } = capturingLogger('debug');
  const policy = new StatementPolicy({ ...NO_NAMES, ...routing }, logger);
  return { policy, lines, warnings: () => lines.filter((l) => l.level === 'warn') };
}

describe('session-state warnings', () => {
  test.each([
    ['SET search_path = app', 'set'],
    ["SELECT set_config('search_path', 'app', false)", 'set'],
    ['CREATE TEMP TABLE scratch (x int)', 'temp-table'],
    ['PREPARE q AS SELECT 1', 'prepare'],
    ['BEGIN', 'transaction'],
    ['DECLARE c CURSOR FOR SELECT 1', 'cursor'],
    ['LISTEN jobs', 'listen'],
  ] as const)('%j warns once with the advice for %s', (sql, kind) => {
    const { policy, warnings } = policyWith();
    policy.classify(sql, true);
    policy.classify(sql, true);
    expect(warnings()).toHaveLength(1);
    expect(warnings()[0].message).toContain(SESSION_STATE_ADVICE[kind]);
    expect(warnings()[0].meta).toMatchObject({ sessionState: kind });
    expect(policy.stats().sessionStateWarnings).toEqual([kind]);
  });

  test('each kind is warned about once, whatever statement shows it', () => {
    const { policy, warnings } = policyWith();
    for (const sql of ['SET a.b = 1', 'RESET a.b', "SELECT set_config('a.b', '2', false)", 'CREATE TEMP TABLE t1 (x int)', "SELECT 1 INTO TEMP t2"]) {
      policy.classify(sql, true);
    }
    expect(warnings().map((l) => l.meta.sessionState)).toEqual(['set', 'temp-table']);
  });

  test('plain reads and writes, and statements classified without the warning (readKnex), warn nothing', () => {
    const { policy, warnings } = policyWith();
    policy.classify('SELECT 1', true);
    policy.classify('INSERT INTO t VALUES (1)', true);
    policy.classify('SET search_path = app', false);
    expect(warnings()).toEqual([]);
  });

  test('without replicas (checkSessionState) the same warnings are given, once per kind', () => {
    const { policy, warnings } = policyWith();
    policy.checkSessionState('SELECT 1');
    policy.checkSessionState('SET search_path = app');
    policy.checkSessionState('SET search_path = other');
    policy.checkSessionState('LISTEN jobs');
    expect(warnings().map((l) => l.meta.sessionState)).toEqual(['set', 'listen']);
  });

  test('two policies (two managers) warn independently', () => {
    const a = policyWith();
    const b = policyWith();
    a.policy.classify('SET x.y = 1', true);
    b.policy.classify('SET x.y = 1', true);
    expect(a.warnings()).toHaveLength(1);
    expect(b.warnings()).toHaveLength(1);
  });
});

describe('declared and learned write names', () => {
  test('a declared function sends a read calling it to the primary', () => {
    const { policy } = policyWith({ primaryFunctions: ['make_table'] });
    expect(policy.classify('SELECT make_table()', false)).toMatchObject({ target: 'primary', reason: 'declared write function: make_table()' });
    expect(policy.classify('SELECT other()', false).target).toBe('replica');
  });

  test('a refusal is counted, learned from and logged once per new name', () => {
    const { policy, warnings } = policyWith();
    expect(policy.classify('SELECT tick()', false).target).toBe('replica');
    policy.refused('SELECT tick()', 'manager.query');
    expect(policy.classify('SELECT tick() AS again', false)).toMatchObject({ target: 'primary', reason: 'learned write function: tick()' });
    // The same name again (through readKnex, say) teaches nothing new and logs nothing.
    policy.refused('SELECT tick()', 'readKnex');
    expect(warnings()).toHaveLength(1);
    expect(warnings()[0].message).toContain('Learned write function tick()');
    expect(warnings()[0].message).toContain('manager.query');
    expect(warnings()[0].message).toContain('routing.primaryFunctions');
    expect(warnings()[0].meta).toMatchObject({ learned: 'tick', kind: 'function', via: 'manager.query' });
    expect(policy.stats()).toMatchObject({ learning: true, readOnlyRefusals: 2, learned: { functions: ['tick'], relations: [] } });
  });

  test('a relation is learned when the refused statement calls no function, and the log says where to declare it', () => {
    const { policy, warnings } = policyWith();
    policy.refused('SELECT * FROM my_locks', 'readKnex');
    expect(policy.classify('SELECT id FROM my_locks', false).target).toBe('primary');
    expect(warnings()[0].message).toContain('routing.primaryRelations');
    expect(policy.stats().learned.relations).toEqual(['my_locks']);
  });

  test('with learnFromReadOnlyErrors false, refusals are counted and nothing is learned', () => {
    const { policy, warnings } = policyWith({ learnFromReadOnlyErrors: false });
    policy.refused('SELECT tick()', 'manager.query');
    policy.refused('SELECT tick()', 'manager.query');
    expect(policy.classify('SELECT tick()', false).target).toBe('replica');
    expect(warnings()).toEqual([]);
    expect(policy.stats()).toMatchObject({ learning: false, readOnlyRefusals: 2, learned: { functions: [], relations: [] } });
  });
});
