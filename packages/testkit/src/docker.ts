import { existsSync } from 'node:fs';

/**
 * Whether a Docker engine answers. Cheap checks first (a socket or DOCKER_HOST), then testcontainers' own
 * runtime discovery, which is what would have to work anyway.
 */
export async function dockerAvailable(): Promise<boolean> {
  if (process.env['TESTCONTAINERS_DISABLED'] === 'true') return false;
  if (!process.env['DOCKER_HOST'] && !existsSync('/var/run/docker.sock')) return false;
  try {
    const { getContainerRuntimeClient } = await import('testcontainers');
    await getContainerRuntimeClient();
    return true;
  } catch {
    return false;
  }
}
