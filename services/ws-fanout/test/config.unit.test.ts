import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { loadWsFanoutConfig, WsFanoutConfig } from '../src/config.js';
import { fanoutGroupId, instanceId } from '../src/live.js';

describe('config', () => {
  const base = { KAFKA_BROKERS: '127.0.0.1:9092' };

  it('applies the documented defaults', () => {
    expect(loadWsFanoutConfig(base)).toEqual({
      PORT: 8083,
      HOST: '0.0.0.0',
      LOG_LEVEL: 'info',
      KAFKA_BROKERS: ['127.0.0.1:9092'],
      TOPIC_PREFIX: 'switchyard.',
      WS_MAX_BUFFERED_BYTES: 1048576,
      WS_PING_INTERVAL_MS: 30000,
      WS_MAX_SUBSCRIPTIONS: 100,
      WS_MAX_CONNECTIONS: 10000,
      WS_MAX_MESSAGE_BYTES: 65536,
      WS_CLOSE_TIMEOUT_MS: 5000,
    });
  });

  it('parses overrides and allowed origins', () => {
    const config = loadWsFanoutConfig({
      ...base,
      WS_MAX_BUFFERED_BYTES: '65536',
      WS_PING_INTERVAL_MS: '1000',
      WS_ALLOWED_ORIGINS: 'https://app.example.com, http://localhost:5173',
    });
    expect(config).toMatchObject({
      WS_MAX_BUFFERED_BYTES: 65536,
      WS_PING_INTERVAL_MS: 1000,
      WS_ALLOWED_ORIGINS: ['https://app.example.com', 'http://localhost:5173'],
    });
  });

  it('names every bad variable', () => {
    expect(() =>
      loadWsFanoutConfig({
        WS_MAX_BUFFERED_BYTES: '1MiB',
        WS_PING_INTERVAL_MS: '0',
        WS_MAX_SUBSCRIPTIONS: '-1',
        WS_MAX_CONNECTIONS: 'many',
        TOPIC_PREFIX: 'bad prefix',
      }),
    ).toThrow(
      /KAFKA_BROKERS: required but not set[\s\S]*TOPIC_PREFIX[\s\S]*WS_MAX_BUFFERED_BYTES[\s\S]*WS_PING_INTERVAL_MS[\s\S]*WS_MAX_SUBSCRIPTIONS[\s\S]*WS_MAX_CONNECTIONS/,
    );
  });

  it('explains why the close timeout is bounded, and what an origin looks like', () => {
    expect(() => loadWsFanoutConfig({ ...base, WS_CLOSE_TIMEOUT_MS: '30000' })).toThrow(
      /WS_CLOSE_TIMEOUT_MS: at most 20000: shutdown waits this long/,
    );
    expect(() => loadWsFanoutConfig({ ...base, WS_ALLOWED_ORIGINS: 'app.example.com' })).toThrow(
      /WS_ALLOWED_ORIGINS: expected origins like https:\/\/app.example.com/,
    );
  });
});

describe('README', () => {
  it('documents exactly the variables the service reads', () => {
    const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
    const section = readme.slice(readme.indexOf('## Configuration'), readme.indexOf('## Protocol'));
    const documented = [...section.matchAll(/^\| `([A-Z_]+)` \|/gm)].map((match) => match[1]);
    expect(documented.sort()).toEqual(Object.keys(WsFanoutConfig.shape).sort());
  });
});

describe('consumer group', () => {
  it('is unique per process under the topic prefix', () => {
    const id = instanceId('web-1', 4242, 'a1b2c3d4');
    expect(fanoutGroupId('switchyard.', id)).toBe('switchyard.ws-fanout.web-1-4242-a1b2c3d4');
    expect(instanceId('web-1', 4242)).not.toBe(instanceId('web-1', 4242));
  });
});
