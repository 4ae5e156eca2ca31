import { describe, expect, it } from 'vitest';
import { loadSimulatorConfig } from '../src/index.js';

describe('simulator config', () => {
  it('applies defaults', () => {
    expect(loadSimulatorConfig({ GITHUB_SIM_TOKEN: 'dev-token' })).toEqual({
      GITHUB_SIM_PORT: 4010,
      GITHUB_SIM_HOST: '127.0.0.1',
      GITHUB_SIM_TOKEN: 'dev-token',
      GITHUB_SIM_REPOS: [],
      GITHUB_SIM_RATE_LIMIT: 5000,
      GITHUB_SIM_SERVER_TIMEOUT_MS: 10000,
      LOG_LEVEL: 'info',
    });
  });

  it('takes the server timeout in whole milliseconds, naming the variable when it is bad', () => {
    expect(loadSimulatorConfig({ GITHUB_SIM_TOKEN: 't', GITHUB_SIM_SERVER_TIMEOUT_MS: '2500' }).GITHUB_SIM_SERVER_TIMEOUT_MS).toBe(2500);
    for (const value of ['0', '1.5', 'soon', '600001']) {
      expect(() => loadSimulatorConfig({ GITHUB_SIM_TOKEN: 't', GITHUB_SIM_SERVER_TIMEOUT_MS: value })).toThrow(
        /GITHUB_SIM_SERVER_TIMEOUT_MS: /,
      );
    }
  });

  it('parses the repository list', () => {
    expect(loadSimulatorConfig({ GITHUB_SIM_TOKEN: 't', GITHUB_SIM_REPOS: 'acme/gadgets, octo/cat' }).GITHUB_SIM_REPOS).toEqual([
      'acme/gadgets',
      'octo/cat',
    ]);
  });

  it('requires a token and names every bad variable without echoing values', () => {
    let message = '';
    try {
      loadSimulatorConfig({ GITHUB_SIM_PORT: 'http', GITHUB_SIM_REPOS: 'widgets' });
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toMatch(/GITHUB_SIM_PORT: /);
    expect(message).toMatch(/GITHUB_SIM_TOKEN: required but not set/);
    expect(message).toMatch(/GITHUB_SIM_REPOS: expected owner\/name/);
  });

  it('never shows the token in an error', () => {
    expect(() => loadSimulatorConfig({ GITHUB_SIM_TOKEN: 'has space', GITHUB_SIM_PORT: '99999' })).toThrow(
      /GITHUB_SIM_TOKEN: no whitespace/,
    );
    expect(() => loadSimulatorConfig({ GITHUB_SIM_TOKEN: 'has space' })).not.toThrow(/has space/);
  });
});
