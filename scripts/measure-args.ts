/** What the measuring scripts (scripts/measure-*.ts) share: a numeric command-line option and a median. */

/** The number after `name` on the command line (`--rounds 5`), or `fallback`; it must be positive. */
export function numberOption(name: string, fallback: number): number {
  const i = process.argv.indexOf(name);
  const value = i >= 0 ? Number(process.argv[i + 1]) : fallback;
  if (!Number.isFinite(value) || value <= 0) throw new Error(`${name} expects a positive number`);
  return value;
}

/** The median of `values` (the mean of the two middle ones of an even count). */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}
