import { execFile, spawn } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { promisify } from 'node:util';
import { COMPONENT_NAMES, portVariable } from '@switchyard/infra';
import { test, waitFor } from '@switchyard/testkit';
import { describe, expect, onTestFinished } from 'vitest';
import { alive, children, killWhenDone, Launcher, LAUNCHER, launcherEnv } from './support/launcher.js';

/**
 * `npm start`'s launcher (infra/dist/launch.js, as scripts/start.sh runs it) against this test's Kafka (through
 * KAFKA_BROKERS, so it starts no broker), database, topic prefix and free ports, keeping its development key in a
 * folder of the test's own (SWITCHYARD_DEV_KEY_FILE), never in the checkout's .cache/dev-key.json.
 */

const run = promisify(execFile);

/**
 * Runs a command line as printed (bash, with KEY set as the banner's `export` line sets it) until it prints its
 * first line, then stops it: for the stream examples, which run until stopped.
 */
function firstLine(line: string, env: Record<string, string>, timeoutMs = 15000): Promise<string> {
  const child = spawn('bash', ['-c', line], { env: { PATH: process.env['PATH'] ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  const stop = () => {
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      // already gone
    }
  };
  let output = '';
  let errors = '';
  return new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      stop();
      reject(new Error(`no output within ${timeoutMs} ms from: ${line}\n${errors}`));
    }, timeoutMs);
    child.stderr.on('data', (chunk: Buffer) => (errors += chunk.toString('utf8')));
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString('utf8');
      if (!output.includes('\n')) return;
      clearTimeout(timer);
      stop();
      resolve(output.slice(0, output.indexOf('\n')));
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      reject(new Error(`exited with ${String(code)} before printing a line: ${line}\n${errors}`));
    });
  });
}

describe('the launcher behind npm start', () => {
  test('starts the stack, mints and prints its key, prints commands that work as pasted, and leaves nothing running after SIGTERM', async ({
    brokers,
    topics,
    database,
  }) => {
    expect(existsSync(LAUNCHER), `${LAUNCHER} is missing: run npx tsc -b`).toBe(true);
    const env = await launcherEnv({ brokers, topicPrefix: topics.prefix, databaseUrl: database.url });
    const launcher = new Launcher(env);
    await launcher.waitForOutput('Switchyard is ready');
    const pids = children(launcher.pid);
    expect([...pids.keys()].sort()).toEqual([...COMPONENT_NAMES].sort());
    killWhenDone(pids.values());
    const token = readFileSync(`/proc/${pids.get('api-gateway-adapter')}/environ`, 'utf8')
      .split('\0')
      .find((entry) => entry.startsWith('GITHUB_TOKEN='))!
      .slice('GITHUB_TOKEN='.length);
    expect(token).toMatch(/^ghp_/);

    const api = `http://127.0.0.1:${env[portVariable('api-gateway-adapter')]}`;
    const output = launcher.output;

    // The development key: minted on this first run, saved for the user only, printed in the banner and nowhere else.
    const keyFile = env['SWITCHYARD_DEV_KEY_FILE']!;
    expect(statSync(keyFile).mode & 0o777).toBe(0o600);
    const saved = JSON.parse(readFileSync(keyFile, 'utf8')) as Record<string, string>;
    expect(saved).toEqual({ key: expect.stringMatching(/^sy_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/), keyId: saved['key']!.slice(0, 19), topicPrefix: topics.prefix, brokers });
    const key = saved['key']!;
    expect(output).toContain(`development key ${saved['keyId']} minted (no saved key); saved in ${keyFile}`);
    const bannerAt = output.indexOf('Switchyard is ready');
    expect(output.slice(0, bannerAt)).not.toContain(key);
    expect(output).toMatch(new RegExp(`^Key +${key}$`, 'm'));
    expect(output).toContain(`  export KEY=${key}\n`);
    expect(output).toContain(`TOPIC_PREFIX=${topics.prefix} npm run keys -- create --name ci --scope 'commands:send:github.issue.*'`);
    const shell = { KEY: key };
    expect(output).toContain(`ws://127.0.0.1:${env[portVariable('ws-fanout')]}/v1/stream?types=github.issue.*`);
    for (const name of ['api-gateway-adapter', 'sync-worker', 'health-monitor', 'ws-fanout'] as const) {
      expect(output).toContain(`http://127.0.0.1:${env[portVariable(name)]}/metrics`);
    }
    expect(output).toContain(`${brokers}  (KAFKA_BROKERS)`);

    // The curl as printed (two lines joined by its backslash) creates the issue.
    const lines = output.split('\n');
    const curlAt = lines.findIndex((line) => line.trimStart().startsWith(`curl -s ${api}/v1/commands`));
    expect(curlAt).toBeGreaterThan(0);
    const curl = `${lines[curlAt]!.replace(/\\$/, '')} ${lines[curlAt + 1]!}`;
    expect(curl).toContain('-H "Authorization: Bearer $KEY"');
    const { stdout: answer } = await run('bash', ['-c', curl], { env: { PATH: process.env['PATH'] ?? '', ...shell } });
    expect(JSON.parse(answer)).toMatchObject({ type: 'github.issue.create', target: 'github:repository:acme/widgets' });
    // Without the key, the same curl is refused.
    const { stdout: refused } = await run('bash', ['-c', curl], { env: { PATH: process.env['PATH'] ?? '', KEY: '' } });
    expect(JSON.parse(refused)).toMatchObject({ error: { code: 'AUTH_MALFORMED' } });

    // The stream examples for Node (the key in the Authorization header) and for a browser (as a subprotocol) as
    // printed: each is subscribed.
    const nodeExample = lines.find((line) => line.includes('node -e "new WebSocket('))!;
    const browserExample = lines.find((line) => line.includes('in a browser:'))!;
    expect(nodeExample).toContain("authorization: 'Bearer ' + process.env.KEY");
    expect(browserExample).toContain(`'switchyard.bearer.${key}'`);
    const nodeLine = nodeExample.slice(nodeExample.indexOf('node -e'));
    const browserLine = `node -e "${browserExample.slice(browserExample.indexOf('new WebSocket(')).replace(/;?\s*$/, '')}.onmessage = (m) => console.log(m.data)"`;
    for (const line of [nodeLine, browserLine]) {
      expect(JSON.parse(await firstLine(line, shell)), line).toMatchObject({ op: 'subscribed' });
    }

    // The psql line as printed finds it in github_issues.
    const psql = lines.find((line) => line.includes('FROM github_issues'))!.trim();
    expect(psql).toMatch(/^psql -h 127\.0\.0\.1 -U postgres sy_t_\w+ -c /);
    await waitFor(async () => (await run('bash', ['-c', psql])).stdout.includes('Widget jams'), { timeoutMs: 15000, what: `${psql} to list the issue` });
    const commandLog = lines.find((line) => line.includes('FROM command_log'))!.trim();
    await waitFor(async () => (await run('bash', ['-c', commandLog])).stdout.includes('succeeded'), { what: 'command_log to say succeeded' });

    launcher.signal('SIGTERM');
    expect(await launcher.exited).toBe(0);
    for (const [name, pid] of pids) expect(alive(pid), `${name} (pid ${pid}) still running`).toBe(false);
    expect(launcher.output).toMatch(/stopping the services[\s\S]*stopped$/m);
    expect(launcher.output).not.toContain(token);
    // The services' lines (name │ …) never show the key, before or after the banner.
    expect(launcher.output.split('\n').filter((line) => line.includes(' │ ') && line.includes(key))).toEqual([]);
  });

  test('when a service dies it says which and why, stops the rest and exits 1', async ({ brokers, topics, database }) => {
    const launcher = new Launcher(await launcherEnv({ brokers, topicPrefix: topics.prefix, databaseUrl: database.url }));
    await launcher.waitForOutput('Switchyard is ready');
    const pids = children(launcher.pid);
    killWhenDone(pids.values());

    process.kill(pids.get('ws-fanout')!, 'SIGKILL');
    expect(await launcher.exited).toBe(1);
    expect(launcher.output).toContain('ws-fanout was killed by SIGKILL');
    expect(launcher.output).toMatch(/last \d+ lines of ws-fanout:\n.*ws-fanout\s+│/);
    for (const [name, pid] of pids) expect(alive(pid), `${name} (pid ${pid}) still running`).toBe(false);
    expect(launcher.output).toMatch(/stopped \(exit code 1\)/);
  });

  test('refuses to start on a port in use, naming the variable that moves it', async () => {
    const holder = createServer();
    await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
    onTestFinished(() => new Promise<void>((resolve) => holder.close(() => resolve())));
    const port = (holder.address() as { port: number }).port;
    const launcher = new Launcher({ KAFKA_BROKERS: '127.0.0.1:1', [portVariable('ws-fanout')]: String(port) });
    expect(await launcher.exited).toBe(1);
    // The holder is named: here it is this test's own process.
    expect(launcher.output).toContain(`port ${port} (ws-fanout) is in use by pid ${process.pid} (`);
    expect(launcher.output).toContain('stop it, or set SWITCHYARD_WS_FANOUT_PORT');
    expect(children(launcher.pid).size).toBe(0);
  });

  test('says which dependency is missing when Postgres does not answer, and exits 1', async ({ brokers }) => {
    const unreachable = 'postgres://postgres:hunter2@127.0.0.1:1/switchyard';
    const launcher = new Launcher(await launcherEnv({ brokers, topicPrefix: 'unused.', databaseUrl: unreachable }));
    expect(await launcher.exited).toBe(1);
    expect(launcher.output).toMatch(/could not start: Postgres at postgres:\/\/postgres@127\.0\.0\.1:1\/switchyard \(DATABASE_URL\): .*ECONNREFUSED/);
    expect(launcher.output).not.toContain('hunter2');
  });

  test('refuses bad settings before starting anything', async () => {
    const launcher = new Launcher({ SWITCHYARD_SYNC_WORKER_PORT: 'x', LOG_LEVEL: 'chatty' });
    expect(await launcher.exited).toBe(2);
    expect(launcher.output).toMatch(/SWITCHYARD_SYNC_WORKER_PORT: expected a port[\s\S]*LOG_LEVEL: one of/);
    for (const args of [['--brokers', '2'], ['--brokers'], ['--nodes', '3']]) {
      const refused = new Launcher({}, args);
      expect(await refused.exited).toBe(2);
      expect(refused.output).toContain(args[0] === '--brokers' ? '--brokers: expected 1 or 3' : 'unknown argument: --nodes');
      expect(refused.output).toContain('usage: npm start');
    }
  });
});
