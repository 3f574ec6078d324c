#!/usr/bin/env node
// Benchmark (figures, not pass/fail): what TLS costs. Plain and TLS labs measured side by side in
// one run, alternating: `up` from nothing to ready, and put latency p50/p99 through HAProxy (one
// sequential client, keep-alive connections; in TLS mode with the admin client certificate).
//   node bench/tls.mjs [--runs 3] [--puts 2000]
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { putKey } from '../dist/protocol/etcd-http.js';
import { readClientTls } from '../dist/runtime/pki.js';
import { CLIENTS, pkiDirOf } from '../dist/render/pki.js';
import { benchImages, median, option, percentile, scratchLab } from './lib.mjs';

const runs = Number(option('runs', '3'));
const puts = Number(option('puts', '2000'));
const images = benchImages();
const modes = ['plain', 'tls'];
const figures = { plain: { up: [], p50: [], p99: [] }, tls: { up: [], p50: [], p99: [] } };

const labs = {};
for (const [i, mode] of modes.entries()) {
  labs[mode] = await scratchLab({
    name: `bench-${mode}-${process.pid}`,
    subnet: `10.${150 + i}.${process.pid % 200}.0/24`,
    images,
    extraYaml: `tls:\n  enabled: ${mode === 'tls'}\n`,
  });
}

try {
  for (let run = 1; run <= runs; run++) {
    for (const mode of modes) {
      const lab = labs[mode];
      lab.cli('down', '--volumes', '--yes', '--quiet');
      const up = lab.cli('up', '--json');
      const { clientEndpoint } = JSON.parse(up.stdout);
      const endpoint = mode === 'tls' ? { url: clientEndpoint, tls: readClientTls(pkiDirOf(join(lab.dir, 'generated')), CLIENTS.admin) } : clientEndpoint;
      for (let i = 0; i < 50; i++) await putKey(endpoint, `bench/warm/${i}`, 'x', 2000); // connections and leader settled
      const samples = [];
      for (let i = 0; i < puts; i++) {
        const start = process.hrtime.bigint();
        await putKey(endpoint, `bench/tls/${run}/${i}`, 'x', 2000);
        samples.push(Number(process.hrtime.bigint() - start) / 1e6);
      }
      const f = figures[mode];
      f.up.push(up.ms);
      f.p50.push(percentile(samples, 50));
      f.p99.push(percentile(samples, 99));
      process.stderr.write(`  run ${run}/${runs} ${mode.padEnd(5)}: up ${(up.ms / 1000).toFixed(2)} s, put p50 ${f.p50.at(-1).toFixed(2)} ms, p99 ${f.p99.at(-1).toFixed(2)} ms\n`);
    }
  }
} finally {
  for (const lab of Object.values(labs)) {
    try {
      lab.cli('down', '--volumes', '--yes', '--quiet');
    } finally {
      rmSync(lab.dir, { recursive: true, force: true });
    }
  }
}

const m = (mode, key) => median(figures[mode][key]);
console.log(`\nTLS against plain, 3 members, medians of ${runs} alternating runs (${puts} sequential puts each, images ${images.etcd}):`);
console.log(`                      plain       TLS        TLS/plain`);
console.log(`  up → ready       ${(m('plain', 'up') / 1000).toFixed(2).padStart(6)} s   ${(m('tls', 'up') / 1000).toFixed(2).padStart(6)} s   ${(m('tls', 'up') / m('plain', 'up')).toFixed(2)}`);
for (const key of ['p50', 'p99']) {
  console.log(`  put ${key}          ${m('plain', key).toFixed(2).padStart(6)} ms  ${m('tls', key).toFixed(2).padStart(6)} ms  ${(m('tls', key) / m('plain', key)).toFixed(2)}`);
}
