import { join } from 'node:path';
import { repoRoot, stackComponents, type Stack } from '@switchyard/infra';
import { isBuilt } from '@switchyard/testkit';

/** The stack runs from dist/, as users run it: refuse to test a build older than its sources. */
export function assertBuilt(stack: Stack, root = repoRoot()): void {
  const stale = stackComponents(stack)
    .filter((component) => !isBuilt(join(root, component.packageDir), component.entry))
    .map((component) => component.packageDir);
  if (stale.length > 0) throw new Error(`not built, or older than src/: ${stale.join(', ')}; run \`npx tsc -b\` first`);
}
