// The package's public surface: the client, its types and the error codes.
export { DkvClient, parseAddress } from './client.js';
export { ClusterClient } from './cluster-client.js';
export type { KeyPlacement, Routing, RoutingMember } from './cluster-client.js';
export type { ClientOptions, DeleteResult, GetResult, Key, Member, MputEntry, PutResult, ReadOptions, Value, WriteOptions } from './client.js';
export { DkvError, isDkvError } from '../lib/errors.js';
export { ErrorCode, Opcode, PROTOCOL_VERSION } from '../wire/codes.js';
export { tokenOf } from '../ring/token.js';
