// A tiny HTTP server for the browser tests' harness page and the SDK build.
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';

export type Route = { file: string; type: string } | { body: string; type: string };

export interface StaticServer {
  url: string;
  close(): Promise<void>;
}

export async function serveStatic(routes: Record<string, Route>): Promise<StaticServer> {
  const server = createServer((request, response) => {
    const route = routes[new URL(request.url ?? '/', 'http://localhost').pathname];
    if (route === undefined) {
      response.writeHead(404).end();
      return;
    }
    // Read on each request so a rebuilt file is served without a restart.
    const body = 'file' in route ? readFileSync(route.file) : route.body;
    response.writeHead(200, { 'content-type': route.type, 'cache-control': 'no-store' }).end(body);
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('static server has no port');
  return {
    url: `http://127.0.0.1:${String(address.port)}`,
    close: async () => {
      server.closeAllConnections();
      await new Promise((done) => server.close(done));
    },
  };
}
