/**
 * What a benchmark is, for the runner (run.ts). A benchmark lives in a file named `*.bench.ts` anywhere under
 * bench/ and default-exports one `Benchmark` (or an array of them); the runner finds it in bench/dist. Each
 * benchmark measures its subject AND its baseline in the same run, on the same machine, so the report can say
 * "N× the baseline" instead of an absolute number that means nothing elsewhere. See bench/README.md.
 */

export interface Benchmark {
  /** Unique, kebab-case: what `node bench/dist/run.js <name>` selects and the report file is named after. */
  readonly name: string;
  /** One sentence: what is measured, against which baseline. */
  readonly description: string;
  /** Measures the subject and its baseline on the context's Kafka and Postgres, and cleans up after itself. */
  run(context: BenchContext): Promise<BenchResult>;
}

export interface BenchContext {
  /** Kafka bootstrap servers (KAFKA_BROKERS, or the local broker the runner started or found running). */
  readonly brokers: string;
  /** A Postgres server URL (DATABASE_URL, or the local server); create your own database on it with `withDatabase`. */
  readonly postgresUrl: string;
  /** Options from the command line after the names: `--commands 300`, `--concurrency=8`. */
  readonly options: BenchOptions;
  /** Progress for whoever waits (stderr); not part of the report. */
  log(message: string): void;
}

export interface BenchOptions {
  number(name: string, fallback: number): number;
  string(name: string, fallback: string): string;
}

/** Latency samples in milliseconds; the report summarises them (count, p50, p90, p99, max). */
export interface LatencySeries {
  readonly name: string;
  readonly samplesMs: readonly number[];
}

export interface LatencyGroup {
  /** e.g. `sequential`, `8 in flight`, `baseline: simulator direct`. */
  readonly group: string;
  readonly series: readonly LatencySeries[];
}

export interface Metric {
  readonly name: string;
  readonly value: number;
  /** `ms`, `events/s`, `MB`, … */
  readonly unit: string;
}

/** The subject against its baseline on one measure, both from this run. */
export interface Comparison {
  /** e.g. `p50, sequential`. */
  readonly measure: string;
  readonly subject: { readonly name: string; readonly value: number };
  readonly baseline: { readonly name: string; readonly value: number };
  readonly unit: string;
  /** Latencies are better lower, throughputs higher; the report words the ratio accordingly. */
  readonly better: 'lower' | 'higher';
}

export interface BenchResult {
  /** What was run (counts, concurrency, sizes), shown first in the report. */
  readonly parameters: Readonly<Record<string, string | number>>;
  readonly latencies?: readonly LatencyGroup[];
  readonly metrics?: readonly Metric[];
  /** At least one: a benchmark without its baseline is not one. */
  readonly comparisons: readonly Comparison[];
  /** How it was measured, caveats; one paragraph each. */
  readonly notes?: readonly string[];
}

/** For typing a module's default export: `export default defineBenchmark({ … })`. */
export function defineBenchmark(benchmark: Benchmark): Benchmark {
  return benchmark;
}

export interface LatencySummary {
  readonly count: number;
  readonly min: number;
  readonly mean: number;
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly max: number;
}

/** Nearest-rank percentile of sorted samples (`p` in 0..100). */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!;
}

export function summarize(samples: readonly number[]): LatencySummary {
  const sorted = [...samples].sort((a, b) => a - b);
  const total = sorted.reduce((sum, value) => sum + value, 0);
  return {
    count: sorted.length,
    min: sorted[0] ?? Number.NaN,
    mean: sorted.length > 0 ? total / sorted.length : Number.NaN,
    p50: percentile(sorted, 50),
    p90: percentile(sorted, 90),
    p99: percentile(sorted, 99),
    max: sorted.at(-1) ?? Number.NaN,
  };
}
