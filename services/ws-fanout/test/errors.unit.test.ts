import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { closeCodeOf, wsFanoutErrors, type WsFanoutErrorCode } from '../src/errors.js';

const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');

/** Rows of the README's close-code table: `| \`WS_…\` | close | retriable | meaning | fix |`. */
function documentedRows(): Map<string, { close: string; retriable: string }> {
  const rows = new Map<string, { close: string; retriable: string }>();
  for (const line of readme.split('\n')) {
    const match = /^\| `(WS_[A-Z_]+)` \| ([^|]+) \| (yes|no) \|/.exec(line);
    if (match) rows.set(match[1]!, { close: match[2]!.trim(), retriable: match[3]! });
  }
  return rows;
}

function expectedClose(code: WsFanoutErrorCode): string {
  const spec: { close: number | null; http?: number } = wsFanoutErrors[code];
  if (spec.close !== null) return String(spec.close);
  return spec.http === undefined ? '—' : `HTTP ${spec.http}`;
}

describe('error registry', () => {
  it('every code has a README row with its close code and retry hint, and every row a code', () => {
    const rows = documentedRows();
    const codes = Object.keys(wsFanoutErrors) as WsFanoutErrorCode[];
    expect([...rows.keys()].sort()).toEqual([...codes].sort());
    for (const code of codes) {
      expect(rows.get(code), code).toEqual({ close: expectedClose(code), retriable: wsFanoutErrors[code].retriable ? 'yes' : 'no' });
    }
  });

  it('uses the close codes the brief promises, all legal to send (1000–1014 registered, 4000–4999 private)', () => {
    expect(closeCodeOf('WS_INVALID_JSON')).toBe(1007);
    expect(closeCodeOf('WS_INVALID_MESSAGE')).toBe(4400);
    expect(closeCodeOf('WS_TOO_MANY_SUBSCRIPTIONS')).toBe(4429);
    expect(closeCodeOf('WS_DUPLICATE_SUBSCRIPTION')).toBe(4409);
    expect(closeCodeOf('WS_SLOW_CONSUMER')).toBe(4008);
    expect(closeCodeOf('WS_SHUTTING_DOWN')).toBe(1001);
    expect(closeCodeOf('WS_SCOPE_MISSING')).toBe(4403);
    expect(closeCodeOf('WS_KEY_REVOKED')).toBe(4401);
    expect(wsFanoutErrors.WS_SUBPROTOCOL_REQUIRED).toMatchObject({ close: null, http: 400 });
    for (const code of Object.keys(wsFanoutErrors) as WsFanoutErrorCode[]) {
      const close = closeCodeOf(code);
      if (close === null) continue;
      expect(close === 1001 || close === 1002 || (close >= 1007 && close <= 1014) || (close >= 4000 && close <= 4999), code).toBe(true);
    }
  });
});
