import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { basename, sep } from 'node:path';

/** The process listening on a TCP port of this machine, as far as /proc lets us see it. */
export interface PortHolder {
  readonly pid: number;
  /** Its command line, arguments joined by spaces, the program by its file name (`node /…/dist/main.js`). */
  readonly command: string;
  /** Set when it is a local Kafka node started from a checkout: that checkout's root and the cluster's name. */
  readonly kafka?: { readonly checkout: string; readonly cluster: string };
}

const LISTEN = '0A';

/** Socket inodes listening on `port` (IPv4 and IPv6), from /proc/net/tcp*. */
function listeningInodes(port: number): Set<string> {
  const inodes = new Set<string>();
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = readFileSync(table, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      const local = fields[1];
      if (local === undefined || fields[3] !== LISTEN) continue;
      if (Number.parseInt(local.slice(local.lastIndexOf(':') + 1), 16) === port && fields[9] !== undefined) inodes.add(fields[9]);
    }
  }
  return inodes;
}

function socketOwner(inodes: Set<string>): number | undefined {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${entry}/fd`);
    } catch {
      continue; // another user's process, or gone
    }
    for (const fd of fds) {
      try {
        const target = readlinkSync(`/proc/${entry}/fd/${fd}`);
        if (target.startsWith('socket:[') && inodes.has(target.slice(8, -1))) return Number(entry);
      } catch {
        // closed meanwhile
      }
    }
  }
  return undefined;
}

const KAFKA_DATA = `${sep}.cache${sep}kafka-data${sep}`;

/**
 * Who listens on `port`: found through /proc (Linux), for processes this user may inspect. Undefined when the
 * holder cannot be seen (another user's process, or no /proc), in which case only the port can be named.
 */
export function portHolder(port: number): PortHolder | undefined {
  let pid: number | undefined;
  try {
    const inodes = listeningInodes(port);
    pid = inodes.size > 0 ? socketOwner(inodes) : undefined;
  } catch {
    return undefined;
  }
  if (pid === undefined) return undefined;
  let args: string[] = [];
  try {
    args = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter((arg) => arg !== '');
  } catch {
    // gone since
  }
  const command = [basename(args[0] ?? ''), ...args.slice(1)].join(' ').trim();
  // A node of ours runs `kafka.Kafka <checkout>/.cache/kafka-data/<cluster>/node-<id>/server.properties`.
  const config = args.includes('kafka.Kafka') ? args.at(-1) : undefined;
  const at = config?.indexOf(KAFKA_DATA) ?? -1;
  if (config !== undefined && at > 0) {
    const cluster = config.slice(at + KAFKA_DATA.length).split(sep)[0] ?? '';
    return { pid, command, kafka: { checkout: config.slice(0, at), cluster } };
  }
  return { pid, command };
}

/** "pid 123 (node /srv/app/dist/main.js)", shortened for a message. */
export function describeHolder(holder: PortHolder): string {
  const command = holder.command.length > 160 ? `${holder.command.slice(0, 157)}…` : holder.command;
  return `pid ${holder.pid}${command ? ` (${command})` : ''}`;
}
