import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

function newest(dir: string): number {
  return Math.max(
    0,
    ...readdirSync(dir, { withFileTypes: true }).map((item) =>
      item.isDirectory() ? newest(join(dir, item.name)) : statSync(join(dir, item.name)).mtimeMs,
    ),
  );
}

/**
 * Whether a package's built entry is at least as new as its sources. Tests run services and CLIs from dist/, as
 * users run them, and must not test an old build. `tsc -b` rewrites only the outputs that changed, but always
 * its build info, so that is the build's time.
 */
export function isBuilt(packageDir: string, entry: string): boolean {
  let built = 0;
  try {
    statSync(join(packageDir, entry));
    built = statSync(join(packageDir, 'tsconfig.tsbuildinfo')).mtimeMs;
  } catch {
    // not built
  }
  return built >= newest(join(packageDir, 'src'));
}

/** Throws, naming the package, when its built entry is missing or older than its sources. */
export function assertBuilt(packageDir: string, entry: string): void {
  if (!isBuilt(packageDir, entry)) {
    throw new Error(`${join(packageDir, entry)} is missing or older than src/: run \`npx tsc -b\` first`);
  }
}
