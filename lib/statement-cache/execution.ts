/**
 * One statement sent through the statement cache: the callback pg calls, and what it needs to
 * answer the caller (a callback or a promise) and to run the statement once more after a stale plan.
 */
import type { QueryResult } from 'pg';
import type { PlainConfig } from './text';

export type Callback = (error: Error | null, result?: QueryResult) => void;

/** What an execution asks of its connection's cache. */
export interface ExecutionHost {
  /** The statement succeeded (`reset`: the DISCARD / DEALLOCATE it was). */
  succeeded(reset: RegExpExecArray | undefined): void;
  /** The named statement failed: the name to run it again under, or undefined to report the error. */
  failed(error: Error, text: string, name: string, retried: boolean): string | undefined;
  /** Hands the execution to pg (again). */
  submit(execution: Execution): void;
}

/** One statement sent through the cache: what its callback needs to answer the caller. */
export class Execution {
  callback: Callback | undefined = undefined;
  resolve: ((result: QueryResult) => void) | undefined = undefined;
  reject: ((error: Error) => void) | undefined = undefined;
  private retried = false;

  constructor(
    private readonly cache: ExecutionHost,
    readonly text: string,
    readonly values: unknown,
    /** The prepared statement's name; undefined to run unnamed. */
    public name: string | undefined,
    /** The caller's config when it has keys beyond `text` and `values` (they are passed on). */
    readonly plain: PlainConfig | undefined,
    /** A DISCARD / DEALLOCATE this statement is, applied to the cache once it succeeds. */
    private readonly reset: RegExpExecArray | undefined,
  ) {}

  /** pg's callback. */
  readonly done = (error: Error | null, result?: QueryResult): void => {
    if (error === null) {
      this.cache.succeeded(this.reset);
      if (this.callback !== undefined) this.callback(null, result);
      else (this.resolve as (result: QueryResult) => void)(result as QueryResult);
      return;
    }
    if (this.name !== undefined) {
      const again = this.cache.failed(error, this.text, this.name, this.retried);
      if (again !== undefined) {
        this.retried = true;
        this.name = again;
        this.cache.submit(this);
        return;
      }
    }
    if (this.callback !== undefined) this.callback(error);
    else (this.reject as (error: Error) => void)(error);
  };
}
