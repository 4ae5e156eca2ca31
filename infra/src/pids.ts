import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

/** Whether a process with this pid exists (signal 0 probes without signalling). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The pid a pid or lock file holds, if it holds one. */
export function readPid(file: string): number | undefined {
  if (!existsSync(file)) return undefined;
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return undefined; // removed meanwhile
  }
  const pid = Number(text.trim());
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

/**
 * Takes a lock file holding this process's pid, across the processes of this machine; resolves with its release.
 * A lock whose holder died is taken over; `what` says, when the wait times out, what the holder is doing.
 */
export async function lockFile(file: string, timeoutMs: number, what: string): Promise<() => void> {
  mkdirSync(dirname(file), { recursive: true });
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const fd = openSync(file, 'wx');
      writeFileSync(fd, String(process.pid));
      closeSync(fd);
      return () => rmSync(file, { force: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const holder = readPid(file);
    if (holder === undefined || !isAlive(holder)) {
      // Empty (its writer is between open and write) or left by a process that died: wait a little, then take it.
      await new Promise((resolve) => setTimeout(resolve, 100));
      if (readPid(file) === holder) rmSync(file, { force: true });
      continue;
    }
    if (Date.now() > deadline) throw new Error(`${what} by process ${holder} for more than ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/** Resolves once `pid` has exited, SIGKILLing it when it is still there after `timeoutMs`. */
export async function waitGone(pid: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (isAlive(pid) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
  if (isAlive(pid)) process.kill(pid, 'SIGKILL');
  while (isAlive(pid)) await new Promise((resolve) => setTimeout(resolve, 50));
}

/** SIGTERM, then SIGKILL after `timeoutMs`; resolves once the process is gone. */
export async function stopPid(pid: number, timeoutMs: number): Promise<void> {
  process.kill(pid, 'SIGTERM');
  await waitGone(pid, timeoutMs);
}
