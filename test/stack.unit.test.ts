import {
  COMPONENT_NAMES,
  DEFAULT_PORTS,
  defineStack,
  findComponent,
  formatLogLine,
  generateGithubToken,
  loadLocalStack,
  localKafkaName,
  redact,
  StackConfigError,
  stackComponents,
  type ComponentName,
  type StackComponent,
} from '@switchyard/infra';
import { describe, expect, it } from 'vitest';
import { loadSimulatorConfig, SimulatorConfig } from '../packages/simulators/src/config.js';
import { adapterVariables, loadApiGatewayAdapterConfig } from '../services/api-gateway-adapter/src/config.js';
import { HealthMonitorConfig, loadHealthMonitorConfig } from '../services/health-monitor/src/config.js';
import { loadSyncWorkerConfig, SyncWorkerConfig } from '../services/sync-worker/src/config.js';
import { loadWsFanoutConfig, WsFanoutConfig } from '../services/ws-fanout/src/config.js';

const TOKEN = 'ghp_0123456789abcdef0123456789abcdef0123';

/** Each component's own config loader and the variables its schema knows. */
const configs: Record<ComponentName, { load: (env: Record<string, string>) => unknown; variables: readonly string[] }> = {
  'github-simulator': { load: loadSimulatorConfig, variables: Object.keys(SimulatorConfig.shape) },
  // The adapter also reads each provider's connection variables (GITHUB_TOKEN, GITHUB_API_URL, …).
  'api-gateway-adapter': { load: loadApiGatewayAdapterConfig, variables: adapterVariables({}) },
  'sync-worker': { load: loadSyncWorkerConfig, variables: Object.keys(SyncWorkerConfig.shape) },
  'health-monitor': { load: loadHealthMonitorConfig, variables: Object.keys(HealthMonitorConfig.shape) },
  'ws-fanout': { load: loadWsFanoutConfig, variables: Object.keys(WsFanoutConfig.shape) },
};

const env = (component: StackComponent) => component.env;

describe('the local stack (npm start)', () => {
  it('runs the simulator and the four services on the documented ports with the documented environment', () => {
    const { stack, localBroker } = loadLocalStack({}, TOKEN);
    expect(localBroker).toBe(true);
    expect(stackComponents(stack).map((component) => [component.name, component.packageDir, component.entry, component.port])).toEqual([
      ['github-simulator', 'packages/simulators', 'dist/cli.js', 4010],
      ['api-gateway-adapter', 'services/api-gateway-adapter', 'dist/main.js', 8080],
      ['sync-worker', 'services/sync-worker', 'dist/main.js', 8081],
      ['health-monitor', 'services/health-monitor', 'dist/main.js', 8082],
      ['ws-fanout', 'services/ws-fanout', 'dist/main.js', 8083],
    ]);
    const common = { HOST: '127.0.0.1', LOG_LEVEL: 'info', KAFKA_BROKERS: '127.0.0.1:9092', TOPIC_PREFIX: 'switchyard.' };
    expect(env(stack.simulator)).toEqual({ GITHUB_SIM_PORT: '4010', GITHUB_SIM_HOST: '127.0.0.1', GITHUB_SIM_TOKEN: TOKEN, LOG_LEVEL: 'info' });
    expect(env(findComponent(stack, 'api-gateway-adapter'))).toEqual({
      ...common,
      PORT: '8080',
      GITHUB_API_URL: 'http://127.0.0.1:4010',
      GITHUB_TOKEN: TOKEN,
    });
    expect(env(findComponent(stack, 'sync-worker'))).toEqual({
      ...common,
      PORT: '8081',
      DATABASE_URL: 'postgres://postgres@127.0.0.1:5432/switchyard',
    });
    expect(env(findComponent(stack, 'health-monitor'))).toEqual({ ...common, PORT: '8082', HEALTH_TARGETS: 'github=http://127.0.0.1:4010/zen' });
    expect(env(findComponent(stack, 'ws-fanout'))).toEqual({ ...common, PORT: '8083' });
    expect(stack).toMatchObject({ kafkaBrokers: '127.0.0.1:9092', databaseUrl: 'postgres://postgres@127.0.0.1:5432/switchyard', topicPrefix: 'switchyard.' });
  });

  it('with --brokers 3, points every service at all three local nodes, in a cluster of its own name', () => {
    const { stack, localNodes } = loadLocalStack({}, TOKEN, { localNodes: 3 });
    expect(localNodes).toBe(3);
    for (const service of stack.services) expect(service.env['KAFKA_BROKERS']).toBe('127.0.0.1:9092,127.0.0.1:9094,127.0.0.1:9096');
    expect([localKafkaName(1), localKafkaName(3)]).toEqual(['local', 'local-3']);
    expect(loadLocalStack({ KAFKA_BROKERS: 'kafka:9092' }, TOKEN, { localNodes: 3 }).stack.kafkaBrokers).toBe('kafka:9092');
  });

  it('passes each component only variables its own config schema knows, and that config accepts them', () => {
    const { stack } = loadLocalStack({}, TOKEN);
    for (const component of stackComponents(stack)) {
      const { load, variables } = configs[component.name];
      expect(Object.keys(component.env).filter((name) => !variables.includes(name)), component.name).toEqual([]);
      expect(() => load({ ...component.env }), component.name).not.toThrow();
    }
  });

  it('hands the run’s token to the simulator and the adapter only', () => {
    const { stack } = loadLocalStack({}, TOKEN);
    const holders = stackComponents(stack).flatMap((component) =>
      Object.entries(component.env)
        .filter(([, value]) => value.includes(TOKEN))
        .map(([name]) => `${component.name}:${name}`),
    );
    expect(holders).toEqual(['github-simulator:GITHUB_SIM_TOKEN', 'api-gateway-adapter:GITHUB_TOKEN']);
    const tokens = new Set(Array.from({ length: 20 }, generateGithubToken));
    expect(tokens.size).toBe(20);
    for (const token of tokens) expect(token).toMatch(/^ghp_[0-9a-f]{36}$/);
  });

  it('uses KAFKA_BROKERS, DATABASE_URL, TOPIC_PREFIX, LOG_LEVEL and per-component ports from the environment', () => {
    const { stack, localBroker } = loadLocalStack(
      {
        KAFKA_BROKERS: 'kafka-1:9092,kafka-2:9092',
        DATABASE_URL: 'postgres://me:secret@db.internal:6543/yard',
        TOPIC_PREFIX: 'dev.',
        LOG_LEVEL: 'debug',
        SWITCHYARD_GITHUB_SIMULATOR_PORT: '5010',
        SWITCHYARD_WS_FANOUT_PORT: '9083',
        SWITCHYARD_SYNC_WORKER_PORT: '',
      },
      TOKEN,
    );
    expect(localBroker).toBe(false);
    expect(findComponent(stack, 'ws-fanout').port).toBe(9083);
    expect(findComponent(stack, 'sync-worker').port).toBe(DEFAULT_PORTS['sync-worker']);
    expect(env(findComponent(stack, 'api-gateway-adapter'))).toMatchObject({
      KAFKA_BROKERS: 'kafka-1:9092,kafka-2:9092',
      TOPIC_PREFIX: 'dev.',
      LOG_LEVEL: 'debug',
      GITHUB_API_URL: 'http://127.0.0.1:5010',
    });
    expect(env(findComponent(stack, 'health-monitor'))['HEALTH_TARGETS']).toBe('github=http://127.0.0.1:5010/zen');
    expect(env(findComponent(stack, 'sync-worker'))['DATABASE_URL']).toBe('postgres://me:secret@db.internal:6543/yard');
    expect(env(stack.simulator)['GITHUB_SIM_PORT']).toBe('5010');
  });

  it('refuses bad settings, naming every variable at fault', () => {
    const load = () =>
      loadLocalStack(
        {
          SWITCHYARD_API_GATEWAY_ADAPTER_PORT: 'eighty',
          SWITCHYARD_HEALTH_MONITOR_PORT: '8083',
          DATABASE_URL: 'mysql://localhost/x',
          KAFKA_BROKERS: 'localhost',
          LOG_LEVEL: 'loud',
        },
        TOKEN,
      );
    expect(load).toThrow(StackConfigError);
    try {
      load();
    } catch (error) {
      expect((error as StackConfigError).variables).toEqual([
        'SWITCHYARD_API_GATEWAY_ADAPTER_PORT',
        'SWITCHYARD_HEALTH_MONITOR_PORT',
        'DATABASE_URL',
        'KAFKA_BROKERS',
        'LOG_LEVEL',
      ]);
      expect((error as Error).message).toContain('SWITCHYARD_HEALTH_MONITOR_PORT: port 8083 would serve both health-monitor and ws-fanout');
    }
  });

  it('adds a component’s extra variables for tests and benchmarks without touching the others', () => {
    const base = loadLocalStack({}, TOKEN).stack;
    const stack = defineStack({
      kafkaBrokers: base.kafkaBrokers,
      databaseUrl: base.databaseUrl,
      topicPrefix: base.topicPrefix,
      githubToken: TOKEN,
      ports: DEFAULT_PORTS,
      bindHost: '127.0.0.1',
      simulatorHost: '127.0.0.1',
      logLevel: 'info',
      extraEnv: { 'github-simulator': { GITHUB_SIM_RATE_LIMIT: '100000' } },
    });
    expect(env(stack.simulator)['GITHUB_SIM_RATE_LIMIT']).toBe('100000');
    for (const name of COMPONENT_NAMES.filter((candidate) => candidate !== 'github-simulator')) {
      expect(env(findComponent(stack, name))).toEqual(env(findComponent(base, name)));
    }
  });
});

describe('the launcher’s log lines', () => {
  const options = { color: false, nameWidth: 19 };

  it('shows a JSON log line as time, process, level, message and compact fields', () => {
    const line = JSON.stringify({
      level: 'info',
      time: '2026-11-24T05:00:01.234Z',
      service: 'sync-worker',
      msg: 'projecting',
      groupId: 'switchyard.sync-worker',
      config: { PORT: 8081 },
      note: 'two words',
    });
    expect(formatLogLine('sync-worker', line, options)).toBe(
      '05:00:01.234 sync-worker         │ INFO  projecting groupId=switchyard.sync-worker config={…} note="two words"',
    );
  });

  it('keeps errors visible: message, type and the first stack frames on their own lines', () => {
    const line = JSON.stringify({
      level: 'fatal',
      time: '2026-11-24T05:00:01.234Z',
      msg: 'start failed',
      err: { type: 'SyncError', code: 'SYNC_MIGRATION_CHANGED', message: 'migration 0001 was changed', stack: 'SyncError: migration 0001 was changed\n    at migrate (file:///app/migrate.js:10:5)' },
    });
    expect(formatLogLine('sync-worker', line, options).split('\n')).toEqual([
      '05:00:01.234 sync-worker         │ FATAL start failed',
      '             ↳ SyncError SYNC_MIGRATION_CHANGED: migration 0001 was changed',
      '                 at migrate (file:///app/migrate.js:10:5)',
    ]);
  });

  it('passes other lines through behind the prefix, and cuts long values', () => {
    expect(formatLogLine('ws-fanout', 'Segmentation fault', options)).toBe('ws-fanout           │ Segmentation fault');
    const long = formatLogLine('ws-fanout', JSON.stringify({ level: 'warn', time: 0, msg: 'x', blob: 'y'.repeat(500) }), { ...options, maxFieldChars: 20 });
    expect(long).toBe(`00:00:00.000 ws-fanout           │ WARN  x blob=${'y'.repeat(19)}…`);
  });

  it('redacts the run’s secrets wherever they appear', () => {
    expect(redact(`Bearer ${TOKEN} and ${TOKEN}`, [TOKEN])).toBe('Bearer [redacted] and [redacted]');
    expect(redact('nothing here', [''])).toBe('nothing here');
  });
});
