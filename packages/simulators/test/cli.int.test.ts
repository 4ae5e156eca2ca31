import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { assertBuilt } from '@switchyard/testkit/node';
import { describe, expect, it } from 'vitest';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const entry = join(root, 'dist', 'cli.js');


function start(env: Record<string, string>) {
  const child = spawn(process.execPath, [entry], { env: { PATH: process.env['PATH'] ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  const collect = (chunk: Buffer) => lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
  child.stdout.on('data', collect);
  child.stderr.on('data', collect);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, lines, exited };
}

async function until<T>(probe: () => T | undefined, what: string, timeoutMs = 10000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

describe('switchyard-simulators CLI', () => {
  it('serves the GitHub API with JSON logs, drops connections in destroy mode, and stops on SIGTERM', async () => {
    assertBuilt(root, 'dist/cli.js');
    const token = `ghp_cli_${Math.random().toString(36).slice(2)}`;
    const sim = start({ GITHUB_SIM_TOKEN: token, GITHUB_SIM_PORT: '0', GITHUB_SIM_REPOS: 'acme/gadgets', GITHUB_SIM_SERVER_TIMEOUT_MS: '100' });
    try {
      const url = await until(() => {
        for (const line of sim.lines) {
          const parsed = JSON.parse(line) as { msg?: string; url?: string };
          if (parsed.msg === 'github simulator listening') return parsed.url;
        }
        return undefined;
      }, 'the listening log line');

      expect((await fetch(`${url}/zen`)).status).toBe(200);
      const created = await fetch(`${url}/repos/acme/gadgets/issues`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ title: 'from the CLI test' }),
      });
      expect(created.status).toBe(201);
      expect(((await created.json()) as { number: number }).number).toBe(1);

      // A stall past GITHUB_SIM_SERVER_TIMEOUT_MS is cut off at it with GitHub's timeout answer.
      await fetch(`${url}/_sim/faults`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ response: 'stall', delayMs: 5000, route: '/zen' }),
      });
      const started = performance.now();
      const timedOut = await fetch(`${url}/zen`);
      expect(timedOut.status).toBe(502);
      expect(await timedOut.json()).toEqual({ message: 'Server Error' });
      expect(performance.now() - started).toBeLessThan(2000);

      await fetch(`${url}/_sim/mode`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: '{"mode":"destroy"}' });
      const dropped = await fetch(`${url}/zen`).then(
        () => 'answered',
        (error: Error) => (error.cause as { code?: string } | undefined)?.code ?? error.message,
      );
      expect(dropped).toMatch(/UND_ERR_SOCKET|ECONNRESET/);

      sim.child.kill('SIGTERM');
      expect(await sim.exited).toBe(0);
      expect(sim.lines.every((line) => JSON.parse(line) !== null)).toBe(true);
      expect(sim.lines.join('\n')).not.toContain(token);
    } finally {
      sim.child.kill('SIGKILL');
    }
  });

  it('exits 1 naming the missing token', async () => {
    assertBuilt(root, 'dist/cli.js');
    const sim = start({ GITHUB_SIM_PORT: '0' });
    expect(await sim.exited).toBe(1);
    expect(sim.lines.join('\n')).toMatch(/GITHUB_SIM_TOKEN: required but not set/);
  });
});
