import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot, stackComponents, type Stack } from '@switchyard/infra';

function newest(dir: string): number {
  return Math.max(
    0,
    ...readdirSync(dir, { withFileTypes: true }).map((item) =>
      item.isDirectory() ? newest(join(dir, item.name)) : statSync(join(dir, item.name)).mtimeMs,
    ),
  );
}

/**
 * The stack runs from dist/, as users run it: refuse to test a build older than its sources (tsc -b rewrites only
 * the outputs that changed, but always the build info).
 */
export function assertBuilt(stack: Stack, root = repoRoot()): void {
  const stale: string[] = [];
  for (const component of stackComponents(stack)) {
    const dir = join(root, component.packageDir);
    let built = 0;
    try {
      statSync(join(dir, component.entry));
      built = statSync(join(dir, 'tsconfig.tsbuildinfo')).mtimeMs;
    } catch {
      // not built
    }
    if (built < newest(join(dir, 'src'))) stale.push(component.packageDir);
  }
  if (stale.length > 0) throw new Error(`not built, or older than src/: ${stale.join(', ')}; run \`npx tsc -b\` first`);
}
