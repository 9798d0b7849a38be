/**
 * Opening simulated devices: `sim:<name>` for a built-in model, `sim:<path>.json`
 * for a device spec file, or a plugin module (specifier or path) exporting a
 * model factory. This is the syntax the CLI accepts.
 */
import { isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { builtinModels } from './builtins/index.js';
import { ModelError, quote } from './errors.js';
import type { DeviceModel, DeviceModelFactory } from './model.js';
import { SimDevice, type SimDeviceOptions } from './sim-device.js';
import { loadSpecFile } from './spec-file.js';

export type SimSpecifier =
  | { readonly kind: 'builtin'; readonly name: string }
  | { readonly kind: 'spec-file'; readonly path: string };

/** Parses `sim:<name>` or `sim:<path>.json`. */
export function parseSimSpecifier(text: string): SimSpecifier {
  if (!text.startsWith('sim:') || text.length === 4) {
    throw new ModelError(
      'ERR_SIM_SPECIFIER',
      `${quote(text)} is not a simulated device`,
      `use sim:<name> (one of ${Object.keys(builtinModels).join(', ')}) or sim:<path>.json`,
    );
  }
  const rest = text.slice(4);
  if (rest.endsWith('.json')) return { kind: 'spec-file', path: rest };
  if (!(rest in builtinModels)) {
    throw new ModelError(
      'ERR_SIM_UNKNOWN_MODEL',
      `there is no built-in model ${quote(rest)}`,
      `use one of: ${Object.keys(builtinModels).join(', ')}, or sim:<path>.json`,
    );
  }
  return { kind: 'builtin', name: rest };
}

/** The model a `sim:` specifier names. */
export function simModel(specifier: string): DeviceModel {
  const parsed = parseSimSpecifier(specifier);
  return parsed.kind === 'builtin' ? builtinModels[parsed.name]!() : loadSpecFile(parsed.path);
}

/** Opens a simulated device through the VFIO seam: `openSimDevice('sim:nvme')`. The caller closes it. */
export function openSimDevice(specifier: string, options: SimDeviceOptions = {}): SimDevice {
  return new SimDevice(simModel(specifier), specifier, options);
}

/**
 * Loads a plugin: a module (package specifier, or a file path) whose default
 * export or `model` export is a function building a DeviceModel.
 */
export async function loadModel(
  specifierOrPath: string,
  options?: Record<string, unknown>,
): Promise<DeviceModel> {
  const target =
    specifierOrPath.startsWith('.') || isAbsolute(specifierOrPath)
      ? pathToFileURL(resolve(specifierOrPath)).href
      : specifierOrPath;
  let mod: Record<string, unknown>;
  try {
    mod = (await import(target)) as Record<string, unknown>;
  } catch (err) {
    throw new ModelError(
      'ERR_PLUGIN_LOAD',
      `cannot load device model plugin ${specifierOrPath}: ${err instanceof Error ? err.message : quote(err)}`,
    );
  }
  const factory = (mod.default ?? mod.model) as DeviceModelFactory | undefined;
  if (typeof factory !== 'function') {
    throw new ModelError(
      'ERR_PLUGIN_EXPORT',
      `plugin ${specifierOrPath} exports no model factory`,
      'export a function returning a DeviceModel as default or as "model"',
    );
  }
  let model: DeviceModel;
  try {
    model = factory(options);
  } catch (err) {
    throw new ModelError(
      'ERR_PLUGIN_FACTORY',
      `plugin ${specifierOrPath}: its model factory threw: ${err instanceof Error ? err.message : quote(err)}`,
      'fix the plugin: its factory must return a DeviceModel',
      err,
    );
  }
  if (
    !model ||
    typeof model !== 'object' ||
    !(model.config instanceof Uint8Array) ||
    !Array.isArray(model.bars)
  ) {
    throw new ModelError(
      'ERR_PLUGIN_EXPORT',
      `plugin ${specifierOrPath}: its factory did not return a DeviceModel (name, config bytes, bars)`,
    );
  }
  return withSource(model, specifierOrPath);
}

/** The model, saying where it came from (messages about it then name the plugin file). */
function withSource(model: DeviceModel, source: string): DeviceModel {
  if (Object.isExtensible(model) && !Object.hasOwn(model, 'source')) {
    Object.defineProperty(model, 'source', { value: source, enumerable: true });
    return model;
  }
  // A frozen model (or one naming its own source) is kept as it is, seen through a wrapper.
  return Object.create(model, { source: { value: source, enumerable: true } }) as DeviceModel;
}
