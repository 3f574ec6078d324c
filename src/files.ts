// Files the lab writes whole or not at all: a crash, a full disk or Ctrl-C mid-write leaves either
// the old file or the new one, never half of either (etcd-lab.yaml, the .env files, the restore
// state, certificates). One helper, used for every file rewritten in place.
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { open, realpath, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/**
 * Writes `content` to `path` atomically: a temporary file in the same directory (so the rename
 * stays on one file system), with the mode asked for, else the mode the file has now, else 0644;
 * flushed to disk, then renamed over the original. The temporary file is removed on failure. A
 * symbolic link is followed: the file it points to is replaced, the link kept.
 */
export async function writeFileAtomic(path: string, content: string | Uint8Array, opts: { mode?: number } = {}): Promise<void> {
  const target = await realpath(path).catch(() => path);
  const mode = opts.mode ?? (await stat(target).then((s) => s.mode & 0o7777, () => 0o644));
  const temporary = join(dirname(target), `.${basename(target)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  try {
    const handle = await open(temporary, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, mode);
    try {
      await handle.writeFile(content);
      // The mode asked for, not the umask's cut of it.
      await handle.chmod(mode);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temporary, target);
  } catch (error) {
    await rm(temporary, { force: true }).catch(() => {});
    throw error;
  }
}
