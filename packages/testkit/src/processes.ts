import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { waitFor } from './wait.js';

export interface ServiceProcessOptions {
  readonly name: string;
  /** The built entry point, e.g. services/sync-worker/dist/main.js. */
  readonly entry: string;
  readonly env: Record<string, string>;
  /** Base URL of the service's HTTP port, for the readiness wait. */
  readonly url: string;
  readonly readyTimeoutMs?: number;
  /** Wait for /readyz (default) or only /healthz (for services expected to start degraded). */
  readonly waitFor?: 'ready' | 'live' | 'none';
}

/** A service running as a real child process, as users run it: `node dist/main.js` with env config. */
export class ServiceProcess {
  readonly name: string;
  readonly url: string;
  /** Every stdout/stderr line, in order. */
  readonly lines: string[] = [];
  readonly exited: Promise<number | null>;
  private readonly child: ChildProcess;

  private constructor(options: ServiceProcessOptions) {
    this.name = options.name;
    this.url = options.url;
    this.child = spawn(process.execPath, [options.entry], {
      env: { PATH: process.env['PATH'] ?? '', ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    // Whole lines, however the pipe splits them: a JSON log line cut in two would not parse.
    for (const stream of [this.child.stdout, this.child.stderr]) {
      if (!stream) continue;
      createInterface({ input: stream, crlfDelay: Infinity }).on('line', (line) => {
        if (line.trim()) this.lines.push(line);
      });
    }
    // 'close', not 'exit': output still in the pipes has been read by then.
    this.exited = new Promise((resolve) => this.child.once('close', (code, signal) => resolve(signal ? null : code)));
  }

  static async start(options: ServiceProcessOptions): Promise<ServiceProcess> {
    const service = new ServiceProcess(options);
    const mode = options.waitFor ?? 'ready';
    if (mode === 'none') return service;
    const path = mode === 'ready' ? '/readyz' : '/healthz';
    let exited = false;
    const exit = service.exited.then((code) => {
      exited = true;
      return code;
    });
    const ready = waitFor(
      async () => {
        if (exited) return true;
        const response = await fetch(`${options.url}${path}`);
        return response.ok;
      },
      { timeoutMs: options.readyTimeoutMs ?? 30000, intervalMs: 100, what: `${options.name} ${path}` },
    );
    try {
      await ready;
      if (exited) throw new Error(`${options.name} exited with ${String(await exit)} before it was ready`);
    } catch (error) {
      service.kill();
      throw new Error(`${(error as Error).message}\n${service.tail(30)}`, { cause: error });
    }
    return service;
  }

  /** Parsed JSON log lines (non-JSON lines are skipped). */
  logs(): Record<string, unknown>[] {
    return this.lines.flatMap((line) => {
      try {
        return [JSON.parse(line) as Record<string, unknown>];
      } catch {
        return [];
      }
    });
  }

  tail(count: number): string {
    return `--- ${this.name} (last ${count} lines) ---\n${this.lines.slice(-count).join('\n')}`;
  }

  /** SIGTERM and wait for the exit code (graceful shutdown). */
  async stop(timeoutMs = 20000): Promise<number | null> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return this.child.exitCode;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs);
    const code = await this.exited;
    clearTimeout(timer);
    return code;
  }

  /** SIGKILL: no shutdown at all, as in a crash. */
  kill(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }
}
