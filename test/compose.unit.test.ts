import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import {
  COMPONENT_NAMES,
  DEFAULT_DATABASE_URL,
  databaseName,
  kafkaVersion,
  LOCAL_KAFKA_PORT,
  loadLocalStack,
  repoRoot,
  stackComponents,
  type StackComponent,
} from '@switchyard/infra';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';

/**
 * docker-compose.yml and the Dockerfile must run what `npm start` runs (infra/src/stack.ts): the same processes on
 * the same ports with the same environment, where only host names differ (a container reaches Kafka as kafka:9092,
 * not 127.0.0.1:9092, and listens on 0.0.0.0, not loopback).
 */

const root = repoRoot();
const read = (path: string) => readFileSync(join(root, path), 'utf8');

interface ComposeService {
  image?: string;
  build?: { context?: string; target?: string };
  ports?: (string | number)[];
  environment?: Record<string, string | number | boolean | null> | string[];
  healthcheck?: { test?: string | string[] };
  depends_on?: Record<string, { condition?: string }> | string[];
}
const compose = parse(read('docker-compose.yml'), { merge: true }) as { services: Record<string, ComposeService> };
const dockerfile = read('Dockerfile');

function service(name: string): ComposeService {
  const found = compose.services[name];
  if (!found) throw new Error(`docker-compose.yml has no service ${name}`);
  return found;
}

function environment(name: string): Record<string, string> {
  const raw = service(name).environment ?? {};
  const entries = Array.isArray(raw)
    ? raw.map((entry) => [entry.slice(0, entry.indexOf('=')), entry.slice(entry.indexOf('=') + 1)] as const)
    : Object.entries(raw).map(([key, value]) => [key, value === null ? '' : String(value)] as const);
  return Object.fromEntries(entries);
}

/** `"9092:19092"` → { host: 9092, container: 19092 }. */
function published(name: string): { host: number; container: number }[] {
  return (service(name).ports ?? []).map((spec) => {
    const parts = String(spec).split(':');
    return { host: Number(parts.at(-2) ?? parts.at(-1)), container: Number(parts.at(-1)) };
  });
}

const TOKEN = 'ghp_run_token_placeholder';
const local = loadLocalStack({}, TOKEN).stack;
const postgresUrl = new URL(DEFAULT_DATABASE_URL);
const simulator = local.simulator;

/** Where each endpoint the launcher uses on loopback lives in compose. */
const containerHosts: Record<string, string> = {
  [`127.0.0.1:${LOCAL_KAFKA_PORT}`]: `kafka:${LOCAL_KAFKA_PORT}`,
  [`127.0.0.1:${postgresUrl.port}`]: `postgres:${postgresUrl.port}`,
  [`127.0.0.1:${simulator.port}`]: `${simulator.name}:${simulator.port}`,
};

/** The launcher's value as it must read in a container: other host names, listening on every interface. */
function inContainer(value: string): string {
  if (value === '127.0.0.1') return '0.0.0.0';
  return Object.entries(containerHosts).reduce((text, [from, to]) => text.replaceAll(from, to), value);
}

const composeToken = environment(simulator.name)['GITHUB_SIM_TOKEN'] ?? '';

describe('docker-compose.yml against the local launcher (infra/src/stack.ts)', () => {
  it('runs the same four services and the simulator, plus kafka and postgres, and nothing else', () => {
    expect(Object.keys(compose.services).sort()).toEqual([...COMPONENT_NAMES, 'kafka', 'postgres'].sort());
  });

  it('publishes the same ports, each on the same port inside the container', () => {
    for (const component of stackComponents(local)) {
      expect(published(component.name), component.name).toEqual([{ host: component.port, container: component.port }]);
    }
    expect(published('kafka').map((port) => port.host)).toEqual([LOCAL_KAFKA_PORT]);
    expect(published('postgres')).toEqual([{ host: Number(postgresUrl.port), container: Number(postgresUrl.port) }]);
  });

  it('passes every variable the launcher passes, with the same values except host names', () => {
    for (const component of stackComponents(local)) {
      const expected = Object.fromEntries(
        Object.entries(component.env).map(([key, value]) => [key, inContainer(value).replaceAll(TOKEN, composeToken)]),
      );
      expect(environment(component.name), component.name).toEqual(expected);
    }
  });

  it('shares one overridable GitHub token between the simulator and the adapter', () => {
    expect(composeToken).toMatch(/^\$\{SWITCHYARD_GITHUB_TOKEN:-\S+\}$/);
    expect(environment('api-gateway-adapter')['GITHUB_TOKEN']).toBe(composeToken);
  });

  it('runs apache/kafka at the version of infra/kafka/pom.xml, reachable from containers as kafka:9092 and from the host on 9092', () => {
    expect(service('kafka').image).toBe(`apache/kafka:${kafkaVersion()}`);
    const env = environment('kafka');
    const listeners = new Map(
      (env['KAFKA_LISTENERS'] ?? '').split(',').map((entry) => {
        const [name, address] = entry.split('://');
        return [name, Number(address?.split(':').at(-1))] as const;
      }),
    );
    const advertised = new Map(
      (env['KAFKA_ADVERTISED_LISTENERS'] ?? '').split(',').map((entry) => entry.split('://') as [string, string]),
    );
    const listenerAdvertising = (address: string) => [...advertised].find(([, value]) => value === address)?.[0];
    // Containers: the address in every service's KAFKA_BROKERS is advertised, on the port it listens on.
    const internal = listenerAdvertising(`kafka:${LOCAL_KAFKA_PORT}`);
    expect(internal).toBeDefined();
    expect(listeners.get(internal)).toBe(LOCAL_KAFKA_PORT);
    // The host: the published port leads to a listener advertising localhost on that same port.
    const [port] = published('kafka');
    const external = listenerAdvertising(`localhost:${port!.host}`);
    expect(external).toBeDefined();
    expect(listeners.get(external)).toBe(port!.container);
    expect(env['KAFKA_PROCESS_ROLES']).toBe('broker,controller');
    expect(env['KAFKA_AUTO_CREATE_TOPICS_ENABLE']).toBe('false');
  });

  it('runs postgres:17 with the launcher’s database and user, password-less as locally', () => {
    expect(service('postgres').image).toBe('postgres:17');
    expect(environment('postgres')).toMatchObject({
      POSTGRES_DB: databaseName(DEFAULT_DATABASE_URL),
      POSTGRES_USER: postgresUrl.username,
      POSTGRES_HOST_AUTH_METHOD: 'trust',
    });
    expect(postgresUrl.password).toBe('');
    expect(JSON.stringify(service('postgres').healthcheck?.test)).toContain('pg_isready');
  });

  it('checks each process’s ready path, and starts it only after what it reaches by host name is healthy', () => {
    for (const component of stackComponents(local)) {
      const { healthcheck, depends_on: dependsOn } = service(component.name);
      expect(JSON.stringify(healthcheck?.test), component.name).toContain(`http://127.0.0.1:${component.port}${component.readyPath}`);
      const reached = ['kafka', 'postgres', simulator.name].filter((host) =>
        Object.values(environment(component.name)).some((value) => value.includes(`${host}:`)),
      );
      const healthy = Object.entries(Array.isArray(dependsOn) ? {} : (dependsOn ?? {}))
        .filter(([, condition]) => condition.condition === 'service_healthy')
        .map(([name]) => name);
      expect(healthy.sort(), component.name).toEqual(reached.sort());
    }
  });
});

/** Workspace package name → folder, from every package.json the workspace lists. */
function workspacePackages(): Map<string, string> {
  const dirs = ['infra', 'test', 'bench', ...['packages', 'services'].flatMap((parent) => readdirSync(join(root, parent)).map((name) => `${parent}/${name}`))];
  const packages = new Map<string, string>();
  for (const dir of dirs) {
    try {
      packages.set((JSON.parse(read(`${dir}/package.json`)) as { name: string }).name, dir);
    } catch {
      // not a package
    }
  }
  return packages;
}

/** The component's folder and every workspace package it depends on at run time, transitively. */
function runtimeWorkspaceDirs(component: StackComponent): string[] {
  const packages = workspacePackages();
  const seen = new Set<string>();
  const visit = (dir: string) => {
    if (seen.has(dir)) return;
    seen.add(dir);
    const manifest = JSON.parse(read(`${dir}/package.json`)) as { dependencies?: Record<string, string> };
    for (const [name, version] of Object.entries(manifest.dependencies ?? {})) {
      const dependency = packages.get(name);
      if (version.startsWith('workspace:') && dependency) visit(dependency);
    }
  };
  visit(component.packageDir);
  return [...seen].sort();
}

/** Paths matched by .dockerignore (enough of its syntax for our file: `**`, `*`, no negation). */
function dockerIgnored(path: string): boolean {
  const patterns = read('.dockerignore')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line && !line.startsWith('#'));
  expect(patterns.some((pattern) => pattern.startsWith('!')), '.dockerignore negations are not understood here').toBe(false);
  const regexes = patterns.map(
    (pattern) =>
      new RegExp(
        `^${pattern
          .replace(/^\//, '')
          .replace(/[.+^${}()|[\]\\]/g, '\\$&')
          .replace(/\*\*\//g, '<any-dirs>')
          .replace(/\*/g, '[^/]*')
          .replace(/<any-dirs>/g, '(.*/)?')}(/.*)?$`,
      ),
  );
  return regexes.some((regex) => regex.test(path));
}

function filesUnder(dir: string): string[] {
  return readdirSync(join(root, dir)).flatMap((name) =>
    statSync(join(root, dir, name)).isDirectory() ? filesUnder(`${dir}/${name}`) : [relative(root, join(root, dir, name))],
  );
}

describe('the Dockerfile', () => {
  const stages = [...dockerfile.matchAll(/^FROM\s+(\S+)\s+AS\s+(\S+)\s*$/gim)].map((match) => ({ from: match[1]!, name: match[2]! }));
  const stage = (name: string) => {
    const start = dockerfile.search(new RegExp(`^FROM\\s+\\S+\\s+AS\\s+${name}\\s*$`, 'im'));
    const rest = dockerfile.slice(start + 1);
    const next = rest.search(/^FROM\s/im);
    return next < 0 ? rest : rest.slice(0, next);
  };

  it('builds on node:24-slim with pnpm 10 from the frozen lockfile', () => {
    expect(stages[0]?.from).toBe('node:24-slim');
    expect(dockerfile).toMatch(/npm install --global pnpm@10/);
    expect(stage('build')).toMatch(/pnpm install --frozen-lockfile/);
    expect(stage('build')).toMatch(/pnpm run build/);
    expect(stage('prod-deps')).toMatch(/pnpm install --frozen-lockfile --offline --prod/);
  });

  it('has a target per compose process that runs the stack’s entry in its package folder', () => {
    for (const component of stackComponents(local)) {
      expect(service(component.name).build?.target, component.name).toBe(component.name);
      expect(stages.find((candidate) => candidate.name === component.name)?.from, component.name).toBe('runtime');
      const body = stage(component.name);
      expect(body).toMatch(new RegExp(`^WORKDIR /app/${component.packageDir}$`, 'm'));
      expect(body).toMatch(new RegExp(`^CMD \\["node", "${component.entry}"\\]$`, 'm'));
      expect(body).toMatch(new RegExp(`^EXPOSE ${component.port}$`, 'm'));
    }
  });

  it('copies the compiled output of every workspace package a process needs into the runtime image', () => {
    const runtime = stage('runtime');
    expect(runtime).toMatch(/^COPY --from=prod-deps \/app \/app$/m);
    for (const component of stackComponents(local)) {
      for (const dir of runtimeWorkspaceDirs(component)) {
        expect(runtime, `${component.name} needs ${dir}/dist`).toContain(`COPY --from=build /app/${dir}/dist /app/${dir}/dist`);
      }
    }
  });

  it('keeps what the build and the sync-worker’s migrations need in the build context, and leaves local builds out', () => {
    const needed = [
      'pnpm-lock.yaml',
      'pnpm-workspace.yaml',
      'package.json',
      'tsconfig.json',
      'tsconfig.base.json',
      ...filesUnder('patches'),
      ...filesUnder('services/sync-worker/migrations'),
      ...stackComponents(local).map((component) => `${component.packageDir}/src/${component.entry.replace(/^dist\//, '').replace(/\.js$/, '.ts')}`),
    ];
    expect(filesUnder('services/sync-worker/migrations').length).toBeGreaterThan(0);
    for (const path of needed) expect(dockerIgnored(path), path).toBe(false);
    for (const path of ['node_modules/x', 'services/sync-worker/node_modules/pg/index.js', 'services/sync-worker/dist/main.js', '.git/HEAD', '.cache/kafka/x']) {
      expect(dockerIgnored(path), path).toBe(true);
    }
  });
});
