// A TCP proxy that can be cut like a network partition: while blackholed, bytes in either
// direction are held back (not refused: a partitioned peer sees silence, not a reset) and new
// connections are accepted and left hanging. Restoring drops the held connections, as a
// partition that outlived the TCP session would, and forwards again. The chaos drill puts one in
// front of each worker's Temporal connection, so a worker can lose Temporal while it still
// reaches PostgreSQL and the providers.
import net from 'node:net';
import { listen } from './ports';

export interface TcpProxy {
  readonly address: string;
  readonly port: number;
  blackhole(): void;
  restore(): void;
  stop(): Promise<void>;
}

export async function startTcpProxy(target: { host: string; port: number }): Promise<TcpProxy> {
  let cut = false;
  const pairs = new Set<{ client: net.Socket; upstream?: net.Socket }>();
  const server = net.createServer((client) => {
    const pair: { client: net.Socket; upstream?: net.Socket } = { client };
    pairs.add(pair);
    const close = () => {
      client.destroy();
      pair.upstream?.destroy();
      pairs.delete(pair);
    };
    client.on('error', close).on('close', close);
    if (cut) {
      client.pause();
      return;
    }
    const upstream = net.connect(target.port, target.host);
    pair.upstream = upstream;
    upstream.on('error', close).on('close', close);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  const { port, host } = await listen(server, 0, '127.0.0.1');
  return {
    address: `${host}:${port}`,
    port,
    blackhole() {
      cut = true;
      for (const p of pairs) {
        p.client.unpipe();
        p.upstream?.unpipe();
        p.client.pause();
        p.upstream?.pause();
      }
    },
    restore() {
      cut = false;
      for (const p of [...pairs]) {
        p.client.destroy();
        p.upstream?.destroy();
      }
      pairs.clear();
    },
    stop() {
      for (const p of pairs) {
        p.client.destroy();
        p.upstream?.destroy();
      }
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
