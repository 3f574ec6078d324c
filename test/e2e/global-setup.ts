// Once per e2e run: make sure Docker answers and the local images exist, and remove what an
// earlier, interrupted run left behind. Ryuk cannot run here (its image cannot be pulled), so
// cleanup is ours: by label, before and after.
import { PlainReporter } from '../../src/ui/reporter.js';
import { DockerEngine } from '../../src/engine/docker.js';
import { buildLocalImages, LOCAL_IMAGES } from '../../src/runtime/images.js';
import { removeTestLabs, skipE2E, TEST_IMAGES } from './lab-fixture.js';

export async function setup(): Promise<() => Promise<void>> {
  if (skipE2E) {
    process.stderr.write('\n*** ETCD_LAB_SKIP_E2E=1: end-to-end tests are SKIPPED (no real containers were run) ***\n\n');
    return async () => {};
  }
  if (process.env.TESTCONTAINERS_RYUK_DISABLED !== 'true') {
    throw new Error('set TESTCONTAINERS_RYUK_DISABLED=true: the Ryuk image cannot be pulled here (vitest.config.ts sets it)');
  }
  const engine = new DockerEngine();
  try {
    await engine.ping();
  } catch (error) {
    throw new Error(
      `end-to-end tests need Docker: ${(error as Error).message}. Run scripts/setup-host.sh (or start Docker), or set ETCD_LAB_SKIP_E2E=1 to skip them on purpose.`,
    );
  }
  const usesLocal = TEST_IMAGES.etcd === LOCAL_IMAGES.etcd || TEST_IMAGES.haproxy === LOCAL_IMAGES.haproxy;
  if (usesLocal) await buildLocalImages({ engine }, new PlainReporter(process.stderr));
  // `loss` and `blackhole` build their helper when first needed: here once, not by two files at once.
  await buildLocalImages({ engine, nettoolsOnly: true }, new PlainReporter(process.stderr));
  const leftovers = await removeTestLabs();
  if (leftovers.length > 0) process.stderr.write(`removed leftovers of earlier test runs: ${leftovers.join(', ')}\n`);

  return async () => {
    const left = await removeTestLabs();
    if (left.length > 0) process.stderr.write(`removed what tests left behind: ${left.join(', ')}\n`);
  };
}
