/** The manager behind a real PgBouncer in transaction mode (`pgbouncer: 'transaction'`); see pgbouncer-scenarios.ts. */
import { describeWithPgBouncer } from '../helpers/pgbouncer';
import { pgBouncerScenarios } from './pgbouncer-scenarios';

describeWithPgBouncer('behind PgBouncer in transaction mode', 'transaction', (setup) => {
  pgBouncerScenarios('transaction', setup);
});
