import { describe, expect, it } from 'vitest';
import { loadHealthMonitorConfig } from '../src/config.js';
import { decideHealth, initialHealth, type ApiHealthState, type ProbeOutcome } from '../src/health.js';

const policy = { degradedLatencyMs: 500, failureThreshold: 2 };
const ok = (latencyMs = 20): ProbeOutcome => ({ kind: 'ok', latencyMs, httpStatus: 200 });
const failed = (reason = 'http_503'): ProbeOutcome => ({ kind: 'failed', latencyMs: 5, httpStatus: 503, reason });

function run(outcomes: ProbeOutcome[]) {
  let state: ApiHealthState = initialHealth;
  const changes = [];
  let time = Date.parse('2026-11-24T00:00:00Z');
  for (const outcome of outcomes) {
    const decided = decideHealth('github', state, outcome, policy, new Date((time += 1000)));
    state = decided.state;
    if (decided.change) changes.push(decided.change);
  }
  return { state, changes };
}

describe('decideHealth', () => {
  it('reports the first status, then only changes', () => {
    const { changes } = run([ok(), ok(), ok()]);
    expect(changes).toHaveLength(1);
    expect(changes[0]).toMatchObject({ api: 'github', status: 'up', previous: 'unknown', reason: null });
  });

  it('goes degraded on the first failure and down at the threshold, and back up on a success', () => {
    const { changes } = run([ok(), failed(), failed(), failed(), ok()]);
    expect(changes.map((change) => change.status)).toEqual(['up', 'degraded', 'down', 'up']);
    expect(changes[2]).toMatchObject({ previous: 'degraded', reason: 'http_503', consecutiveFailures: 2 });
    expect(changes[3]).toMatchObject({ previous: 'down', consecutiveFailures: 0 });
  });

  it('calls a slow success degraded, with the reason', () => {
    const { changes } = run([ok(), ok(900)]);
    expect(changes[1]).toMatchObject({ status: 'degraded', reason: 'slow', latencyMs: 900 });
  });

  it('keeps `since` at the moment the status began', () => {
    const { changes, state } = run([failed(), failed(), failed(), failed()]);
    expect(changes.map((change) => change.status)).toEqual(['degraded', 'down']);
    expect(state.since?.toISOString()).toBe(changes[1]?.since);
  });
});

describe('config', () => {
  const base = { KAFKA_BROKERS: '127.0.0.1:9092', HEALTH_TARGETS: 'github=http://127.0.0.1:4010/zen' };

  it('parses targets and applies defaults', () => {
    const config = loadHealthMonitorConfig(base);
    expect(config.HEALTH_TARGETS).toEqual([{ api: 'github', url: 'http://127.0.0.1:4010/zen' }]);
    expect(config).toMatchObject({ PORT: 8082, HEALTH_INTERVAL_MS: 10000, TOPIC_PREFIX: 'switchyard.' });
  });

  it('names every bad variable', () => {
    expect(() => loadHealthMonitorConfig({ HEALTH_TARGETS: 'github', HEALTH_INTERVAL_MS: 'soon' })).toThrow(
      /KAFKA_BROKERS: required but not set[\s\S]*HEALTH_TARGETS: expected api=http\(s\):\/\/url[\s\S]*HEALTH_INTERVAL_MS/,
    );
  });

  it('refuses duplicate api names', () => {
    expect(() =>
      loadHealthMonitorConfig({ ...base, HEALTH_TARGETS: 'a=http://x/1,a=http://x/2' }),
    ).toThrow(/HEALTH_TARGETS: api names must be unique/);
  });
});
