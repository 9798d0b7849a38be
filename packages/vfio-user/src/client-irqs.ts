/**
 * DEVICE_SET_IRQS from the client: the seam's VfioIrqSet as messages, with
 * eventfds passed as SCM_RIGHTS in runs no longer than the server takes.
 */
import type { EventFd, VfioIrqSet } from '@vfio-ts/vfio-sys';
import { VfioArgumentError } from '@vfio-ts/vfio-sys';
import { irqSetFlags } from '@vfio-ts/vfio-sys/uapi';
import type { ClientConnection } from './client-connection.js';
import { VFIO_USER_DEVICE_SET_IRQS } from './protocol.js';
import { traceSetIrqs } from './trace.js';

/** Sends `req`; `maxMsgFds` gives the server's limit on fds in one message (asked only when eventfds go). */
export function sendSetIrqs(connection: ClientConnection, req: VfioIrqSet, maxMsgFds: () => number): void {
  const flags = irqSetFlags(req);
  const data = req.data;
  const what = `DEVICE_SET_IRQS index ${req.index}`;
  if (data.type !== 'eventfd') {
    const bytes = data.type === 'bool' ? Uint8Array.from(data.values, (v) => (v ? 1 : 0)) : new Uint8Array(0);
    traceSetIrqs.emit(req.index, req.start, req.count, flags);
    connection.request(
      VFIO_USER_DEVICE_SET_IRQS,
      {
        kind: 'set-irqs',
        argsz: 20 + bytes.byteLength,
        flags,
        index: req.index,
        start: req.start,
        count: req.count,
        data: bytes,
      },
      what,
    );
    return;
  }
  if (data.eventfds.length !== req.count)
    throw new VfioArgumentError(`${what}: ${data.eventfds.length} eventfds for count ${req.count}`);
  // As QEMU: runs of attached and of detached vectors, each at most max_msg_fds long (no fds = detach).
  const maxFds = Math.max(1, maxMsgFds());
  const list = data.eventfds;
  for (let at = 0; at < list.length; ) {
    const attach = list[at] !== null;
    let n = 1;
    while (at + n < list.length && n < maxFds && (list[at + n] !== null) === attach) n++;
    const fds = attach ? list.slice(at, at + n).map((e) => (e as EventFd).fd) : [];
    traceSetIrqs.emit(req.index, req.start + at, n, flags);
    connection.request(
      VFIO_USER_DEVICE_SET_IRQS,
      {
        kind: 'set-irqs',
        argsz: 20,
        flags,
        index: req.index,
        start: req.start + at,
        count: n,
        data: new Uint8Array(0),
      },
      what,
      fds,
    );
    at += n;
  }
}
