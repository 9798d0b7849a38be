export type { VfioUserCapabilities } from './capabilities.js';
export { formatCapabilities, parseCapabilities } from './capabilities.js';
export type { IoFdSubRegion, MultiWrite, VfioUserBody, VfioUserHeader, VfioUserMessage } from './codec.js';
export {
  checkHeaderFlags,
  decodeBody,
  decodeHeader,
  decodeMessage,
  encodeMessage,
  errorReply,
  isReply,
} from './codec.js';
export {
  VfioUserConnectionError,
  VfioUserError,
  VfioUserProtocolError,
  VfioUserRemoteError,
  VfioUserSocketPathError,
} from './errors.js';
export * from './protocol.js';
