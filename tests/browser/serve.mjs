// A tiny static server for the tests and the benchmark: serves wasm/web on 127.0.0.1 (port
// 0, so tests never collide), optionally with a stub of the create-job API and extra
// in-memory pages. Run it by hand to open the form: `node tests/browser/serve.mjs [port]`.

import { createServer } from 'node:http';
import { readFile } from 'node:fs/promises';
import { extname, join, normalize, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = resolve(fileURLToPath(new URL('../..', import.meta.url)));
export const WEB_ROOT = join(REPO, 'wasm', 'web');

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.wasm': 'application/wasm',
  '.json': 'application/json',
  '.ts': 'text/plain; charset=utf-8',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
};

/** The cluster id the API stub refuses, as a server that does not know the cluster would. */
export const UNKNOWN_CLUSTER = 'missing-cluster';

const JOBS_PATH = /^\/orchestrate\/v1\/organizations\/([^/]+)\/projects\/([^/]+)\/jobs$/;

/**
 * A stand-in for `backupctl serve`'s `POST …/jobs`: 400 with an RFC 7807 problem and
 * `fields` for {@link UNKNOWN_CLUSTER}, 200 `{id}` otherwise. Records each body it got.
 */
function jobsStub(received) {
  return async (request, response, match) => {
    if (request.method !== 'POST') return false;
    let text = '';
    for await (const chunk of request) text += chunk;
    const body = JSON.parse(text);
    received.push({ path: request.url, contentType: request.headers['content-type'], body });
    if (body?.data?.clusterId === UNKNOWN_CLUSTER) {
      const problem = {
        type: 'https://backupctl.dev/problems/invalid-request',
        title: 'The request is not valid',
        status: 400,
        detail: 'Fix the fields listed in `fields` and send the request again.',
        instance: request.url,
        fields: {
          'data.clusterId': `No cluster \`${UNKNOWN_CLUSTER}\` is registered in project ${match[2]}; register it with \`backupctl clusters register\` first.`,
        },
      };
      response.writeHead(400, { 'content-type': 'application/problem+json' });
      response.end(JSON.stringify(problem));
      return true;
    }
    response.writeHead(200, { 'content-type': 'application/json' });
    response.end(JSON.stringify({ id: `job-${received.length}` }));
    return true;
  };
}

/**
 * Starts the server. `api: true` adds the jobs stub; `pages` maps a path to
 * `{type, body}` served from memory; `isolated: true` sends the headers that make the page
 * cross-origin isolated (finer `performance.now()` for the benchmark).
 */
export async function serve({ api = false, pages = {}, isolated = false, port = 0 } = {}) {
  const received = [];
  const stub = api ? jobsStub(received) : null;
  const server = createServer(async (request, response) => {
    try {
      const url = new URL(request.url, 'http://127.0.0.1');
      const headers = isolated
        ? { 'cross-origin-opener-policy': 'same-origin', 'cross-origin-embedder-policy': 'require-corp' }
        : {};
      const match = JOBS_PATH.exec(url.pathname);
      if (match && stub && (await stub(request, response, match))) return;
      if (pages[url.pathname]) {
        const page = pages[url.pathname];
        response.writeHead(200, { 'content-type': page.type, ...headers });
        response.end(page.body);
        return;
      }
      let path = decodeURIComponent(url.pathname);
      if (path.endsWith('/')) path += 'index.html';
      const file = normalize(join(WEB_ROOT, path));
      if (!file.startsWith(WEB_ROOT + sep)) throw Object.assign(new Error('outside'), { code: 'ENOENT' });
      const body = await readFile(file);
      response.writeHead(200, {
        'content-type': TYPES[extname(file)] ?? 'application/octet-stream',
        'cache-control': 'no-store',
        ...headers,
      });
      response.end(body);
    } catch (error) {
      const status = error.code === 'ENOENT' || error.code === 'EISDIR' ? 404 : 500;
      response.writeHead(status, { 'content-type': 'application/problem+json' });
      response.end(JSON.stringify({ title: status === 404 ? 'Not found' : 'Server error', status }));
    }
  });
  await new Promise((done) => server.listen(port, '127.0.0.1', done));
  const { port: bound } = server.address();
  return {
    url: `http://127.0.0.1:${bound}`,
    received,
    close: () => new Promise((done) => server.close(done)),
  };
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const port = Number(process.argv[2] ?? 8000);
  const { url } = await serve({ port });
  console.log(`the job form: ${url}/  (Ctrl-C stops; POSTs need backupctl serve or the API settings)`);
}
