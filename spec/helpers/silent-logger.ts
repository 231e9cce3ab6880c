/**
 * Winston loggers for unit tests: nothing reaches the console, and `capturingLogger()` keeps every
 * entry so a test can assert on log lines ("Pool at maximum limit", "Connection attempt 2/3 failed").
 */
import { Writable } from 'node:stream';
import winston, { type Logger } from 'winston';

/** One captured log entry. */
export interface LogLine {
  level: string;
  message: string;
  meta: Record<string, unknown>;
}

/** A logger that drops everything. */
export function silentLogger(level = 'info'): Logger {
  return winston.createLogger({ level, transports: [new winston.transports.Console({ silent: true })] });
}

/** A logger that records every entry at `level` or above into `lines`, and prints nothing. */
export function capturingLogger(level = 'debug'): { logger: Logger; lines: LogLine[]; messages(): string[] } {
  const lines: LogLine[] = [];
  const sink = new Writable({
    objectMode: true,
    write(info: Record<string, unknown>, _encoding, callback) {
      const { level: lineLevel, message, ...meta } = info;
      lines.push({ level: String(lineLevel), message: String(message), meta });
      callback();
    },
  });
  const logger = winston.createLogger({ level, transports: [new winston.transports.Stream({ stream: sink })] });
  return { logger, lines, messages: () => lines.map((l) => l.message) };
}
