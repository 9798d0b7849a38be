// The benchmark's server process: our VfioUserServer serving sim:nvme on argv[2]; prints "ready".
import { openSimDevice } from '@vfio-ts/plugin-host';
import { VfioUserServer } from '../dist/index.js';

const device = openSimDevice('sim:nvme');
const server = VfioUserServer.listen(device, process.argv[2], {
  holdMs: Number(process.env.P5_HOLD_MS ?? 2),
});
process.on('SIGTERM', () => {
  server.close();
  device.close();
  process.exit(0);
});
process.stdout.write('ready\n');
