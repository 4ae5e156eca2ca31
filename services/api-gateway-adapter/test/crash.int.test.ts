import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { topics as catalog, type TopicEvent, type Topics } from '@switchyard/events';
import { createGithubSimulator } from '@switchyard/simulators';
import { assertBuilt, freePort, ServiceProcess, test, uniqueName, waitFor } from '@switchyard/testkit';
import { describe, expect, onTestFinished } from 'vitest';
import { command, SIM_SERVER_TIMEOUT_MS, SIM_TOKEN } from './harness.js';

/**
 * Two adapter instances (the built service, as child processes) share the commands of one consumer group while
 * they are SIGKILLed, ten times in all, at random moments, and restarted: a crash lands between sending a create
 * and writing its result, between the result and the offset commit, anywhere. Counted at the provider: one issue
 * per command, each with its own command's marker, and exactly one terminal result per command.
 */

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const entry = join(root, 'dist', 'main.js');
const COMMANDS = 2000;
const KILLS = 10;
const MARKER = /<!-- switchyard:command (\S+) -->/;

type ResultEvent = TopicEvent<Topics['commandResults']>;

/** A small deterministic PRNG, so a failing run can be replayed from its seed. */
function prng(seed: number): () => number {
  let state = seed >>> 0 || 1;
  return () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) / 4294967296;
  };
}

describe('crash safety', () => {
  test(`${COMMANDS} creates over two instances SIGKILLed ${KILLS} times: one issue per command, one terminal result each`, { timeout: 300000 }, async ({
    brokers,
    topics,
    producer,
    collect,
  }) => {
    assertBuilt(root, 'dist/main.js');
    const seed = Number(process.env['SWITCHYARD_CRASH_SEED'] ?? Date.now() % 100000);
    const random = prng(seed);
    const sim = createGithubSimulator({ tokens: [SIM_TOKEN], repos: ['acme/widgets'], serverTimeoutMs: SIM_SERVER_TIMEOUT_MS });
    const simUrl = await sim.listen();
    onTestFinished(() => sim.close());
    // A little latency per request, so that kills often find creates in flight.
    sim.control.setLatency(4);
    const results = await collect(catalog.commandResults);
    const groupId = uniqueName('agw-crash-');
    const env = {
      HOST: '127.0.0.1',
      LOG_LEVEL: 'warn',
      KAFKA_BROKERS: brokers,
      TOPIC_PREFIX: topics.prefix,
      KAFKA_GROUP_ID: groupId,
      KAFKA_SESSION_TIMEOUT_MS: '6000',
      GITHUB_API_URL: simUrl,
      GITHUB_TOKEN: SIM_TOKEN,
      GITHUB_SETTLE_MS: String(SIM_SERVER_TIMEOUT_MS),
      COMMAND_ATTEMPT_TIMEOUT_MS: '2000',
      COMMAND_RETRY_BASE_DELAY_MS: '20',
      COMMAND_RETRY_MAX_DELAY_MS: '2000',
      COMMAND_LOOKUP_INTERVAL_MS: '100',
      COMMAND_CONCURRENCY: '16',
    };
    const ports = [await freePort(), await freePort()];
    const start = (index: number) =>
      ServiceProcess.start({ name: `adapter-${index}`, entry, url: `http://127.0.0.1:${ports[index]}`, env: { ...env, PORT: String(ports[index]) }, waitFor: 'live' });
    const instances = [await start(0), await start(1)];
    onTestFinished(() => instances.forEach((instance) => instance.kill()));

    const built = Array.from({ length: COMMANDS }, (_, index) => command('github.issue.create', { owner: 'acme', repo: 'widgets', title: `crash ${index}` }));
    const ids = new Set(built.map((entry) => entry.receipt.commandId));
    const finished = () => new Set(results.events.filter((event) => ids.has(event.data.commandId) && event.data.status !== 'accepted').map((event) => event.data.commandId)).size;

    // Commands arrive over the whole run (40 a second), so there is always work in flight; each kill comes once
    // the instances have finished a random number of further commands since the last one, so it lands mid-work.
    const producing = (async () => {
      for (let from = 0; from < COMMANDS; from += 40) {
        await producer.send(catalog.commands, built.slice(from, from + 40).map((entry) => entry.envelope));
        await new Promise((resolve) => setTimeout(resolve, 1000));
      }
    })();
    const kills: { at: number; instance: number; finished: number }[] = [];
    const began = performance.now();
    for (let kill = 0; kill < KILLS; kill += 1) {
      const target = Math.min(COMMANDS - 1, finished() + 20 + Math.floor(random() * 120));
      await waitFor(() => finished() >= target, { timeoutMs: 60000, intervalMs: 5, what: `${target} commands finished before kill ${kill + 1}` });
      const index = random() < 0.5 ? 0 : 1;
      instances[index]!.kill();
      await instances[index]!.exited;
      kills.push({ at: Math.round(performance.now() - began), instance: index, finished: finished() });
      instances[index] = await start(index);
    }
    await producing;

    await waitFor(() => finished() === COMMANDS, { timeoutMs: 180000, intervalMs: 200, what: `a terminal result for each of ${COMMANDS} commands` });
    // Redeliveries after the last restart are answered from the view; give them a moment to (not) act.
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const issues = sim.control.issues('acme/widgets');
    const markers = issues.map((issue) => MARKER.exec(String(issue['body']))?.[1] ?? '(none)');
    const byCommand = new Map<string, ResultEvent[]>();
    for (const event of results.events) {
      if (!ids.has(event.data.commandId)) continue;
      byCommand.set(event.data.commandId, [...(byCommand.get(event.data.commandId) ?? []), event]);
    }
    const terminalCounts = [...byCommand.values()].map((events) => events.filter((event) => event.data.status !== 'accepted').length);
    const takenOver = [...byCommand.values()].filter((events) => events.filter((event) => event.data.status === 'accepted').length > 1).length;
    const found = [...byCommand.values()].filter((events) => events.some((event) => event.data.foundExisting === true)).length;
    console.log(
      `[crash] seed ${seed}: ${KILLS} kills at ${kills.map((k) => `${k.at}ms/#${k.instance} (${k.finished} done)`).join(', ')}; ` +
        `${issues.length} issues for ${COMMANDS} commands; ${takenOver} commands picked up more than once, ${found} settled by finding their issue`,
    );

    // One issue per command, and no issue that is not a command's.
    expect(issues.length).toBe(COMMANDS);
    expect(sim.control.counters().issuesCreated).toBe(COMMANDS);
    expect(new Set(markers).size).toBe(COMMANDS);
    expect(markers.filter((marker) => !ids.has(marker))).toEqual([]);
    // Exactly one terminal result per command, every one a success naming the issue that carries its marker.
    expect(terminalCounts.filter((count) => count !== 1)).toEqual([]);
    const numberOf = new Map(issues.map((issue) => [MARKER.exec(String(issue['body']))?.[1], issue['number']]));
    for (const [id, events] of byCommand) {
      const final = events.find((event) => event.data.status !== 'accepted')!;
      expect(final.data.status, `${id}: ${final.data.error?.code ?? ''}`).toBe('succeeded');
      expect(final.data.entity?.entityId).toBe(`acme/widgets#${String(numberOf.get(id))}`);
    }
    for (const instance of instances) expect(await instance.stop()).toBe(0);
  });
});
