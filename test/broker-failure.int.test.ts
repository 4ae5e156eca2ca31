import { topics as catalog, type TopicSpec } from '@switchyard/events';
import { findComponent, localUrl } from '@switchyard/infra';
import { KafkaAdmin, type Kafka, type TopicNames } from '@switchyard/kafka';
import { clusterTest as test, EventCollector, testLogger, waitFor } from '@switchyard/testkit';
import { describe, expect, onTestFinished } from 'vitest';
import { assertBuilt } from './support/built.js';
import { bearer } from './support/http.js';
import { CLIENT_SCOPES, StackProcesses, testStack, UNLIMITED } from './support/stack.js';
import { StreamClient } from './support/stream.js';

/**
 * The whole stack on a 3-node cluster that loses a node — a plain broker, or the active controller — while
 * commands pour in over HTTP, and gets it back while they still do. Then every produce path is checked against
 * what was acknowledged: each 202 is a command in the log exactly once; each command has one terminal result and
 * its issue one entity event; the simulator holds one issue per command; Postgres equals the simulator; the
 * WebSocket client saw every entity event and result once. The commands and the stream use one API key, published
 * before the services start, with a budget the run does not reach.
 */

const COMMANDS = 240;
const IN_FLIGHT = 8;
const KILL_AT = 60;
const RESTART_AT = 150;

interface Submitted {
  readonly index: number;
  readonly commandId: string;
  readonly attempts: number;
}

/** POSTs one create, repeating it with the same Idempotency-Key while the adapter answers 503 (Kafka unavailable). */
async function submit(api: string, key: string, index: number, run: string): Promise<Submitted> {
  const body = JSON.stringify({
    type: 'github.issue.create',
    idempotencyKey: `${run}-${index}`,
    input: { owner: 'acme', repo: 'widgets', title: `${run} #${index}` },
  });
  for (let attempt = 1; ; attempt += 1) {
    const response = await fetch(`${api}/v1/commands`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'idempotency-key': `${run}-${index}`, ...bearer(key) },
      body,
    });
    const answer = (await response.json()) as { commandId?: string; error?: { code: string } };
    if (response.status === 202 && answer.commandId) return { index, commandId: answer.commandId, attempts: attempt };
    if (response.status !== 503 || attempt >= 20) throw new Error(`command ${index}: HTTP ${response.status} ${JSON.stringify(answer)}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

/** Reads a whole topic: every record up to the high watermarks as they are now. */
async function readTopic<T extends TopicSpec>(kafka: Kafka, names: TopicNames, spec: T): Promise<EventCollector<T>> {
  const admin = new KafkaAdmin(kafka, names, testLogger);
  await admin.connect();
  const offsets = await admin.partitionOffsets(names.name(spec));
  await admin.disconnect();
  const total = offsets.reduce((sum, { high, low }) => sum + Number(high) - Number(low), 0);
  const collector = await new EventCollector(kafka, names, spec, testLogger).start();
  await collector.waitForCount(total, { timeoutMs: 60000 });
  await collector.stop();
  return collector;
}

function countBy<T>(items: readonly T[], key: (item: T) => string): Map<string, number> {
  const counts = new Map<string, number>();
  for (const item of items) counts.set(key(item), (counts.get(key(item)) ?? 0) + 1);
  return counts;
}

describe('the stack on a 3-node cluster losing a node under load', () => {
  test.for([{ victim: 'a broker' }, { victim: 'the active controller' }] as const)(
    '$victim SIGKILLed and brought back: nothing acknowledged is lost or doubled on any produce path',
    { timeout: 240000 },
    async ({ victim }, { cluster, brokers, kafka, topics, database, keys }) => {
      const { stack } = await testStack({ brokers, topicPrefix: topics.prefix, databaseUrl: database.url });
      assertBuilt(stack);
      const key = await keys.create(CLIENT_SCOPES, { name: 'broker-failure client', limits: UNLIMITED });
      const processes = await StackProcesses.start(stack);
      onTestFinished(() => processes.kill());
      const api = localUrl(findComponent(stack, 'api-gateway-adapter'));
      const simulator = localUrl(stack.simulator);
      const stream = await StreamClient.subscribe(`${localUrl(findComponent(stack, 'ws-fanout'), 'ws')}/v1/stream?types=github.issue.*,switchyard.command.*`, key.key);
      onTestFinished(() => stream.close());
      await cluster.waitForFullIsr(kafka, Object.values(catalog).map((spec) => topics.name(spec)));

      const node = victim === 'a broker' ? cluster.someBroker() : cluster.activeController();
      const run = `bf${Date.now().toString(36)}`;
      const submitted: Submitted[] = [];
      let killed: Promise<void> = Promise.resolve();
      let restarted: Promise<void> = Promise.resolve();
      let next = 0;
      const started = performance.now();
      await Promise.all(
        Array.from({ length: IN_FLIGHT }, async () => {
          while (next < COMMANDS) {
            const index = next++;
            submitted.push(await submit(api, key.key, index, run));
            if (submitted.length === KILL_AT) killed = cluster.kill(node);
            if (submitted.length === RESTART_AT) restarted = killed.then(() => cluster.restart(node));
          }
        }),
      );
      await restarted;
      const submittedMs = performance.now() - started;

      // Everything settles: a terminal result for every command, a row for every issue, a frame for every result.
      const ids = new Set(submitted.map((entry) => entry.commandId));
      await waitFor(
        async () => {
          const { rows } = await database.pool.query<{ n: string }>(
            "SELECT count(*) AS n FROM command_log WHERE command_id = ANY($1) AND status IN ('succeeded', 'failed', 'rejected')",
            [[...ids]],
          );
          return Number(rows[0]?.n) === ids.size;
        },
        { timeoutMs: 90000, intervalMs: 250, what: 'a terminal result for every command in command_log' },
      );
      await cluster.waitForFullIsr(kafka, Object.values(catalog).map((spec) => topics.name(spec)));

      const [commands, results, entities] = await Promise.all([
        readTopic(kafka, topics.names, catalog.commands),
        readTopic(kafka, topics.names, catalog.commandResults),
        readTopic(kafka, topics.names, catalog.entities),
      ]);

      // POST /v1/commands: every 202 is one command in the log, and nothing else was written.
      const commandCounts = countBy(commands.events, (event) => event.id);
      expect([...ids].filter((id) => commandCounts.get(id) !== 1)).toEqual([]);
      expect(commandCounts.size).toBe(ids.size);
      // Each names the key it came with (its id, never the key), and so does each terminal result.
      expect(commands.events.filter((event) => event.authtype !== 'api_key' || event.authid !== key.keyId).map((event) => event.id)).toEqual([]);

      // The adapter's results: one terminal result per command, every one a success.
      const terminal = results.events.filter((event) => event.data.status !== 'accepted');
      const terminalCounts = countBy(terminal, (event) => event.data.commandId);
      expect([...ids].filter((id) => terminalCounts.get(id) !== 1)).toEqual([]);
      expect(terminal.filter((event) => event.data.status !== 'succeeded').map((event) => event.data.error?.code)).toEqual([]);
      expect(terminal.filter((event) => event.authid !== key.keyId).map((event) => event.data.commandId)).toEqual([]);

      // The simulator: one issue per command (the effect happened once), titled by the command that made it.
      const issues = (await (await fetch(`${simulator}/_sim/repos/acme/widgets/issues`)).json()) as { number: number; title: string; state: string }[];
      const titleCounts = countBy(issues, (issue) => issue.title);
      expect([...titleCounts].filter(([, count]) => count > 1)).toEqual([]);
      expect(issues.length).toBe(COMMANDS);

      // The adapter's entity events: one per issue, caused by its command.
      const entityCounts = countBy(entities.events, (event) => event.causationid ?? '');
      expect([...ids].filter((id) => entityCounts.get(id) !== 1)).toEqual([]);

      // The sync worker's projection equals the simulator.
      const { rows } = await database.pool.query<{ number: number; title: string; state: string }>(
        "SELECT number, title, state FROM github_issues WHERE repository = 'acme/widgets' ORDER BY number",
      );
      expect(rows).toEqual(issues.map(({ number, title, state }) => ({ number, title, state })).sort((a, b) => a.number - b.number));

      // The fanout delivered every entity event and every result produced while the client was connected, once.
      await waitFor(() => stream.frames.filter((timed) => timed.frame.op === 'event').length >= entities.events.length + results.events.length, {
        timeoutMs: 30000,
        what: 'a frame for every entity event and result',
      });
      const frameCounts = countBy(
        stream.frames.filter((timed) => timed.frame.op === 'event'),
        (timed) => timed.frame.event?.id ?? '',
      );
      const logged = [...entities.events, ...results.events].map((event) => event.id);
      expect(logged.filter((id) => frameCounts.get(id) !== 1)).toEqual([]);
      expect(frameCounts.size).toBe(logged.length);

      const retried = submitted.filter((entry) => entry.attempts > 1).length;
      console.log(
        `[broker-failure] ${victim} (node ${node}) killed at ${KILL_AT} and back at ${RESTART_AT} of ${COMMANDS} commands ` +
          `(${Math.round(submittedMs)} ms to submit; ${retried} needed a second POST): ${commandCounts.size} commands, ` +
          `${terminal.length} terminal results, ${issues.length} issues, ${rows.length} rows, ${frameCounts.size} frames`,
      );
      await processes.stop();
    },
  );
});
