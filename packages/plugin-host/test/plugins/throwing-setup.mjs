// A plugin whose model is fine but whose setup throws (after the host has backed its BARs).
import { ConfigBuilder } from '../../dist/index.js';

export function model() {
  const bars = [{ index: 0, size: 4096, kind: 'mem32', prefetchable: false }];
  return {
    name: 'throws-in-setup',
    config: new ConfigBuilder().build({ vendor: 0x1234, device: 0x0002, classCode: 0xff0000 }, bars),
    bars,
    setup() {
      throw 'setup of this plugin is broken';
    },
  };
}
