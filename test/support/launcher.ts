import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { COMPONENT_NAMES, portVariable, repoRoot, type ComponentName } from '@switchyard/infra';
import { waitFor } from '@switchyard/testkit';
import { onTestFinished } from 'vitest';
import { freePorts } from './stack.js';

/** `npm start`'s launcher as scripts/start.sh runs it. */
export const LAUNCHER = join(repoRoot(), 'infra/dist/launch.js');

/** The launcher as a child process, with everything it prints (stdout and stderr) collected in `output`. */
export class Launcher {
  output = '';
  readonly exited: Promise<number | null>;
  readonly child: ChildProcess;

  constructor(env: Record<string, string>, args: readonly string[] = []) {
    this.child = spawn(process.execPath, [LAUNCHER, ...args], { env: { PATH: process.env['PATH'] ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child.stdout?.on('data', (chunk: Buffer) => (this.output += chunk.toString('utf8')));
    this.child.stderr?.on('data', (chunk: Buffer) => (this.output += chunk.toString('utf8')));
    this.exited = new Promise((resolve) => this.child.once('close', (code) => resolve(code)));
    onTestFinished(() => this.signal('SIGKILL'));
  }

  get pid(): number {
    return this.child.pid!;
  }

  async waitForOutput(text: string, timeoutMs = 60000): Promise<void> {
    await waitFor(() => this.output.includes(text), { timeoutMs, intervalMs: 50, what: `"${text}" in the launcher's output:\n${this.output}` });
  }

  signal(signal: NodeJS.Signals): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
  }
}

/** The launcher's children, by component (from each one's command line). */
export function children(pid: number): Map<ComponentName, number> {
  const found = new Map<ComponentName, number>();
  let pids: number[] = [];
  try {
    pids = execFileSync('ps', ['-o', 'pid=', '--ppid', String(pid)], { encoding: 'utf8' }).split('\n').filter((line) => line.trim()).map(Number);
  } catch {
    // ps exits 1 when there are none
  }
  for (const child of pids) {
    const cmdline = readFileSync(`/proc/${child}/cmdline`, 'utf8');
    const name = COMPONENT_NAMES.find((candidate) => cmdline.includes(candidate === 'github-simulator' ? 'simulators/dist/cli.js' : `${candidate}/dist/main.js`));
    if (name) found.set(name, child);
  }
  return found;
}

/** Whether a process runs (a zombie, exited but not yet reaped, does not). */
export const alive = (pid: number) => existsSync(`/proc/${pid}`) && !readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.startsWith('Z');

/** SIGKILLs the processes when the test ends, whichever of them still run. */
export function killWhenDone(pids: Iterable<number>): void {
  const list = [...pids];
  onTestFinished(() => {
    for (const pid of list) if (alive(pid)) process.kill(pid, 'SIGKILL');
  });
}

/** A folder for the launcher's development key, removed when the test ends. */
function keyFolder(): string {
  const folder = mkdtempSync(join(tmpdir(), 'sy-dev-key-'));
  onTestFinished(() => rmSync(folder, { recursive: true, force: true }));
  return folder;
}

/**
 * The launcher's environment for a test: its topic prefix, database and free ports, the development key in a
 * folder of the test's own (never the checkout's .cache/dev-key.json), and KAFKA_BROKERS when given.
 */
export async function launcherEnv(fixtures: { brokers?: string; topicPrefix: string; databaseUrl: string }): Promise<Record<string, string>> {
  const ports = await freePorts();
  return {
    ...(fixtures.brokers === undefined ? {} : { KAFKA_BROKERS: fixtures.brokers }),
    TOPIC_PREFIX: fixtures.topicPrefix,
    DATABASE_URL: fixtures.databaseUrl,
    SWITCHYARD_DEV_KEY_FILE: join(keyFolder(), 'dev-key.json'),
    ...Object.fromEntries(COMPONENT_NAMES.map((name) => [portVariable(name), String(ports[name])])),
  };
}
