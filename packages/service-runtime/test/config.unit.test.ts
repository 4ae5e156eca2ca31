import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { describeConfig, env, loadConfig } from '../src/index.js';

const Schema = z.object({
  KAFKA_BROKERS: env.brokers(),
  PORT: env.port(8080),
  TOPIC_PREFIX: env.topicPrefix(),
  DATABASE_URL: env.postgresUrl(),
  FEATURE: env.boolean(false),
});

describe('loadConfig', () => {
  it('parses and applies defaults; an empty variable counts as unset', () => {
    const config = loadConfig(Schema, { KAFKA_BROKERS: 'a:9092, b:9093', DATABASE_URL: 'postgres://u@h:5432/d', PORT: '', FEATURE: 'yes' });
    expect(config).toEqual({ KAFKA_BROKERS: ['a:9092', 'b:9093'], PORT: 8080, TOPIC_PREFIX: 'switchyard.', DATABASE_URL: 'postgres://u@h:5432/d', FEATURE: true });
  });

  it('reports every bad variable by name at once', () => {
    expect(() => loadConfig(Schema, { KAFKA_BROKERS: 'no-port', PORT: '70000', DATABASE_URL: 'mysql://x/y', TOPIC_PREFIX: 'a b' })).toThrow(
      expect.objectContaining({
        code: 'RT_CONFIG_INVALID',
        message: expect.stringMatching(/KAFKA_BROKERS:[\s\S]*PORT:[\s\S]*TOPIC_PREFIX:[\s\S]*DATABASE_URL: expected postgres/),
      }),
    );
    expect(() => loadConfig(Schema, {})).toThrow(/KAFKA_BROKERS: required but not set[\s\S]*DATABASE_URL: required but not set/);
  });
});

describe('describeConfig', () => {
  it('hides secrets and URL passwords, keeps the rest', () => {
    expect(
      describeConfig({ GITHUB_TOKEN: 'ghp_abc', WEBHOOK_SECRET: 's', DATABASE_URL: 'postgres://app:hunter2@db:5432/x', PORT: 8080 }),
    ).toEqual({ GITHUB_TOKEN: '[redacted]', WEBHOOK_SECRET: '[redacted]', DATABASE_URL: 'postgres://app@db:5432/x', PORT: 8080 });
  });
});
