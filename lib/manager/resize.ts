/**
 * `manager.resize()`: the new limits checked like the `pool` options, and, with a budget, the pools'
 * `min` still fitting in it; then applied to the default pool (its primary and each replica).
 */
import { invalidConfig } from '../errors';
import type { ResolvedConfig } from '../options-types';
import { resolveResize, type ResizeOptions } from '../options-sections';
import type { NamedPool } from './named-pool';

/** Resizes `main` to `limits`; `others` are the manager's other pools (for the budget check). */
export function resizeDefaultPool(config: ResolvedConfig, main: NamedPool, others: readonly NamedPool[], limits: ResizeOptions): { closed: number; retiring: number } {
  const next = resolveResize(limits, main.primary.pool.options);
  if (config.budget !== undefined) {
    const theirs = others.reduce((n, pool) => n + pool.primary.pool.options.min * pool.pools.length, 0);
    const mine = next.min * main.pools.length;
    if (mine + theirs > config.budget.maxConnections) {
      throw invalidConfig('resize.min', `the pools' min connections would add up to ${mine + theirs}, more than budget.maxConnections (${config.budget.maxConnections})`, 'Lower min, or the min of other pools.');
    }
  }
  return main.resize(next.min, next.max);
}

/** The manager's start line: limits, replicas, named pools, budget. */
export function startedMessage(config: ResolvedConfig, replicas: readonly string[]): string {
  const others = Object.keys(config.pools);
  return `Connection manager started (min: ${config.pool.min}, max: ${config.pool.max}${replicas.length ? `, replicas: ${replicas.join(', ')}` : ''}` +
    `${others.length ? `, pools: ${others.join(', ')}` : ''}${config.budget ? `, budget: ${config.budget.maxConnections} connections` : ''})`;
}
