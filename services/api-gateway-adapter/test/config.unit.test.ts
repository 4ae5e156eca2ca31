import { readFileSync } from 'node:fs';
import { describeConfig } from '@switchyard/service-runtime';
import { describe, expect, it } from 'vitest';
import { loadApiGatewayAdapterConfig } from '../src/config.js';
import { commandErrors } from '@switchyard/api';

const base = {
  KAFKA_BROKERS: '127.0.0.1:9092',
  GITHUB_API_URL: 'http://127.0.0.1:4010',
  GITHUB_TOKEN: 'ghp_configtesttoken',
};

describe('config', () => {
  it('applies the documented defaults and derives the group id from the prefix', () => {
    const config = loadApiGatewayAdapterConfig(base);
    expect(config).toMatchObject({
      PORT: 8080,
      TOPIC_PREFIX: 'switchyard.',
      KAFKA_GROUP_ID: 'switchyard.api-gateway-adapter',
      KAFKA_SESSION_TIMEOUT_MS: 30000,
      COMMAND_MAX_ATTEMPTS: 4,
      COMMAND_ATTEMPT_TIMEOUT_MS: 10000,
      COMMAND_MAX_AGE_MS: 3600000,
      KAFKA_BROKERS: ['127.0.0.1:9092'],
    });
    expect(loadApiGatewayAdapterConfig({ ...base, TOPIC_PREFIX: 'stack2.' }).KAFKA_GROUP_ID).toBe('stack2.api-gateway-adapter');
    expect(loadApiGatewayAdapterConfig({ ...base, KAFKA_GROUP_ID: 'mine' }).KAFKA_GROUP_ID).toBe('mine');
  });

  it('names every missing or malformed variable at once', () => {
    expect(() =>
      loadApiGatewayAdapterConfig({ KAFKA_BROKERS: 'kafka', GITHUB_API_URL: 'ftp://x', COMMAND_MAX_ATTEMPTS: 'many', PORT: '70000' }),
    ).toThrow(
      /PORT: [\s\S]*KAFKA_BROKERS: expected host:port[\s\S]*COMMAND_MAX_ATTEMPTS: [\s\S]*GITHUB_TOKEN: required for connection github/,
    );
  });

  it('reads the default connection per provider and more from CONNECTIONS, naming each bad variable', () => {
    const config = loadApiGatewayAdapterConfig({
      ...base,
      GITHUB_MAX_CONCURRENCY: '4',
      CONNECTIONS: 'github-acme,ghe',
      CONNECTION_GITHUB_ACME_PROVIDER: 'github',
      CONNECTION_GITHUB_ACME_TOKEN: 'ghp_acme',
      CONNECTION_GHE_PROVIDER: 'github',
      CONNECTION_GHE_TOKEN: 'ghp_ghe',
      CONNECTION_GHE_API_URL: 'https://ghe.example.com/api/v3',
    });
    expect(config.connections.map(({ name, baseUrl, maxConcurrency }) => ({ name, baseUrl, maxConcurrency }))).toEqual([
      { name: 'github', baseUrl: 'http://127.0.0.1:4010', maxConcurrency: 4 },
      { name: 'github-acme', baseUrl: 'https://api.github.com', maxConcurrency: undefined },
      { name: 'ghe', baseUrl: 'https://ghe.example.com/api/v3', maxConcurrency: undefined },
    ]);
    expect(() =>
      loadApiGatewayAdapterConfig({ ...base, CONNECTIONS: 'Bad Name,ops,ghe', CONNECTION_OPS_PROVIDER: 'jira', CONNECTION_GHE_PROVIDER: 'github' }),
    ).toThrow(/CONNECTIONS: "Bad Name"[\s\S]*CONNECTION_OPS_PROVIDER: unknown provider "jira"[\s\S]*CONNECTION_GHE_TOKEN: required for connection ghe/);
    // No connection at all is allowed: provider commands are then rejected, other handlers' commands still taken.
    expect(loadApiGatewayAdapterConfig({ KAFKA_BROKERS: '127.0.0.1:9092' }).connections).toEqual([]);
  });

  it('explains a retry delay that would outlive the group session', () => {
    expect(() =>
      loadApiGatewayAdapterConfig({ ...base, COMMAND_ATTEMPT_TIMEOUT_MS: '20000', COMMAND_RETRY_MAX_DELAY_MS: '15000' }),
    ).toThrow(/COMMAND_RETRY_MAX_DELAY_MS: .*must stay below KAFKA_SESSION_TIMEOUT_MS.*thrown out of the consumer group/);
  });

  it('keeps the token out of the logged config and out of errors', () => {
    const config = loadApiGatewayAdapterConfig(base);
    expect(JSON.stringify(describeConfig(config))).not.toContain(base.GITHUB_TOKEN);
    expect(JSON.stringify(config)).not.toContain(base.GITHUB_TOKEN);
    expect(describeConfig(config)['connections']).toEqual([{ name: 'github', provider: 'github', baseUrl: base.GITHUB_API_URL, token: '[redacted]' }]);
    let message = '';
    try {
      loadApiGatewayAdapterConfig({ ...base, KAFKA_BROKERS: '' , GITHUB_TOKEN: base.GITHUB_TOKEN });
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toMatch(/KAFKA_BROKERS/);
    expect(message).not.toContain(base.GITHUB_TOKEN);
  });
});

describe('error registry', () => {
  it('has a row per code in the README, with the same retriable flag, and no row for a code that does not exist', () => {
    const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
    const rows = new Map(
      [...readme.matchAll(/^\| `(AGW_[A-Z_]+)` \| (yes|no) \|/gm)].map((match) => [match[1], match[2] === 'yes']),
    );
    for (const [code, spec] of Object.entries(commandErrors)) {
      expect(rows.get(code), `README row for ${code}`).toBe(spec.retriable);
    }
    expect([...rows.keys()].sort()).toEqual(Object.keys(commandErrors).sort());
  });
});
