/**
 * libuv poll handles on sockets (koffi.node.poll): how the server hears a
 * connection or a message without blocking the event loop. libuv allows one
 * handle per fd, so each socket gets exactly one, stopped and restarted
 * rather than re-created. Its callback receives (status, events), not what
 * koffi's d.ts says.
 */
import koffi from 'koffi';

export interface PollHandle {
  start(options: { readable?: boolean; disconnect?: boolean }, cb: PollCallback): void;
  stop(): void;
  close(): void;
  ref(): void;
  unref(): void;
}
export type PollCallback = (status: number, events: { readable?: boolean; disconnect?: boolean }) => void;

const nodePoll = (
  koffi as unknown as {
    node: {
      poll(fd: number, options: { readable?: boolean; disconnect?: boolean }, cb: PollCallback): PollHandle;
    };
  }
).node.poll;

export function pollReadable(fd: number, cb: PollCallback): PollHandle {
  return nodePoll(fd, { readable: true, disconnect: true }, cb);
}
