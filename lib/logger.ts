/**
 * Logging: the user's winston logger (as a child tagged with the component), or a built-in one
 * writing JSON lines to the console. Lifecycle events go to `info`, per-acquire detail to `debug`.
 */
import winston, { type Logger } from 'winston';
import type { LogLevel } from './options';

/** The logger the manager writes to. */
export function createManagerLogger(option: Logger | { level: LogLevel }): Logger {
  if (isLogger(option)) return option.child({ component: 'knex-connection-manager' });
  return winston.createLogger({
    level: option.level,
    defaultMeta: { component: 'knex-connection-manager' },
    format: winston.format.combine(winston.format.timestamp(), winston.format.json()),
    transports: [new winston.transports.Console()],
  });
}

function isLogger(option: Logger | { level: LogLevel }): option is Logger {
  return typeof (option as Logger).log === 'function';
}
