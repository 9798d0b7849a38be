/** `vfio-user:<socket>`: a device served over vfio-user, opened through the client backend. */
import { openVfioUserDevice } from '@vfio-ts/vfio-user';
import type { DeviceArg } from './device-arg.js';
import { UsageError } from './errors.js';

export function vfioUserDeviceArg(text: string): DeviceArg {
  const socket = text.slice('vfio-user:'.length);
  if (socket === '')
    throw new UsageError(`"${text}" names no socket`, 'use vfio-user:<path of the server socket>');
  return { backend: 'vfio-user', name: text, open: () => openVfioUserDevice(socket) };
}
