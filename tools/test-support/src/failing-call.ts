/**
 * Failure injection: wraps `target` so that its `failAt`-th call (0-based) of
 * `method` throws `makeError()` instead of running, the way a kernel can
 * refuse one mmap among many. Every other call and property passes through,
 * with `this` bound to the real object.
 *
 * Example: `failNthCall(device, 'regionMmap', 1, () => new SysError('mmap', 12))`.
 */
export function failNthCall<T extends object>(
  target: T,
  method: keyof T & string,
  failAt: number,
  makeError: () => Error,
): T {
  let calls = 0;
  return new Proxy(target, {
    get(object, prop, receiver) {
      const value = Reflect.get(object, prop, receiver);
      if (typeof value !== 'function') return value;
      if (prop !== method) return value.bind(object);
      return (...args: unknown[]) => {
        if (calls++ === failAt) throw makeError();
        return value.apply(object, args);
      };
    },
  });
}
