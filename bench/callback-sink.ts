// Where the baseline's SMS ask for their status callbacks. The local Twilio signs and posts a
// callback for every message that asks for one: work Twilio does in production, on its machines,
// but here on the bench's 2 cores. Pointing the baseline's messages at this sink makes the
// provider's work the same for both contenders; the sink answers 204 and records nothing (the
// naive script knows nothing of delivery), so what the pipeline alone pays is its receiver,
// the receipts it writes, the folds and the follow-up.
import http from 'node:http';
import { listen } from '../workers/listen';

export interface CallbackSink {
  url: string;
  close(): Promise<void>;
}

export async function startCallbackSink(): Promise<CallbackSink> {
  const server = http.createServer({ noDelay: true }, (req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(204).end());
  });
  server.keepAliveTimeout = 65_000;
  const { port, host } = await listen(server, 0, '127.0.0.1');
  return {
    url: `http://${host}:${port}/sink`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
