import { describe, expect, it } from 'vitest';
import { loadSyncWorkerConfig } from '../src/config.js';

const required = { KAFKA_BROKERS: '127.0.0.1:9092', DATABASE_URL: 'postgres://postgres@127.0.0.1:5432/switchyard' };

describe('sync worker config', () => {
  it('derives the group from the topic prefix and sizes the pool from the concurrency', () => {
    const config = loadSyncWorkerConfig({ ...required, TOPIC_PREFIX: 'staging.', SYNC_CONCURRENCY: '5' });
    expect(config).toMatchObject({ KAFKA_GROUP_ID: 'staging.sync-worker', DB_POOL_SIZE: 8, SYNC_SYNCHRONOUS_COMMIT: false, PORT: 8081 });
    expect(loadSyncWorkerConfig({ ...required, KAFKA_GROUP_ID: 'mine', DB_POOL_SIZE: '4' })).toMatchObject({ KAFKA_GROUP_ID: 'mine', DB_POOL_SIZE: 4 });
  });

  it('bounds a rebuild\'s swap at two minutes unless SYNC_REBUILD_SWAP_TIMEOUT_MS says otherwise, in whole milliseconds', () => {
    expect(loadSyncWorkerConfig(required).SYNC_REBUILD_SWAP_TIMEOUT_MS).toBe(120000);
    expect(loadSyncWorkerConfig({ ...required, SYNC_REBUILD_SWAP_TIMEOUT_MS: '3000' }).SYNC_REBUILD_SWAP_TIMEOUT_MS).toBe(3000);
    for (const bad of ['0', '-5', '1.5', 'soon']) {
      expect(() => loadSyncWorkerConfig({ ...required, SYNC_REBUILD_SWAP_TIMEOUT_MS: bad }), bad).toThrow(/SYNC_REBUILD_SWAP_TIMEOUT_MS/);
    }
  });

  it('names every bad variable', () => {
    expect(() => loadSyncWorkerConfig({ DATABASE_URL: 'http://nope', SYNC_CONCURRENCY: '0' })).toThrow(
      /KAFKA_BROKERS: required but not set[\s\S]*DATABASE_URL: expected postgres[\s\S]*SYNC_CONCURRENCY/,
    );
  });
});
