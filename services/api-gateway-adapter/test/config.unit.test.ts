import { readFileSync } from 'node:fs';
import { describeConfig } from '@switchyard/service-runtime';
import { describe, expect, it } from 'vitest';
import { loadApiGatewayAdapterConfig } from '../src/config.js';
import { adapterErrors } from '../src/errors.js';

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
      /PORT: [\s\S]*KAFKA_BROKERS: expected host:port[\s\S]*GITHUB_API_URL: [\s\S]*GITHUB_TOKEN: required but not set[\s\S]*COMMAND_MAX_ATTEMPTS: /,
    );
  });

  it('explains a retry delay that would outlive the group session', () => {
    expect(() =>
      loadApiGatewayAdapterConfig({ ...base, COMMAND_ATTEMPT_TIMEOUT_MS: '20000', COMMAND_RETRY_MAX_DELAY_MS: '15000' }),
    ).toThrow(/COMMAND_RETRY_MAX_DELAY_MS: .*must stay below KAFKA_SESSION_TIMEOUT_MS.*thrown out of the consumer group/);
  });

  it('keeps the token out of the logged config and out of errors', () => {
    const config = loadApiGatewayAdapterConfig(base);
    expect(JSON.stringify(describeConfig(config))).not.toContain(base.GITHUB_TOKEN);
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
    for (const [code, spec] of Object.entries(adapterErrors)) {
      expect(rows.get(code), `README row for ${code}`).toBe(spec.retriable);
    }
    expect([...rows.keys()].sort()).toEqual(Object.keys(adapterErrors).sort());
  });
});
