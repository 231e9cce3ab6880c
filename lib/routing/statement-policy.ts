/**
 * What the manager knows about statements beyond their text: the write functions and relations the
 * application declared, those learned from a replica's `25006` refusals, and which session-state
 * warnings were already given. One per manager; `ReadRouting` asks it where a statement goes and
 * tells it when a replica refused one.
 */
import type { Logger } from 'winston';
import type { RoutingOptions } from '../options';
import { classifyStatement } from './classify';
import type { RoutingStats } from '../pool/stats';
import { LearnedWrites } from './learned-writes';
import { SESSION_STATE_ADVICE } from './session-state';
import type { SessionState, StatementClass } from './statement-rules';
import { compileRoutingRules, type RoutingRules } from './write-list';

/** Where a refused statement came from, for the log line. */
export type RefusedVia = 'manager.query' | 'readKnex';

/** Every kind of session state; once all are warned about, nothing is left to classify for. */
const SESSION_STATE_KINDS = Object.keys(SESSION_STATE_ADVICE).length;

export class StatementPolicy {
  /** The declared names, plus the learned ones (the store adds to the same sets). */
  readonly rules: RoutingRules;
  private readonly learned: LearnedWrites;
  private readonly learning: boolean;
  private readonly warned = new Set<SessionState>();
  private refusals = 0;

  /**
   * @throws ConnectionManagerError `E_INVALID_CONFIG` for a bad declared name (already refused by
   *   `resolveOptions()` for a resolved configuration).
   */
  constructor(
    routing: Pick<Required<RoutingOptions>, 'primaryFunctions' | 'primaryRelations' | 'learnFromReadOnlyErrors'>,
    private readonly log: Logger,
  ) {
    this.rules = compileRoutingRules({ primaryFunctions: routing.primaryFunctions, primaryRelations: routing.primaryRelations });
    this.learned = new LearnedWrites(this.rules);
    this.learning = routing.learnFromReadOnlyErrors;
  }

  /**
   * Where `sql` goes, with the declared and learned names. For `manager.query` (`warn`), a statement
   * with session state is warned about, once per kind.
   */
  classify(sql: string, warn: boolean): StatementClass {
    const found = classifyStatement(sql, this.rules);
    if (warn && found.sessionState !== undefined) this.warnSessionState(found.sessionState);
    return found;
  }

  /**
   * Without replicas nothing is routed, but a statement's session state is lost all the same (the
   * next call may run on another pooled connection): classify only for the warning, and only until
   * every kind has been warned about.
   */
  checkSessionState(sql: string): void {
    if (this.warned.size < SESSION_STATE_KINDS) this.classify(sql, true);
  }

  /**
   * A replica refused `sql` with `25006`: count it and, when learning, remember what in it writes,
   * logging each newly learned name once.
   */
  refused(sql: string, via: RefusedVia): void {
    this.refusals++;
    if (!this.learning) return;
    const kind = classifyStatement(sql).reason;
    for (const name of this.learned.learnFrom(sql)) {
      const option = name.kind === 'function' ? 'routing.primaryFunctions' : 'routing.primaryRelations';
      const shown = name.kind === 'function' ? `${name.name}()` : name.name;
      this.log.warn(
        `Learned write ${name.kind} ${shown}: a replica refused a statement (${kind}) through ${via} with 25006 (read-only), ` +
          `so it ran on the primary; statements ${name.kind === 'function' ? 'calling' : 'naming'} it now go to the primary directly. ` +
          `Add ${JSON.stringify(name.name)} to ${option} to skip the refusal after a restart.`,
        { learned: name.name, kind: name.kind, via },
      );
    }
  }

  /** A snapshot for `getPoolStats()`. */
  stats(): RoutingStats {
    return { learning: this.learning, learned: this.learned.snapshot(), readOnlyRefusals: this.refusals, sessionStateWarnings: [...this.warned] };
  }

  private warnSessionState(kind: SessionState): void {
    if (this.warned.has(kind)) return;
    this.warned.add(kind);
    this.log.warn(`Session state (${kind}): ${SESSION_STATE_ADVICE[kind]}`, { sessionState: kind });
  }
}
