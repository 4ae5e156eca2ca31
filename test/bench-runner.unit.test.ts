import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { defineBenchmark, percentile, summarize, type Benchmark } from '../bench/benchmark.js';
import { buildReport, renderMarkdown, writeReport, type BenchEnvironment } from '../bench/report.js';
import { discoverBenchmarks, parseArgs } from '../bench/run.js';

/** The benchmark runner (bench/): statistics, reports, discovery of `*.bench.js` files, options. */

const environment: BenchEnvironment = {
  node: '24.0.0',
  platform: 'linux-x64',
  cpus: 4,
  cpuModel: 'Test CPU',
  memoryGb: 16,
  kafkaVersion: '4.4.0',
  kafka: '127.0.0.1:9092',
  gitCommit: 'abc1234',
};

const noop: Benchmark = defineBenchmark({ name: 'noop', description: 'Nothing.', run: async () => ({ parameters: {}, comparisons: [] }) });

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'sy-bench-'));
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

describe('benchmark statistics', () => {
  it('takes nearest-rank percentiles', () => {
    const sorted = Array.from({ length: 100 }, (_, index) => index + 1);
    expect([percentile(sorted, 50), percentile(sorted, 90), percentile(sorted, 99), percentile(sorted, 100)]).toEqual([50, 90, 99, 100]);
    expect(percentile([7], 99)).toBe(7);
    expect(percentile([], 50)).toBeNaN();
  });

  it('summarises unsorted samples', () => {
    expect(summarize([5, 1, 4, 2, 3])).toEqual({ count: 5, min: 1, mean: 3, p50: 3, p90: 5, p99: 5, max: 5 });
  });
});

describe('benchmark reports', () => {
  const report = buildReport(
    { ...noop, name: 'demo', description: 'A demo.' },
    {
      parameters: { commands: 3 },
      latencies: [{ group: 'sequential', series: [{ name: 'command → row', samplesMs: [30, 10, 20] }] }],
      metrics: [{ name: 'commands per second', value: 12.345, unit: 'per s' }],
      comparisons: [
        { measure: 'p50', subject: { name: 'stack', value: 20 }, baseline: { name: 'direct', value: 2 }, unit: 'ms', better: 'lower' },
        { measure: 'throughput', subject: { name: 'stack', value: 50 }, baseline: { name: 'direct', value: 800 }, unit: 'per s', better: 'higher' },
      ],
      notes: ['Measured carefully.'],
    },
    { startedAt: new Date('2026-11-24T06:00:00.123Z'), durationMs: 4200, environment },
  );

  it('adds the ratio and difference to each comparison and summarises the samples', () => {
    expect(report.comparisons.map((comparison) => [comparison.ratio, comparison.difference])).toEqual([
      [10, 18],
      [0.0625, -750],
    ]);
    expect(report.latencies[0]?.series[0]).toMatchObject({ count: 3, p50: 20, max: 30, samplesMs: [30, 10, 20] });
  });

  it('renders Markdown with the parameters, the comparisons worded by which way is better, and the latency tables', () => {
    const markdown = renderMarkdown(report);
    expect(markdown).toContain('# Benchmark: demo');
    expect(markdown).toContain('| commands | 3 |');
    expect(markdown).toContain('| p50 | stack: 20.0 ms | direct: 2.00 ms | +18.0 ms | 10.0× the baseline |');
    expect(markdown).toContain('| throughput | stack: 50.0 per s | direct: 800 per s | -750 per s | 6.25 % of the baseline |');
    expect(markdown).toContain('| command → row | 3 | 20.0 | 30.0 | 30.0 | 30.0 | 20.0 |');
    expect(markdown).toContain('Kafka 4.4.0 at 127.0.0.1:9092, commit abc1234');
    expect(markdown).toContain('Measured carefully.');
  });

  it('writes <timestamp>-<name>.json and .md', () => {
    const dir = tempDir();
    const paths = writeReport(dir, report);
    expect(paths.json).toBe(join(dir, '2026-11-24T06-00-00Z-demo.json'));
    expect(paths.markdown).toBe(join(dir, '2026-11-24T06-00-00Z-demo.md'));
    expect(JSON.parse(readFileSync(paths.json, 'utf8'))).toMatchObject({ benchmark: 'demo', environment, parameters: { commands: 3 } });
    expect(readFileSync(paths.markdown, 'utf8')).toBe(renderMarkdown(report));
  });
});

describe('benchmark discovery', () => {
  const module = (body: string) => `export default ${body};\n`;
  const valid = (name: string) => `{ name: '${name}', description: 'd', run: async () => ({ parameters: {}, comparisons: [] }) }`;

  it('finds every *.bench.js below the folder, single or array exports, and nothing else', async () => {
    const dir = tempDir();
    mkdirSync(join(dir, 'sync'));
    writeFileSync(join(dir, 'e2e.bench.js'), module(valid('e2e-latency')));
    writeFileSync(join(dir, 'sync', 'catch-up.bench.js'), module(`[${valid('sync-catch-up')}, ${valid('sync-rebuild')}]`));
    writeFileSync(join(dir, 'sync', 'harness.js'), 'throw new Error("helpers are not imported");\n');
    const found = await discoverBenchmarks(dir);
    expect([...found.keys()]).toEqual(['e2e-latency', 'sync-catch-up', 'sync-rebuild']);
  });

  it('refuses a bench module whose export is not a Benchmark, naming the file', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'broken.bench.js'), module(`{ name: 'Not Kebab', run: 1 }`));
    await expect(discoverBenchmarks(dir)).rejects.toThrow(/broken\.bench\.js: the default export must be a Benchmark/);
  });

  it('refuses two benchmarks with one name', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'a.bench.js'), module(valid('same')));
    writeFileSync(join(dir, 'b.bench.js'), module(valid('same')));
    await expect(discoverBenchmarks(dir)).rejects.toThrow('two benchmarks are named same');
  });

  it('finds the e2e-latency benchmark in the built bench/dist', async () => {
    const found = await discoverBenchmarks(join(import.meta.dirname, '../bench/dist'));
    expect(found.get('e2e-latency')?.description).toMatch(/POST \/v1\/commands/);
  });
});

describe('benchmark options', () => {
  it('takes names positionally and options as --name value or --name=value', () => {
    const parsed = parseArgs(['e2e-latency', '--commands', '500', '--concurrency=6', 'other', '--list']);
    expect(parsed.names).toEqual(['e2e-latency', 'other']);
    expect(parsed.list).toBe(true);
    expect(parsed.options.number('commands', 300)).toBe(500);
    expect(parsed.options.number('concurrency', 8)).toBe(6);
    expect(parsed.options.number('warmup', 20)).toBe(20);
    expect(parsed.options.string('commands', '')).toBe('500');
  });

  it('refuses an option without a value and a number that is not one', () => {
    expect(() => parseArgs(['--commands'])).toThrow('--commands needs a value');
    expect(() => parseArgs(['--commands', 'many']).options.number('commands', 1)).toThrow('--commands: expected a number, got "many"');
  });
});
