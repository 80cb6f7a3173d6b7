// Listening sockets for the services (metrics endpoint, callback receiver) and the local stack.
import net from 'node:net';

/**
 * Starts `server` listening (port 0: the OS picks; no host: every interface) and says where, the
 * host ready for a URL (IPv6 in brackets). Shared by the local providers, the codec server and the
 * worker's metrics endpoint.
 */
export async function listen(server: net.Server, port: number, host?: string): Promise<{ port: number; host: string }> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const a = server.address() as net.AddressInfo;
  return { port: a.port, host: a.family === 'IPv6' ? `[${a.address}]` : a.address };
}

/** A port that was free a moment ago on 127.0.0.1 (the OS picks it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}
