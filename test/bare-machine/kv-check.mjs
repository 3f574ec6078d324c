// Runs INSIDE the bare-machine container with its Node.js: a put and a get through 127.0.0.1:2379
// (the port the lab publishes, i.e. HAProxy), over etcd's v3 JSON gateway. Prints what it wrote and
// read as one JSON line; exits 1 when they differ or a request fails.
// usage: node kv-check.mjs KEY VALUE [ENDPOINT]
const [key, value, endpoint = 'http://127.0.0.1:2379'] = process.argv.slice(2);
if (!key || !value) {
  console.error('usage: node kv-check.mjs KEY VALUE [ENDPOINT]');
  process.exit(2);
}
const b64 = (s) => Buffer.from(s).toString('base64');

async function post(path, body) {
  const res = await fetch(`${endpoint}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(5000),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`POST ${endpoint}${path}: HTTP ${res.status} ${text.slice(0, 200)}`);
  return JSON.parse(text);
}

try {
  const put = await post('/v3/kv/put', { key: b64(key), value: b64(value) });
  const got = await post('/v3/kv/range', { key: b64(key) });
  const kv = got.kvs?.[0];
  const read = kv?.value === undefined ? null : Buffer.from(kv.value, 'base64').toString();
  console.log(JSON.stringify({ endpoint, key, wrote: value, read, revision: put.header?.revision }));
  process.exit(read === value ? 0 : 1);
} catch (error) {
  console.error(`kv-check: ${error.message}${error.cause ? ` (${error.cause.message ?? error.cause})` : ''}`);
  process.exit(1);
}
