import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { commandCatalog, DEFAULT_TOPIC_PREFIX, topicName, topics, validateEvent, type TopicSpec } from '@switchyard/events';
import { describe, expect, it } from 'vitest';

// README.md and docs/*.md against the code: the topic table against the catalog, links against the tree, the
// services and decision records against their folders, examples and defaults against the schemas and configs.

const root = fileURLToPath(new URL('..', import.meta.url));
const read = (path: string) => readFileSync(join(root, path), 'utf8');
const architecture = read('docs/architecture.md');
const readme = read('README.md');

const DAY_MS = 24 * 60 * 60 * 1000;
const HOUR_MS = 60 * 60 * 1000;

const serviceFolders = readdirSync(join(root, 'services'), { withFileTypes: true })
  .filter((entry) => entry.isDirectory() && existsSync(join(root, 'services', entry.name, 'package.json')))
  .map((entry) => entry.name)
  .sort();

/** The markdown without fenced blocks and code spans, where links and headings are read. */
function prose(markdown: string): string {
  return markdown.replace(/^(```|~~~)[^\n]*\n[\s\S]*?^\1[^\n]*$/gm, '').replace(/`[^`\n]*`/g, '');
}

function tableCells(line: string): string[] {
  return line
    .replace(/^\|/, '')
    .replace(/\|\s*$/, '')
    .split('|')
    .map((cell) => cell.trim());
}

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens, repeats numbered. */
function anchors(markdown: string): Set<string> {
  const seen = new Map<string, number>();
  const result = new Set<string>();
  for (const match of markdown.replace(/^(```|~~~)[^\n]*\n[\s\S]*?^\1[^\n]*$/gm, '').matchAll(/^#{1,6}\s+(.+?)\s*#*\s*$/gm)) {
    const slug = match[1]!
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, '')
      .replace(/\s/g, '-');
    const count = seen.get(slug) ?? 0;
    seen.set(slug, count + 1);
    result.add(count === 0 ? slug : `${slug}-${count}`);
  }
  return result;
}

function fencedBlocks(markdown: string, language: string): string[] {
  return [...markdown.matchAll(new RegExp(`^\`\`\`${language}\\n([\\s\\S]*?)^\`\`\`$`, 'gm'))].map((match) => match[1]!);
}

describe('docs/architecture.md topic table', () => {
  const rows = new Map<string, string[]>();
  for (const line of architecture.split('\n')) {
    const match = /^\| `([a-z0-9._-]+)` \|/.exec(line);
    if (match && /^\| `[^`]+` \| \d+ \|/.test(line)) rows.set(match[1]!, tableCells(line));
  }

  it('lists exactly the catalog topics, with the default prefix', () => {
    const expected = Object.values(topics).map((spec) => topicName(spec, DEFAULT_TOPIC_PREFIX));
    expect([...rows.keys()].sort()).toEqual(expected.sort());
  });

  it.each(Object.values(topics).map((spec): [string, TopicSpec] => [spec.name, spec]))(
    '%s: partitions, cleanup policy, retention and event types as the catalog says',
    (_name, spec) => {
      const cells = rows.get(topicName(spec, DEFAULT_TOPIC_PREFIX));
      expect(cells, 'row').toBeDefined();
      const [, partitions = '', cleanup = '', , eventTypes = ''] = cells!;
      expect(Number(partitions)).toBe(spec.partitions);
      expect(/`([a-z,]+)`/.exec(cleanup)?.[1]).toBe(spec.config['cleanup.policy']);
      const retention = spec.config['retention.ms'];
      if (retention !== undefined) expect(cleanup).toContain(`${Number(retention) / DAY_MS} days`);
      const lag = spec.config['min.compaction.lag.ms'];
      if (lag !== undefined) expect(cleanup).toContain(`${Number(lag) / HOUR_MS} hour`);
      const documented = [...eventTypes.matchAll(/`([a-z0-9_.]+)`/g)].map((match) => match[1]!);
      expect(documented.sort()).toEqual(Object.keys(spec.schemas).sort());
    },
  );
});

describe('docs/architecture.md', () => {
  it('mentions and links every service folder, and its README when it has one', () => {
    for (const service of serviceFolders) {
      expect(architecture, service).toContain(`](../services/${service}/)`);
      const start = architecture.indexOf(`\n### ${service}\n`);
      expect(start, `a "### ${service}" section`).toBeGreaterThan(0);
      const section = architecture.slice(start + 1, architecture.indexOf('\n#', start + 1));
      if (existsSync(join(root, 'services', service, 'README.md'))) {
        expect(section, service).toContain(`](../services/${service}/README.md)`);
        expect(section, `${service} has a README now`).not.toContain('no README');
      }
    }
  });

  it('links every decision record in docs/adr/', () => {
    const dir = join(root, 'docs/adr');
    const records = existsSync(dir) ? readdirSync(dir).filter((name) => name.endsWith('.md')) : [];
    for (const record of records) expect(architecture, record).toContain(`](adr/${record})`);
  });

  it('names every command type of the catalog', () => {
    for (const type of Object.keys(commandCatalog)) expect(architecture, type).toContain(`\`${type}\``);
  });

  it('shows example events that the topic catalog accepts', () => {
    const examples = fencedBlocks(architecture, 'json')
      .map((block) => JSON.parse(block) as { type?: unknown })
      .filter((event) => typeof event.type === 'string');
    expect(examples.length).toBeGreaterThan(0);
    for (const event of examples) {
      const topic = Object.values(topics).find((spec) => Object.hasOwn(spec.schemas, event.type as string));
      expect(topic, `a topic carrying ${String(event.type)}`).toBeDefined();
      const result = validateEvent(topic!, event);
      expect(result.ok ? 'valid' : result.error.message, String(event.type)).toBe('valid');
    }
  });

  it("gives each service's default port as its configuration does", async () => {
    const configs: Record<string, { module: string; load: string; env: Record<string, string> }> = {
      'api-gateway-adapter': {
        module: 'config.ts',
        load: 'loadApiGatewayAdapterConfig',
        env: { KAFKA_BROKERS: 'localhost:9092', GITHUB_API_URL: 'http://127.0.0.1:4010', GITHUB_TOKEN: 'token' },
      },
      'sync-worker': {
        module: 'config.ts',
        load: 'loadSyncWorkerConfig',
        env: { KAFKA_BROKERS: 'localhost:9092', DATABASE_URL: 'postgres://postgres@127.0.0.1:5432/switchyard' },
      },
      'health-monitor': {
        module: 'config.ts',
        load: 'loadHealthMonitorConfig',
        env: { KAFKA_BROKERS: 'localhost:9092', HEALTH_TARGETS: 'github=http://127.0.0.1:4010/zen' },
      },
      'ws-fanout': { module: 'config.ts', load: 'loadWsFanoutConfig', env: { KAFKA_BROKERS: 'localhost:9092' } },
    };
    expect(Object.keys(configs).sort(), 'a config entry per service folder').toEqual(serviceFolders);
    const documented = new Map<string, number>();
    for (const match of architecture.matchAll(/^\| \[([a-z-]+)\]\(\.\.\/services\/\1\/\) \| (\d+) \|/gm)) {
      documented.set(match[1]!, Number(match[2]));
    }
    for (const [service, config] of Object.entries(configs)) {
      const module = (await import(pathToFileURL(join(root, 'services', service, 'src', config.module)).href)) as Record<
        string,
        (env: Record<string, string>) => { PORT: number }
      >;
      expect(documented.get(service), service).toBe(module[config.load]!(config.env).PORT);
    }
  });
});

describe('README.md', () => {
  it('has a Quickstart of exactly two commands', () => {
    const quickstart = readme.slice(readme.indexOf('## Quickstart'));
    const block = fencedBlocks(quickstart, 'sh')[0] ?? '';
    expect(block.split('\n').filter((line) => line.trim() !== '')).toEqual(['npm start', 'npm test']);
  });

  it('uses only npm scripts that package.json defines', () => {
    const scripts = Object.keys((JSON.parse(read('package.json')) as { scripts: Record<string, string> }).scripts);
    const used = [...readme.matchAll(/\bnpm (start|test|run ([a-z:-]+))\b/g)].map((match) => match[2] ?? match[1]!);
    expect(used.length).toBeGreaterThan(0);
    for (const script of used) expect(scripts, `npm ${script}`).toContain(script);
  });

  it('mentions every service folder', () => {
    for (const service of serviceFolders) expect(readme, service).toContain(`services/${service}`);
  });

  it('talks to the services on their documented default ports', () => {
    const ports = new Set([...architecture.matchAll(/^\| \[[a-z-]+\]\(\.\.\/services\/[a-z-]+\/\) \| (\d+) \|/gm)].map((m) => m[1]!));
    for (const match of readme.matchAll(/localhost:(\d+)/g)) expect([...ports], `localhost:${match[1]}`).toContain(match[1]);
  });
});

describe('links in README.md and docs/*.md', () => {
  const docs = ['README.md', ...readdirSync(join(root, 'docs')).filter((name) => name.endsWith('.md')).map((name) => `docs/${name}`)];

  it.each(docs)('%s: every relative link points to an existing file, and every anchor to a heading', (doc) => {
    const markdown = read(doc);
    const problems: string[] = [];
    for (const match of prose(markdown).matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)) {
      const target = match[1]!;
      if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue;
      const [path = '', anchor] = target.split('#');
      const file = path === '' ? join(root, doc) : resolve(dirname(join(root, doc)), path);
      if (!file.startsWith(root) || !existsSync(file)) {
        problems.push(`${target}: no such file`);
        continue;
      }
      if (anchor !== undefined && anchor !== '' && statSync(file).isFile() && file.endsWith('.md')) {
        if (!anchors(readFileSync(file, 'utf8')).has(anchor)) problems.push(`${target}: no heading #${anchor} in ${relative(root, file)}`);
      }
    }
    expect(problems).toEqual([]);
  });
});
