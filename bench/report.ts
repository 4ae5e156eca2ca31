import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { summarize, type Benchmark, type BenchResult, type Comparison, type LatencySummary } from './benchmark.js';

/** Where and on what a benchmark ran: a number is only comparable with numbers from the same setup. */
export interface BenchEnvironment {
  readonly node: string;
  readonly platform: string;
  readonly cpus: number;
  readonly cpuModel: string;
  readonly memoryGb: number;
  readonly kafkaVersion: string;
  readonly kafka: string;
  readonly gitCommit: string;
}

export interface ComparisonReport extends Comparison {
  /** subject / baseline. */
  readonly ratio: number;
  /** subject − baseline, in `unit`. */
  readonly difference: number;
}

export interface BenchReport {
  readonly benchmark: string;
  readonly description: string;
  readonly startedAt: string;
  readonly durationMs: number;
  readonly environment: BenchEnvironment;
  readonly parameters: BenchResult['parameters'];
  readonly latencies: readonly {
    readonly group: string;
    readonly series: readonly (LatencySummary & { readonly name: string; readonly samplesMs: readonly number[] })[];
  }[];
  readonly metrics: NonNullable<BenchResult['metrics']>;
  readonly comparisons: readonly ComparisonReport[];
  readonly notes: readonly string[];
}

const round = (value: number, digits = 2) => Math.round(value * 10 ** digits) / 10 ** digits;

export function buildReport(
  benchmark: Benchmark,
  result: BenchResult,
  run: { startedAt: Date; durationMs: number; environment: BenchEnvironment },
): BenchReport {
  return {
    benchmark: benchmark.name,
    description: benchmark.description,
    startedAt: run.startedAt.toISOString(),
    durationMs: Math.round(run.durationMs),
    environment: run.environment,
    parameters: result.parameters,
    latencies: (result.latencies ?? []).map((group) => ({
      group: group.group,
      series: group.series.map((series) => ({
        name: series.name,
        ...summarize(series.samplesMs),
        samplesMs: series.samplesMs.map((value) => round(value, 3)),
      })),
    })),
    metrics: result.metrics ?? [],
    comparisons: result.comparisons.map((comparison) => ({
      ...comparison,
      ratio: comparison.subject.value / comparison.baseline.value,
      difference: comparison.subject.value - comparison.baseline.value,
    })),
    notes: result.notes ?? [],
  };
}

function fixed(value: number): string {
  if (!Number.isFinite(value)) return '—';
  if (Math.abs(value) >= 100) return value.toFixed(0);
  if (Math.abs(value) >= 10) return value.toFixed(1);
  return value.toFixed(2);
}

function verdict(comparison: ComparisonReport): string {
  const { ratio, better } = comparison;
  if (!Number.isFinite(ratio)) return '—';
  // Always say it as "N× slower/faster" (or fewer/more per second) than the baseline.
  if (better === 'lower') return ratio >= 1 ? `${fixed(ratio)}× the baseline` : `${fixed(1 / ratio)}× faster than the baseline`;
  return ratio >= 1 ? `${fixed(ratio)}× the baseline` : `${fixed(ratio * 100)} % of the baseline`;
}

function table(header: readonly string[], rows: readonly (readonly string[])[]): string[] {
  return [`| ${header.join(' | ')} |`, `|${header.map(() => ' --- ').join('|')}|`, ...rows.map((row) => `| ${row.join(' | ')} |`)];
}

export function renderMarkdown(report: BenchReport): string {
  const env = report.environment;
  const lines = [
    `# Benchmark: ${report.benchmark}`,
    '',
    report.description,
    '',
    `Run ${report.startedAt} (${(report.durationMs / 1000).toFixed(1)} s) on ${env.cpus}× ${env.cpuModel}, ${env.memoryGb} GB, ` +
      `${env.platform}, Node ${env.node}, Kafka ${env.kafkaVersion} at ${env.kafka}, commit ${env.gitCommit}.`,
    '',
    '## Parameters',
    '',
    ...table(
      ['Parameter', 'Value'],
      Object.entries(report.parameters).map(([name, value]) => [name, String(value)]),
    ),
    '',
    '## Subject against baseline',
    '',
    ...table(
      ['Measure', 'Subject', 'Baseline', 'Difference', 'Ratio'],
      report.comparisons.map((comparison) => [
        comparison.measure,
        `${comparison.subject.name}: ${fixed(comparison.subject.value)} ${comparison.unit}`,
        `${comparison.baseline.name}: ${fixed(comparison.baseline.value)} ${comparison.unit}`,
        `${comparison.difference >= 0 ? '+' : ''}${fixed(comparison.difference)} ${comparison.unit}`,
        verdict(comparison),
      ]),
    ),
  ];
  for (const group of report.latencies) {
    lines.push(
      '',
      `## Latency: ${group.group} (ms)`,
      '',
      ...table(
        ['Series', 'n', 'p50', 'p90', 'p99', 'max', 'mean'],
        group.series.map((series) => [series.name, String(series.count), ...[series.p50, series.p90, series.p99, series.max, series.mean].map(fixed)]),
      ),
    );
  }
  if (report.metrics.length > 0) {
    lines.push('', '## Metrics', '', ...table(['Metric', 'Value'], report.metrics.map((metric) => [metric.name, `${fixed(metric.value)} ${metric.unit}`])));
  }
  if (report.notes.length > 0) lines.push('', '## Notes', '', ...report.notes.flatMap((note) => [note, '']));
  return `${lines.join('\n').trimEnd()}\n`;
}

/** Writes `<dir>/<timestamp>-<name>.json` and `.md`; returns both paths and the Markdown. */
export function writeReport(dir: string, report: BenchReport): { json: string; markdown: string; rendered: string } {
  mkdirSync(dir, { recursive: true });
  const stamp = report.startedAt.replace(/\.\d+Z$/, 'Z').replace(/:/g, '-');
  const base = join(dir, `${stamp}-${report.benchmark}`);
  const rendered = renderMarkdown(report);
  writeFileSync(`${base}.json`, `${JSON.stringify(report, null, 2)}\n`);
  writeFileSync(`${base}.md`, rendered);
  return { json: `${base}.json`, markdown: `${base}.md`, rendered };
}
