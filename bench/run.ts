import { execFileSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join, relative } from 'node:path';
import { pathToFileURL } from 'node:url';
import { DEFAULT_DATABASE_URL, kafkaVersion, localKafkaName, localKafkaPort, releaseLocalKafka, repoRoot, startLocalKafka, waitForKafka, withDatabase } from '@switchyard/infra';
import type { Benchmark, BenchOptions } from './benchmark.js';
import { buildReport, writeReport, type BenchEnvironment } from './report.js';

/**
 * `npm run bench [-- <name>…] [--<option> <value>…]`: finds every benchmark (`*.bench.js` under bench/dist),
 * runs the named ones (all by default) one after another, and writes bench/reports/<timestamp>-<name>.{json,md},
 * printing the Markdown. Kafka: KAFKA_BROKERS, else the local broker (started if needed, and stopped again at the
 * end if this run started it). Postgres: the server of DATABASE_URL, else the local one. Exit code 1 when a
 * benchmark failed.
 */

const USAGE = `usage: node bench/dist/run.js [name…] [--list] [--<option> <value>…]
  name        a benchmark to run (default: all)
  --list      list the benchmarks and exit
  --<option>  passed to the benchmarks, e.g. --commands 300 --concurrency 8 (see bench/README.md)
`;

const DIST = import.meta.dirname;

function findModules(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    if (entry.isDirectory()) return entry.name === 'node_modules' ? [] : findModules(join(dir, entry.name));
    return entry.name.endsWith('.bench.js') ? [join(dir, entry.name)] : [];
  });
}

function isBenchmark(value: unknown): value is Benchmark {
  const candidate = value as Partial<Benchmark> | null;
  return (
    typeof candidate === 'object' &&
    candidate !== null &&
    typeof candidate.name === 'string' &&
    /^[a-z0-9]+(-[a-z0-9]+)*$/.test(candidate.name) &&
    typeof candidate.description === 'string' &&
    typeof candidate.run === 'function'
  );
}

/** Every benchmark under bench/dist, by name. A module that exports something else is an error, not skipped. */
export async function discoverBenchmarks(dir = DIST): Promise<Map<string, Benchmark>> {
  const found = new Map<string, Benchmark>();
  for (const file of findModules(dir).sort()) {
    const module = (await import(pathToFileURL(file).href)) as { default?: unknown };
    const exported = Array.isArray(module.default) ? (module.default as unknown[]) : [module.default];
    for (const benchmark of exported) {
      if (!isBenchmark(benchmark)) {
        throw new Error(`${relative(dir, file)}: the default export must be a Benchmark (name in kebab-case, description, run) or an array of them`);
      }
      if (found.has(benchmark.name)) throw new Error(`two benchmarks are named ${benchmark.name}`);
      found.set(benchmark.name, benchmark);
    }
  }
  return found;
}

export function parseArgs(args: readonly string[]): { names: string[]; list: boolean; help: boolean; options: BenchOptions } {
  const names: string[] = [];
  const values = new Map<string, string>();
  let list = false;
  let help = false;
  for (let index = 0; index < args.length; index += 1) {
    const arg = args[index]!;
    if (arg === '--list') list = true;
    else if (arg === '--help' || arg === '-h') help = true;
    else if (arg.startsWith('--')) {
      const eq = arg.indexOf('=');
      if (eq > 0) values.set(arg.slice(2, eq), arg.slice(eq + 1));
      else {
        const value = args[index + 1];
        if (value === undefined || value.startsWith('--')) throw new Error(`${arg} needs a value`);
        values.set(arg.slice(2), value);
        index += 1;
      }
    } else names.push(arg);
  }
  const options: BenchOptions = {
    string: (name, fallback) => values.get(name) ?? fallback,
    number: (name, fallback) => {
      const raw = values.get(name);
      if (raw === undefined) return fallback;
      const value = Number(raw);
      if (!Number.isFinite(value)) throw new Error(`--${name}: expected a number, got "${raw}"`);
      return value;
    },
  };
  return { names, list, help, options };
}

function gitCommit(root: string): string {
  try {
    const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: root, encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain'], { cwd: root, encoding: 'utf8' }).trim() !== '';
    return dirty ? `${commit} (with uncommitted changes)` : commit;
  } catch {
    return 'unknown';
  }
}

async function main(): Promise<number> {
  const { names, list, help, options } = parseArgs(process.argv.slice(2));
  if (help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const benchmarks = await discoverBenchmarks();
  if (list) {
    for (const benchmark of benchmarks.values()) process.stdout.write(`${benchmark.name.padEnd(24)} ${benchmark.description}\n`);
    return 0;
  }
  const unknown = names.filter((name) => !benchmarks.has(name));
  if (unknown.length > 0) {
    process.stderr.write(`unknown benchmark: ${unknown.join(', ')}; known: ${[...benchmarks.keys()].join(', ')}\n`);
    return 2;
  }
  const selected = names.length > 0 ? names.map((name) => benchmarks.get(name)!) : [...benchmarks.values()];

  const root = repoRoot();
  const log = (message: string) => process.stderr.write(`[bench] ${message}\n`);
  let brokers = process.env['KAFKA_BROKERS'];
  let localBroker: string | undefined;
  if (brokers) await waitForKafka(brokers, 15000);
  else {
    const port = localKafkaPort(process.env);
    localBroker = localKafkaName(1, port);
    const broker = await startLocalKafka({ name: localBroker, port, user: 'npm run bench' });
    brokers = broker.brokers;
    log(`Kafka: the local broker at ${brokers} (${broker.started ? 'started for this run' : 'already running'})`);
  }
  const postgresUrl = withDatabase(process.env['DATABASE_URL'] ?? DEFAULT_DATABASE_URL, 'postgres');
  const cpuList = cpus();
  const environment: BenchEnvironment = {
    node: process.versions.node,
    platform: `${process.platform}-${process.arch}`,
    cpus: cpuList.length,
    cpuModel: cpuList[0]?.model.trim() ?? 'unknown',
    memoryGb: Math.round(totalmem() / 2 ** 30),
    kafkaVersion: kafkaVersion(),
    kafka: brokers,
    gitCommit: gitCommit(root),
  };

  let failed = 0;
  try {
    for (const benchmark of selected) {
      log(`${benchmark.name}: ${benchmark.description}`);
      const startedAt = new Date();
      const started = performance.now();
      try {
        const result = await benchmark.run({ brokers, postgresUrl, options, log: (message) => log(`${benchmark.name}: ${message}`) });
        const report = buildReport(benchmark, result, { startedAt, durationMs: performance.now() - started, environment });
        const paths = writeReport(join(root, 'bench/reports'), report);
        process.stdout.write(`${paths.rendered}\n`);
        log(`${benchmark.name}: wrote ${relative(root, paths.markdown)} and ${relative(root, paths.json)}`);
      } catch (error) {
        failed += 1;
        log(`${benchmark.name} FAILED: ${(error as Error).stack ?? String(error)}`);
      }
    }
  } finally {
    if (localBroker !== undefined) await releaseLocalKafka(localBroker);
  }
  return failed > 0 ? 1 : 0;
}

if (process.argv[1] && import.meta.filename === process.argv[1]) {
  main().then(
    (code) => process.exit(code),
    (error: unknown) => {
      process.stderr.write(`${(error as Error).message}\n`);
      process.exit(1);
    },
  );
}
