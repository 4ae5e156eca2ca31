import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { eventErrors, type ErrorCodeSpec } from '@switchyard/events';
import { kafkaErrors } from '@switchyard/kafka';
import { beforeAll, describe, expect, it } from 'vitest';

// docs/errors.md has one section per error registry and one row per code. This keeps the two in step: a code
// missing from the doc, a row for a code no registry has, or a different retriable flag, meaning or fix fails here.

const root = fileURLToPath(new URL('..', import.meta.url));
const doc = readFileSync(join(root, 'docs/errors.md'), 'utf8');

type Registry = Readonly<Record<string, ErrorCodeSpec & { readonly close?: number | null; readonly http?: number }>>;

interface RegistrySource {
  /** Where `defineErrorCodes(` is called, relative to the repository root. */
  readonly file: string;
  readonly exportName: string;
  readonly prefix: string;
  /** Loaded in `beforeAll`: the test project references packages only, so service sources are imported at run time. */
  registry?: Registry;
}

const sources: RegistrySource[] = [
  { file: 'packages/events/src/errors.ts', exportName: 'eventErrors', prefix: 'EVT', registry: eventErrors },
  { file: 'packages/kafka/src/errors.ts', exportName: 'kafkaErrors', prefix: 'KFK', registry: kafkaErrors },
  { file: 'packages/service-runtime/src/errors.ts', exportName: 'runtimeErrors', prefix: 'RT' },
  { file: 'packages/auth/src/errors.ts', exportName: 'authErrors', prefix: 'AUTH' },
  { file: 'packages/api/src/errors.ts', exportName: 'commandErrors', prefix: 'AGW' },
  { file: 'services/health-monitor/src/errors.ts', exportName: 'healthMonitorErrors', prefix: 'HM' },
  { file: 'services/sync-worker/src/errors.ts', exportName: 'syncErrors', prefix: 'SYNC' },
  { file: 'services/ws-fanout/src/errors.ts', exportName: 'wsFanoutErrors', prefix: 'WS' },
];

function isRegistry(value: unknown): value is Registry {
  if (typeof value !== 'object' || value === null) return false;
  return Object.values(value).every(
    (spec: unknown) =>
      typeof spec === 'object' &&
      spec !== null &&
      typeof (spec as ErrorCodeSpec).retriable === 'boolean' &&
      typeof (spec as ErrorCodeSpec).meaning === 'string' &&
      typeof (spec as ErrorCodeSpec).fix === 'string',
  );
}

beforeAll(async () => {
  for (const source of sources) {
    if (source.registry !== undefined) continue;
    const specifier: string = pathToFileURL(join(root, source.file)).href;
    const module = (await import(specifier)) as Record<string, unknown>;
    const registry = module[source.exportName];
    if (!isRegistry(registry)) throw new Error(`${source.file} does not export an error registry named ${source.exportName}`);
    source.registry = registry;
  }
});

function registryOf(source: RegistrySource): Registry {
  if (source.registry === undefined) throw new Error(`${source.exportName} was not loaded`);
  return source.registry;
}

/** TypeScript files outside dependencies, build output and tests. */
function sourceFiles(dir: string): string[] {
  const skip = new Set(['node_modules', 'dist', 'test', 'reports', '.git', '.tools', '.cache']);
  const files: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.isDirectory()) {
      if (!skip.has(entry.name)) files.push(...sourceFiles(join(dir, entry.name)));
    } else if (/\.(ts|mts|js|mjs)$/.test(entry.name) && !entry.name.endsWith('.d.ts')) {
      files.push(join(dir, entry.name));
    }
  }
  return files;
}

interface Row {
  readonly retriable: string;
  readonly meaning: string;
  readonly fix: string;
  readonly surfaces: string;
}

/** Splits a table row on unescaped pipes and undoes the `\|` escaping. */
function cells(line: string): string[] {
  return line
    .replace(/^\|/, '')
    .replace(/\|\s*$/, '')
    .split(/(?<!\\)\|/)
    .map((cell) => cell.trim().replace(/\\\|/g, '|'));
}

/** The rows of the section whose heading names `exportName`: `| \`CODE\` | yes/no | meaning | fix | surfaces |`. */
function sectionRows(exportName: string): Map<string, Row> {
  const lines = doc.split('\n');
  const start = lines.findIndex((line) => line.startsWith('## ') && line.includes(`\`${exportName}\``));
  const rows = new Map<string, Row>();
  if (start < 0) return rows;
  for (const line of lines.slice(start + 1)) {
    if (line.startsWith('## ')) break;
    const match = /^\| `([A-Z][A-Z0-9_]*)` \|/.exec(line);
    if (!match) continue;
    const [, retriable = '', meaning = '', fix = '', surfaces = ''] = cells(line);
    rows.set(match[1]!, { retriable, meaning, fix, surfaces });
  }
  return rows;
}

function expectedRow(code: string, spec: ErrorCodeSpec): string {
  const escape = (text: string) => text.replace(/\|/g, '\\|');
  return `| \`${code}\` | ${spec.retriable ? 'yes' : 'no'} | ${escape(spec.meaning)} | ${escape(spec.fix)} | … |`;
}

describe('docs/errors.md', () => {
  it('imports every registry the source tree defines', () => {
    const calls = new Map<string, number>();
    for (const file of sourceFiles(root)) {
      const count = readFileSync(file, 'utf8').match(/\bdefineErrorCodes\(\s*['"`]/g)?.length ?? 0;
      if (count > 0) calls.set(relative(root, file), count);
    }
    const total = [...calls.values()].reduce((sum, count) => sum + count, 0);
    expect(total, 'defineErrorCodes( call sites; add the new registry to `sources` in this test and to docs/errors.md').toBe(
      sources.length,
    );
    expect([...calls.keys()].sort()).toEqual(sources.map((source) => source.file).sort());
  });

  it('every code of every registry starts with its prefix, and prefixes are unique', () => {
    expect(new Set(sources.map((source) => source.prefix)).size).toBe(sources.length);
    for (const source of sources) {
      for (const code of Object.keys(registryOf(source))) expect(code.startsWith(`${source.prefix}_`), code).toBe(true);
    }
  });

  it.each(sources.map((source) => [source.exportName, source] as const))(
    'has a section for %s with one row per code: retriable flag, meaning and fix as the registry says',
    (exportName, source) => {
      const registry = registryOf(source);
      const rows = sectionRows(exportName);
      expect(rows.size, `docs/errors.md needs a "## … \`${exportName}\`" section with a row per code`).toBeGreaterThan(0);
      for (const [code, spec] of Object.entries(registry)) {
        const row = rows.get(code);
        const hint = `docs/errors.md row for ${code} should read\n${expectedRow(code, spec)}`;
        expect(row, hint).toBeDefined();
        expect(row!.retriable, hint).toBe(spec.retriable ? 'yes' : 'no');
        expect(row!.meaning, hint).toBe(spec.meaning);
        expect(row!.fix, hint).toBe(spec.fix);
        expect(row!.surfaces, `${code}: say where it surfaces`).not.toBe('');
      }
      const unknown = [...rows.keys()].filter((code) => !Object.hasOwn(registry, code));
      expect(unknown, `rows for codes ${exportName} does not have`).toEqual([]);
    },
  );

  it('lists no code outside the registries', () => {
    const known = new Set(sources.flatMap((source) => Object.keys(registryOf(source))));
    const documented = [...doc.matchAll(/^\| `([A-Z][A-Z0-9_]*)` \|/gm)].map((match) => match[1]!);
    expect(documented.filter((code) => !known.has(code))).toEqual([]);
    expect(documented.length, 'each code has exactly one row').toBe(new Set(documented).size);
  });

  it('gives each WebSocket code the close code or HTTP status the registry assigns', () => {
    const source = sources.find((candidate) => candidate.prefix === 'WS')!;
    const rows = sectionRows(source.exportName);
    for (const [code, spec] of Object.entries(registryOf(source))) {
      const surfaces = rows.get(code)?.surfaces ?? '';
      if (typeof spec.close === 'number') expect(surfaces, code).toContain(`close ${spec.close}`);
      if (typeof spec.http === 'number') expect(surfaces, code).toContain(`HTTP ${spec.http}`);
    }
  });
});
