import type { DeviceModel } from '../model.js';
import { e1000eModel } from './e1000e.js';
import { atiGpuModel, nvidiaGpuModel } from './gpu.js';
import { nvmeModel } from './nvme.js';
import { pciIdio16Model } from './pci-idio-16.js';
import { virtioNetModel } from './virtio-net.js';

/** The built-in models, addressed as `sim:<name>`. */
export const builtinModels: Readonly<Record<string, () => DeviceModel>> = Object.freeze({
  nvme: nvmeModel,
  e1000e: e1000eModel,
  'virtio-net': virtioNetModel,
  'nvidia-gpu': nvidiaGpuModel,
  'ati-gpu': atiGpuModel,
  'pci-idio-16': pciIdio16Model,
});
