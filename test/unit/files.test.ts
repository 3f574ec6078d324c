// Files rewritten in place: whole or not at all, their mode and comments kept; the .env editor.
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseDotenv, scanDotenv, setDotenvValue } from '../../src/config/local.js';
import { resizedLab, writeMemberCount } from '../../src/config/edit.js';
import { loadLab } from '../../src/config/load.js';
import { UserError } from '../../src/errors.js';
import { writeFileAtomic } from '../../src/files.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'etcd-lab-files-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('writeFileAtomic', () => {
  it("replaces a file keeping its mode, and leaves no temporary file", async () => {
    const path = join(dir, 'etcd-lab.yaml');
    writeFileSync(path, 'old\n');
    chmodSync(path, 0o640);
    await writeFileAtomic(path, 'new\n');
    expect(readFileSync(path, 'utf8')).toBe('new\n');
    expect(statSync(path).mode & 0o777).toBe(0o640);
    expect(readdirSync(dir)).toEqual(['etcd-lab.yaml']);
  });

  it('a new file gets the mode asked for, whatever the umask', async () => {
    await writeFileAtomic(join(dir, '.env'), 'A=1\n', { mode: 0o600 });
    expect(statSync(join(dir, '.env')).mode & 0o777).toBe(0o600);
  });

  it('follows a symbolic link: the file it points to is replaced, the link kept', async () => {
    mkdirSync(join(dir, 'real'));
    writeFileSync(join(dir, 'real', 'spec.yaml'), 'old\n');
    symlinkSync(join(dir, 'real', 'spec.yaml'), join(dir, 'link.yaml'));
    await writeFileAtomic(join(dir, 'link.yaml'), 'new\n');
    expect(readFileSync(join(dir, 'real', 'spec.yaml'), 'utf8')).toBe('new\n');
    expect(readdirSync(join(dir, 'real'))).toEqual(['spec.yaml']);
  });

  it('a failed write leaves the original as it was and no temporary file', async () => {
    // A directory where the file should go: the rename fails after the temporary file was written.
    mkdirSync(join(dir, 'taken'));
    writeFileSync(join(dir, 'taken', 'keep'), 'x');
    await expect(writeFileAtomic(join(dir, 'taken'), 'new\n')).rejects.toThrow();
    expect(readdirSync(dir)).toEqual(['taken']);
    expect(readFileSync(join(dir, 'taken', 'keep'), 'utf8')).toBe('x');
  });
});

describe('scale records the member count in etcd-lab.yaml', () => {
  it('keeps every comment and the file mode', async () => {
    const path = join(dir, 'etcd-lab.yaml');
    writeFileSync(path, '# our lab\nname: team-lab # the name\nmembers: 3\n');
    chmodSync(path, 0o600);
    await writeMemberCount(path, 5);
    expect(readFileSync(path, 'utf8')).toBe('# our lab\nname: team-lab # the name\nmembers: 5\n');
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(readdirSync(dir)).toEqual(['etcd-lab.yaml']);
  });
});

describe('a lab at another size (scale passes through each)', () => {
  const lab = (subnet: string) => {
    writeFileSync(join(dir, 'etcd-lab.yaml'), `name: sized\nmembers: 3\nnetwork:\n  subnet: ${subnet}\n`);
    return loadLab({ cwd: dir, env: {} });
  };

  it('takes the counts on the way (4 between 3 and 5), the rest of the spec kept', () => {
    const four = resizedLab(lab('10.9.0.0/24'), 4);
    expect(four.spec.members).toBe(4);
    expect(four.spec.network.subnet).toBe('10.9.0.0/24');
  });

  it('is validated again: a subnet too small for the new count is refused with the fix', () => {
    const error = (() => {
      try {
        resizedLab(lab('10.9.0.0/28'), 7);
      } catch (e) {
        return e as UserError;
      }
      throw new Error('expected a refusal');
    })();
    expect(error.message).toMatch(/lab "sized" cannot have 7 members: network.subnet: a \/28 has 16 addresses; 7 members need 32/);
    expect(error.hint).toMatch(/use a \/27 or larger/);
  });
});

describe('the .env reader and editor', () => {
  const text = '# mine\nETCD_LAB_CLIENT_PORT=23790\nthis is not a setting\nexport ETCD_LAB_STATS_PORT = 8405\nMULTI="a\nb"\nETCD_LAB_ETCD_IMAGE=old\n';

  it('reads every NAME=value, and names the lines that are not', () => {
    const { entries, malformed } = scanDotenv(text);
    expect(entries.map((e) => [e.name, e.value, e.line])).toEqual([
      ['ETCD_LAB_CLIENT_PORT', '23790', 2],
      ['ETCD_LAB_STATS_PORT', '8405', 4],
      ['MULTI', 'a\nb', 5],
      ['ETCD_LAB_ETCD_IMAGE', 'old', 7],
    ]);
    expect(malformed).toEqual([{ line: 3, text: 'this is not a setting' }]);
    // Node's parser alone reads the bad line together with the next one, losing the stats port.
    expect(parseDotenv(text).ETCD_LAB_STATS_PORT).toBe('8405');
  });

  it('sets a value in place, every other line kept as it was', () => {
    expect(setDotenvValue(text, 'ETCD_LAB_ETCD_IMAGE', 'new:v1')).toBe(text.replace('ETCD_LAB_ETCD_IMAGE=old', 'ETCD_LAB_ETCD_IMAGE=new:v1'));
    expect(setDotenvValue(text, 'MULTI', 'one')).toBe(text.replace('MULTI="a\nb"', 'MULTI=one'));
    expect(setDotenvValue('A=1', 'B', '2')).toBe('A=1\nB=2\n');
    expect(setDotenvValue('', 'B', 'has space')).toBe('B="has space"\n');
    expect(parseDotenv(setDotenvValue('', 'B', 'has space')).B).toBe('has space');
  });
});

describe('the base image tar', () => {
  it('a tar that fails fails the build with what tar said, and leaves no archive', async () => {
    const { packRootfs } = await import('../../src/runtime/images.js');
    const archive = join(dir, 'rootfs.tar');
    const error = await packRootfs(join(dir, 'missing'), archive).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UserError);
    expect((error as UserError).message).toMatch(/tar could not pack .*missing \(exit 2\): .*No such file or directory/);
    expect((error as UserError).exitCode).toBe(3);
    expect(readdirSync(dir)).toEqual([]);
  });

  it('a tree is packed whole', async () => {
    const { packRootfs } = await import('../../src/runtime/images.js');
    mkdirSync(join(dir, 'root'));
    writeFileSync(join(dir, 'root', 'etc-hostname'), 'lab\n');
    await packRootfs(join(dir, 'root'), join(dir, 'rootfs.tar'));
    expect(statSync(join(dir, 'rootfs.tar')).size).toBeGreaterThan(512);
  });
});
