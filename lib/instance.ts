/**
 * The process-wide manager. It lives on `globalThis` under a registered symbol, so two copies of
 * this package loaded in one process (a common result of nested node_modules) still share one.
 * `getConnectionInstance()` is synchronous, so concurrent first calls cannot create two.
 */
import { ConnectionManagerError } from './errors';
import { ConnectionManager } from './manager';
import { configFromEnvironment, resolveOptions, type ConnectionManagerConfig, type ResolvedConfig } from './options';

const KEY = Symbol.for('knex-connection-manager.instance');

interface InstanceSlot {
  manager?: ConnectionManager;
}

function slot(): InstanceSlot {
  const holder = globalThis as { [KEY]?: InstanceSlot };
  return (holder[KEY] ??= {});
}

/**
 * Returns the process's connection manager, creating it on the first call (and on the first call
 * after `close()`). Without `config` it reads `DATABASE_URL` and the `KCM_*` variables.
 * @throws ConnectionManagerError `E_INVALID_CONFIG` for bad options; `E_CONFIG_CONFLICT` when
 *   `config` differs from the live manager's.
 */
export function getConnectionInstance(config?: ConnectionManagerConfig): ConnectionManager {
  const current = slot().manager;
  if (current && current.isOpen) {
    if (config !== undefined) {
      const difference = firstDifference(resolveOptions(config), current.config, '');
      if (difference !== undefined) {
        throw new ConnectionManagerError(
          'E_CONFIG_CONFLICT',
          `A connection manager with a different configuration is already running (they differ at "${difference}"). ` +
            'Call getConnectionInstance() without a config to get the running one, or closeConnectionInstance() first to replace it.',
        );
      }
    }
    return current;
  }
  const manager = new ConnectionManager(resolveOptions(config ?? configFromEnvironment()));
  slot().manager = manager;
  return manager;
}

/** Closes the process's manager, if there is one; the next `getConnectionInstance()` creates a new one. */
export async function closeConnectionInstance(): Promise<void> {
  const s = slot();
  const manager = s.manager;
  if (!manager) return;
  if (s.manager === manager) s.manager = undefined;
  await manager.close();
}

/**
 * The first path at which two resolved configurations differ, or undefined. Plain objects and
 * arrays are compared by value; anything else (functions, loggers, class instances) by identity.
 */
function firstDifference(a: unknown, b: unknown, path: string): string | undefined {
  if (Object.is(a, b)) return undefined;
  const plainA = isPlain(a);
  const plainB = isPlain(b);
  if (!plainA || !plainB) return path || '(root)';
  if (Array.isArray(a) !== Array.isArray(b)) return path || '(root)';
  const objA = a as Record<string, unknown>;
  const objB = b as Record<string, unknown>;
  const keys = new Set([...Object.keys(objA), ...Object.keys(objB)]);
  for (const key of keys) {
    const found = firstDifference(objA[key], objB[key], path ? `${path}.${key}` : key);
    if (found !== undefined) return found;
  }
  return undefined;
}

function isPlain(value: unknown): boolean {
  if (typeof value !== 'object' || value === null) return false;
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null || Array.isArray(value);
}

export type { ResolvedConfig };
