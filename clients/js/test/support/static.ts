// A tiny HTTP server for browser tests: fixed routes to files or JSON, and
// optionally WebSocket upgrades on /ws passed through to a switchboard, so
// that a page can reach the server on its own host, as with `serve --demo`.
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { connect, type Socket } from 'node:net';

export type Route = { file: string; type: string } | { body: string; type: string } | { json: () => unknown };

export interface StaticServer {
  url: string;
  close(): Promise<void>;
}

export async function serveStatic(routes: Record<string, Route>, upgradeTo?: string): Promise<StaticServer> {
  const server: Server = createServer((request, response) => {
    const route = routes[new URL(request.url ?? '/', 'http://localhost').pathname];
    if (route === undefined) {
      response.writeHead(404).end();
    } else if ('file' in route) {
      // Read on each request so a rebuilt file is served without a restart.
      response.writeHead(200, { 'content-type': route.type, 'cache-control': 'no-store' }).end(readFileSync(route.file));
    } else if ('body' in route) {
      response.writeHead(200, { 'content-type': route.type }).end(route.body);
    } else {
      response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(route.json()));
    }
  });
  const sockets = new Set<Socket>();
  if (upgradeTo !== undefined) {
    server.on('upgrade', (request: IncomingMessage, client: Socket, head: Buffer) => {
      const [host = '', port = ''] = upgradeTo.split(/:(?=\d+$)/);
      const upstream = connect(Number(port), host, () => {
        const lines = [`${request.method ?? 'GET'} ${request.url ?? '/'} HTTP/1.1`];
        for (let i = 0; i < request.rawHeaders.length; i += 2) {
          lines.push(`${request.rawHeaders[i] ?? ''}: ${request.rawHeaders[i + 1] ?? ''}`);
        }
        upstream.write(`${lines.join('\r\n')}\r\n\r\n`);
        upstream.write(head);
        upstream.pipe(client);
        client.pipe(upstream);
      });
      for (const socket of [client, upstream]) {
        sockets.add(socket);
        socket.on('error', () => {
          client.destroy();
          upstream.destroy();
        });
        socket.on('close', () => {
          sockets.delete(socket);
          client.destroy();
          upstream.destroy();
        });
      }
    });
  }
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('static server has no port');
  return {
    url: `http://127.0.0.1:${String(address.port)}`,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      server.closeAllConnections();
      await new Promise((done) => server.close(done));
    },
  };
}
