import { topicName, topics, type TopicSpec } from '@switchyard/events';

/** Resolves catalog entries to real topic names under one deployment prefix, and back. */
export class TopicNames {
  readonly prefix: string;
  private readonly byName = new Map<string, TopicSpec>();

  constructor(prefix: string) {
    this.prefix = prefix;
    for (const spec of Object.values(topics)) this.byName.set(topicName(spec, prefix), spec);
  }

  name(spec: TopicSpec): string {
    return topicName(spec, this.prefix);
  }

  spec(name: string): TopicSpec | undefined {
    return this.byName.get(name);
  }
}
