export type { VfioPciBar } from './bars.js';
export { VfioPciDevice } from './device.js';
export { VfioPciError, VfioPciTeardownError } from './errors.js';
export type { MmapArea, MsixFixupInput } from './fixup.js';
export { fixupMsixAreas } from './fixup.js';
export type { VfioPciMsix } from './msix-setup.js';
export type { VfioPciOptions } from './options.js';
export {
  atiBar2Quirk,
  atiBar4Quirk,
  builtinQuirkProbes,
  nvidiaBar0Quirk,
  nvidiaBar5Quirk,
  rtl8168Bar2Quirk,
} from './quirks/builtin.js';
export type { ConfigWindow, WindowMatch } from './quirks/generic.js';
export { configMirrorQuirk, configWindowQuirk } from './quirks/generic.js';
export { QuirkRegistry } from './quirks/registry.js';
export type { BarKind, Quirk, QuirkHost, QuirkProbe, QuirkRegion } from './quirks/types.js';
