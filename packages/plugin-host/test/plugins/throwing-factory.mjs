// A plugin whose factory fails: the host must report it naming this file.
export default function brokenFactory() {
  throw new RangeError('the factory of this plugin is broken');
}
