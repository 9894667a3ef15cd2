// A TCP proxy in front of the server whose connections a test can cut
// without a close frame, as a network failure would.
import { createServer, connect, type Server, type Socket } from 'node:net';

export class Proxy {
  private readonly pairs = new Set<[Socket, Socket]>();
  private refusing = false;
  private cutOn: { marker: Buffer; cut: () => void } | undefined;

  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  /** Listens on a free loopback port and forwards to `target` (`host:port`). */
  static async start(target: string): Promise<Proxy> {
    const [host = '', port = ''] = target.split(/:(?=\d+$)/);
    const ref: { proxy?: Proxy } = {};
    const server = createServer((client) => {
      if (ref.proxy === undefined) throw new Error('connection before the proxy listened');
      ref.proxy.accept(client, host, Number(port));
    });
    await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('proxy has no port');
    ref.proxy = new Proxy(server, address.port);
    return ref.proxy;
  }

  url(path = '/ws'): string {
    return `ws://127.0.0.1:${String(this.port)}${path}`;
  }

  /**
   * Cuts every open connection, with no WebSocket close frame either way:
   * the server's side is reset, so the server sees the failure at once;
   * the client's side gets what the server had already sent, then its
   * TCP connection ends (a reset could discard those bytes unread).
   */
  sever(): void {
    for (const [client, upstream] of this.pairs) {
      upstream.resetAndDestroy();
      client.destroySoon();
    }
    this.pairs.clear();
  }

  /** Severs as soon as the server sends bytes containing `marker`, right after they are passed on. */
  severAfter(marker: string): Promise<void> {
    return new Promise((done) => {
      this.cutOn = { marker: Buffer.from(marker), cut: done };
    });
  }

  /** While refusing, new connections are reset as they arrive. */
  refuse(refusing: boolean): void {
    this.refusing = refusing;
  }

  async close(): Promise<void> {
    this.sever();
    await new Promise((done) => this.server.close(done));
  }

  private accept(client: Socket, host: string, port: number): void {
    if (this.refusing) {
      client.resetAndDestroy();
      return;
    }
    const upstream = connect(port, host);
    const pair: [Socket, Socket] = [client, upstream];
    this.pairs.add(pair);
    client.on('data', (chunk) => upstream.write(chunk));
    upstream.on('data', (chunk) => {
      client.write(chunk);
      const cutOn = this.cutOn;
      if (cutOn !== undefined && chunk.includes(cutOn.marker)) {
        this.cutOn = undefined;
        this.sever();
        cutOn.cut();
      }
    });
    const end = (): void => {
      this.pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    for (const socket of pair) {
      socket.on('close', end);
      // A reset is what the tests make happen; the close that follows tidies up.
      socket.on('error', () => undefined);
    }
  }
}
