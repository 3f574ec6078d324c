// `etcd-lab dashboard`: a live page of the lab on the loopback address, until Ctrl-C or the lab goes down.
import { spawn } from 'node:child_process';
import type { Command } from 'commander';
import { ExitCode } from '../exit-codes.js';
import { ends, finish, loadOptionsFrom, outputOptions, reporter, seconds, specOptions, whole, type OutputFlags, type SpecFlags } from './shared.js';

type DashboardFlags = SpecFlags & OutputFlags & { port?: string; bind: string; open?: boolean; probe?: boolean; interval: string };

export function register(program: Command): void {
  outputOptions(specOptions(program.command('dashboard')))
    .description(
      'serve a live page of the lab on 127.0.0.1: who leads, each member\'s raft term, index and lag, where HAProxy routes, every fault and procedure run on the lab, and buttons for the faults; until Ctrl-C or `etcd-lab down`',
    )
    .option('--port <port>', 'port to listen on (default: a free one)')
    .option('--bind <ip>', 'address to listen on; anything but loopback lets other machines in (with the token)', '127.0.0.1')
    .option('--open', 'open the page in your browser')
    .option('--probe', 'read a key through HAProxy four times a second and draw the latency and errors a client sees')
    .option('--interval <seconds>', 'how often the members are read while a page is open', '1')
    .action(ends(async (flags: DashboardFlags) => {
      const { dashboard } = await import('../lab/dashboard.js');
      const result = await dashboard(
        {
          ...loadOptionsFrom(flags),
          ...(flags.port !== undefined ? { port: whole(flags.port, '--port', 0, 65535) } : {}),
          bind: flags.bind,
          probe: flags.probe,
          intervalMs: seconds(flags.interval, '--interval'),
          onListening: (url) => {
            // --json: JSON lines, as `status --watch --json` writes them: the address first, the ending last.
            if (flags.json) process.stdout.write(`${JSON.stringify({ url })}\n`);
            else process.stdout.write(`dashboard: ${url}\n  (Ctrl-C stops it; it stops by itself when the lab goes down)\n`);
            if (flags.open) openInBrowser(url);
          },
        },
        await reporter(flags),
      );
      if (flags.json) {
        process.stdout.write(`${JSON.stringify(result)}\n`);
        return ExitCode.ok;
      }
      return finish(flags, result, (r) => [`dashboard stopped: ${r.stopped}`], { kind: 'listing' });
    }));
}

/** The desktop's own opener; where there is none, the address printed above is the way. */
function openInBrowser(url: string): void {
  const command = process.platform === 'darwin' ? 'open' : process.platform === 'win32' ? 'explorer' : 'xdg-open';
  const child = spawn(command, [url], { stdio: 'ignore', detached: true });
  child.on('error', () => process.stderr.write(`could not run ${command} to open the page: open the address above in your browser\n`));
  child.unref();
}
