// `etcd-lab env`: what a shell needs to use the lab with the usual tools (etcdctl reads ETCDCTL_*),
// the way `minikube docker-env` works: eval "$(etcd-lab env)".
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../errors.js';
import { loadLab, type LoadOptions } from '../config/load.js';
import { CLIENTS, pkiDirOf } from '../render/pki.js';
import { clientEndpointOf } from '../config/topology.js';
import { ExitCode } from '../exit-codes.js';
import { APISERVER_DIR, APISERVER_FILES } from '../render/apiserver.js';

export const SHELLS = ['bash', 'fish', 'powershell'] as const;
export type Shell = (typeof SHELLS)[number];

/** Variable → value; a value of undefined means unset it (plain mode after a TLS lab). */
export type LabEnv = Record<string, string | undefined>;

export function labEnv(opts: LoadOptions): LabEnv {
  const lab = loadLab(opts);
  // No runtime (and no Docker client to load): the endpoint follows from the spec and .env alone.
  const vars: LabEnv = { ETCDCTL_API: '3', ETCDCTL_ENDPOINTS: clientEndpointOf(lab.spec, lab.local) };
  const pki = pkiDirOf(lab.outDir);
  const files = { ETCDCTL_CACERT: 'ca.crt', ETCDCTL_CERT: `${CLIENTS.admin}.crt`, ETCDCTL_KEY: `${CLIENTS.admin}.key` };
  for (const [name, file] of Object.entries(files)) {
    if (!lab.spec.tls.enabled) {
      vars[name] = undefined;
      continue;
    }
    const path = join(pki, file);
    if (!existsSync(path)) {
      throw new UserError(`the lab's certificate ${path} does not exist yet`, { hint: 'run `etcd-lab up` (or `etcd-lab generate`) first', exitCode: ExitCode.badInput });
    }
    vars[name] = path;
  }
  // `etcd-lab apiserver` wrote a kubeconfig: kubectl talks to it. Without one, a KUBECONFIG of the person's own stays.
  const kubeconfig = apiServerKubeconfig(lab.outDir);
  if (kubeconfig) vars.KUBECONFIG = kubeconfig;
  return vars;
}

/** The host's kubeconfig of the lab's API server, when `etcd-lab apiserver` wrote one. */
export function apiServerKubeconfig(outDir: string): string | undefined {
  const path = join(outDir, APISERVER_DIR, APISERVER_FILES.kubeconfig);
  return existsSync(path) ? path : undefined;
}

const quote = {
  posix: (v: string) => `'${v.replace(/'/g, `'\\''`)}'`,
  powershell: (v: string) => `'${v.replace(/'/g, "''")}'`,
};

export function formatEnv(vars: LabEnv, shell: Shell): string {
  const lines = Object.entries(vars).map(([name, value]) => {
    if (shell === 'fish') return value === undefined ? `set -e ${name};` : `set -gx ${name} ${quote.posix(value)};`;
    if (shell === 'powershell') return value === undefined ? `Remove-Item Env:${name} -ErrorAction SilentlyContinue` : `$Env:${name} = ${quote.powershell(value)}`;
    return value === undefined ? `unset ${name}` : `export ${name}=${quote.posix(value)}`;
  });
  const how = {
    bash: '# To point your shell at this lab, run: eval "$(npx etcd-lab env)"',
    fish: '# To point your shell at this lab, run: npx etcd-lab env --shell fish | source',
    powershell: '# To point your shell at this lab, run: & npx etcd-lab env --shell powershell | Invoke-Expression',
  }[shell];
  return `${lines.join('\n')}\n${how}\n`;
}
