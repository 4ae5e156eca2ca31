import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { KeyManager, keyMatches, KeyStore, parseKey, type CreatedKey, type NewKeyRequest } from '@switchyard/auth';
import { topics, type ApiKeyData } from '@switchyard/events';
import { createKafka, EventProducer, KafkaAdmin, silentKafkaLogger, TopicNames, type KafkaError } from '@switchyard/kafka';
import { createLogger } from '@switchyard/service-runtime';
import type { Stack } from './stack.js';

/**
 * API keys of a stack, made from outside its services: the development key `npm start` keeps for its user in
 * `.cache/dev-key.json`, and keys for benchmarks. Both are published to the stack's api-keys topic, which every
 * service reads; a key published before the services start is known to each when it is ready.
 */

export const DEV_KEY_NAME = 'local development key';
export const DEV_KEY_CREATED_BY = 'local-stack';
export const DEV_KEY_SCOPES = ['admin'] as const;
/** Where `npm start` keeps the development key, relative to the repository root (the folder is git-ignored). */
export const DEV_KEY_FILE = '.cache/dev-key.json';
const SOURCE = 'switchyard/local-stack';

/** The saved development key: the key itself, and the Kafka and topic prefix whose api-keys topic holds it. */
export interface DevKeyFile {
  readonly key: string;
  readonly keyId: string;
  readonly topicPrefix: string;
  readonly brokers: string;
}

export type DevKeyDecision =
  | { readonly action: 'reuse'; readonly saved: DevKeyFile }
  | { readonly action: 'mint'; readonly reason: string };

/** The saved file's contents when it is a development key file; undefined otherwise. */
export function parseDevKeyFile(text: string): DevKeyFile | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const { key, keyId, topicPrefix, brokers } = value as Record<string, unknown>;
  if (typeof key !== 'string' || typeof topicPrefix !== 'string' || typeof brokers !== 'string') return undefined;
  const parsed = parseKey(key);
  if (parsed === undefined || parsed.keyId !== keyId) return undefined;
  return { key, keyId: parsed.keyId, topicPrefix, brokers };
}

/**
 * Whether `npm start` can keep the saved development key or must mint a new one. `saved` is the file's text
 * (undefined: there is none); `onTopic` finds a key's record on the stack's api-keys topic, read up to date. The
 * saved key is kept only when its record is there, not revoked, and hashes to it. A record is never written again
 * here: re-publishing one could undo a revocation made meanwhile.
 */
export function decideDevKey(saved: string | undefined, onTopic: (keyId: string) => ApiKeyData | undefined): DevKeyDecision {
  if (saved === undefined) return { action: 'mint', reason: 'no saved key' };
  const file = parseDevKeyFile(saved);
  if (file === undefined) return { action: 'mint', reason: 'the saved key file is not valid' };
  const record = onTopic(file.keyId);
  if (record === undefined) {
    return { action: 'mint', reason: `the saved key ${file.keyId} is not on the api-keys topic (a new Kafka, or another TOPIC_PREFIX)` };
  }
  if (record.revokedAt !== undefined) {
    const by = record.revokedBy === undefined ? '' : ` by ${record.revokedBy}`;
    return { action: 'mint', reason: `the saved key ${file.keyId} was revoked at ${record.revokedAt}${by}` };
  }
  if (!keyMatches(file.key, record.hash)) return { action: 'mint', reason: `the saved key does not match the record of ${file.keyId}` };
  return { action: 'reuse', saved: file };
}

/** The development key file: SWITCHYARD_DEV_KEY_FILE (relative to `cwd`) when set, else `.cache/dev-key.json` under `root`. */
export function devKeyPath(env: Readonly<Record<string, string | undefined>>, root: string, cwd: string = process.cwd()): string {
  const chosen = env['SWITCHYARD_DEV_KEY_FILE'];
  if (chosen === undefined || chosen === '') return join(root, DEV_KEY_FILE);
  return isAbsolute(chosen) ? chosen : resolve(cwd, chosen);
}

function readSaved(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new Error(`reading ${path}: ${(error as Error).message}`, { cause: error });
  }
}

/** Writes the file readable by its owner only, whole or not at all. */
function writeSaved(path: string, file: DevKeyFile): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const temporary = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  writeFileSync(temporary, `${JSON.stringify(file, null, 2)}\n`, { mode: 0o600, flag: 'wx' });
  renameSync(temporary, path);
}

export interface StackKeysOptions {
  /** How long reading the api-keys topic up to date may take (default 30 s). */
  readonly timeoutMs?: number;
}

/**
 * Runs `work` with a key store that has read the stack's api-keys topic up to date and a manager that publishes
 * to it, then stops both. The topic must exist (`prepareStack`).
 */
async function withStackKeys<T>(
  stack: Stack,
  options: StackKeysOptions,
  work: (store: KeyStore, manager: () => Promise<KeyManager>) => Promise<T>,
): Promise<T> {
  const kafka = createKafka({ brokers: stack.kafkaBrokers.split(','), clientId: 'switchyard-launcher', logger: silentKafkaLogger });
  const names = new TopicNames(stack.topicPrefix);
  const admin = new KafkaAdmin(kafka, names, silentKafkaLogger);
  let fail: (error: Error) => void = () => undefined;
  const fatal = new Promise<never>((_, reject) => {
    fail = reject;
  });
  fatal.catch(() => undefined);
  const store = new KeyStore({
    kafka,
    names,
    admin,
    groupId: `${stack.topicPrefix}keys.launcher.${hostname()}-${process.pid}-${randomBytes(4).toString('hex')}`,
    logger: createLogger({ service: 'switchyard-launcher', level: 'silent' }),
    onFatal: (error: KafkaError) => fail(new Error(`reading ${names.name(topics.apiKeys)}: ${error.message}`, { cause: error })),
  });
  let producer: EventProducer | undefined;
  let started = false;
  try {
    await admin.connect();
    await Promise.race([store.start(), fatal]);
    started = true;
    const timeoutMs = options.timeoutMs ?? 30000;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${names.name(topics.apiKeys)} was not read up to date within ${timeoutMs} ms`)), timeoutMs);
    });
    try {
      await Promise.race([store.loaded, fatal, timeout]);
    } finally {
      clearTimeout(timer);
    }
    const manager = async () => {
      producer ??= new EventProducer(kafka, names);
      await producer.connect();
      return new KeyManager({ producer, store, source: SOURCE });
    };
    return await Promise.race([work(store, manager), fatal]);
  } finally {
    if (started) await store.stop().catch(() => undefined);
    await producer?.disconnect().catch(() => undefined);
    await admin.disconnect().catch(() => undefined);
  }
}

/** The development key `npm start` prints. */
export interface DevKey {
  readonly key: string;
  readonly keyId: string;
  /** Undefined when the saved key was kept; else why a new one was minted. */
  readonly minted?: string;
  /** The file it is saved in. */
  readonly file: string;
}

/**
 * The development key of this stack: the one saved in `path` when the api-keys topic still has it unrevoked
 * (`decideDevKey`), else a new `admin` key, published and saved (mode 0600). Run after the topics exist.
 */
export async function ensureDevKey(stack: Stack, path: string, options: StackKeysOptions = {}): Promise<DevKey> {
  const saved = readSaved(path);
  return withStackKeys(stack, options, async (store, manager) => {
    const decision = decideDevKey(saved, (keyId) => store.get(keyId)?.record);
    if (decision.action === 'reuse') {
      const current = { ...decision.saved, topicPrefix: stack.topicPrefix, brokers: stack.kafkaBrokers };
      if (current.topicPrefix !== decision.saved.topicPrefix || current.brokers !== decision.saved.brokers) writeSaved(path, current);
      else if ((statSync(path).mode & 0o077) !== 0) chmodSync(path, 0o600);
      return { key: current.key, keyId: current.keyId, file: path };
    }
    const created = await (await manager()).create({ name: DEV_KEY_NAME, scopes: [...DEV_KEY_SCOPES] }, DEV_KEY_CREATED_BY);
    writeSaved(path, { key: created.key, keyId: created.view.keyId, topicPrefix: stack.topicPrefix, brokers: stack.kafkaBrokers });
    return { key: created.key, keyId: created.view.keyId, minted: decision.reason, file: path };
  });
}

/**
 * Creates a key on the stack's api-keys topic (benchmarks, scripts): resolves once it is on the topic, so services
 * started afterwards know it when they are ready, and running ones within a fetch. `createdBy` names the tool.
 */
export async function createStackKey(stack: Stack, request: NewKeyRequest, createdBy: string, options: StackKeysOptions = {}): Promise<CreatedKey> {
  return withStackKeys(stack, options, async (_store, manager) => (await manager()).create(request, createdBy));
}
