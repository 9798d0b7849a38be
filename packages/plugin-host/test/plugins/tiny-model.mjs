// A plugin as a model author writes it: a plain module exporting a factory.
import { ConfigBuilder } from '../../dist/index.js';

export default function tinyModel() {
  const bars = [{ index: 0, size: 4096, kind: 'mem32', prefetchable: false }];
  return {
    name: 'tiny',
    config: new ConfigBuilder().build({ vendor: 0x1234, device: 0x0001, classCode: 0xff0000 }, bars),
    bars,
    setup(ctx) {
      ctx.bar(0).memory.u32[0] = 0x7e57;
      return undefined;
    },
  };
}
