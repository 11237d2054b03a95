#!/usr/bin/env node
// A Node.js static file server, the peer unio-serve is compared with (bench/serve/compare.sh):
// core `http` + `fs` only, GET and HEAD, keep-alive (Node's default), files streamed with
// fs.createReadStream (libuv's thread pool reads them, the event loop writes the socket), paths
// kept inside --root. Usage: node node_static.js --root DIR --port N [--bind 127.0.0.1]
'use strict';

const http = require('http');
const fs = require('fs');
const path = require('path');

function arg(name, fallback) {
  const i = process.argv.indexOf(name);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

const root = path.resolve(arg('--root', '.'));
const port = Number(arg('--port', '8080'));
const bind = arg('--bind', '127.0.0.1');

const types = {
  '.html': 'text/html; charset=utf-8', '.txt': 'text/plain; charset=utf-8',
  '.css': 'text/css; charset=utf-8', '.js': 'text/javascript; charset=utf-8',
  '.json': 'application/json', '.png': 'image/png', '.jpg': 'image/jpeg',
};

function fail(res, status) {
  const body = `${status} ${http.STATUS_CODES[status]}\n`;
  res.writeHead(status, {'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(body)});
  res.end(body);
}

function serve(req, res) {
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.setHeader('Allow', 'GET, HEAD');
    return fail(res, 405);
  }
  let rel;
  try {
    rel = decodeURIComponent(req.url.split('?')[0]);
  } catch (e) {
    return fail(res, 400);
  }
  if (rel.includes('\0')) return fail(res, 400);
  let file = path.join(root, path.normalize(rel));
  if (file !== root && !file.startsWith(root + path.sep)) return fail(res, 403);
  fs.stat(file, (err, st) => {
    if (!err && st.isDirectory()) {
      file = path.join(file, 'index.html');
      return fs.stat(file, (e2, st2) => send(e2, st2));
    }
    send(err, st);
  });

  function send(err, st) {
    if (err) return fail(res, err.code === 'ENOENT' || err.code === 'ENOTDIR' ? 404 : 403);
    if (!st.isFile()) return fail(res, 404);
    res.writeHead(200, {
      'Content-Type': types[path.extname(file)] || 'application/octet-stream',
      'Content-Length': st.size,
      'Last-Modified': st.mtime.toUTCString(),
    });
    if (req.method === 'HEAD' || st.size === 0) return res.end();
    const stream = fs.createReadStream(file, {highWaterMark: 256 * 1024});
    stream.on('error', () => res.destroy());
    stream.pipe(res);
  }
}

const server = http.createServer(serve);
server.keepAliveTimeout = 10000;
server.listen(port, bind, () => {
  console.log(`listening on ${bind}:${server.address().port}`);
});
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => server.close(() => process.exit(0)) && setTimeout(() => process.exit(0), 2000).unref());
