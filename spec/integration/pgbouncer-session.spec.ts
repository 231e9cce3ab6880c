/** The manager behind a real PgBouncer in session mode (`pgbouncer: 'session'`); see pgbouncer-scenarios.ts. */
import { describeWithPgBouncer } from '../helpers/pgbouncer';
import { pgBouncerScenarios } from './pgbouncer-scenarios';

describeWithPgBouncer('behind PgBouncer in session mode', 'session', (setup) => {
  pgBouncerScenarios('session', setup);
});
