// The RESP commands dkv answers, as COMMAND describes them: arity counts the command name
// (negative: at least that many), then the flags and the positions of key arguments.

export interface RespCommandSpec {
  name: string;
  arity: number;
  // The most arguments, counting the name, where arity gives only the least.
  maxArgs?: number;
  flags: string[];
  firstKey: number;
  lastKey: number;
  keyStep: number;
}

const specs: RespCommandSpec[] = [
  { name: 'get', arity: 2, flags: ['readonly', 'fast'], firstKey: 1, lastKey: 1, keyStep: 1 },
  { name: 'set', arity: -3, flags: ['write'], firstKey: 1, lastKey: 1, keyStep: 1 },
  { name: 'del', arity: -2, flags: ['write'], firstKey: 1, lastKey: -1, keyStep: 1 },
  { name: 'exists', arity: -2, flags: ['readonly', 'fast'], firstKey: 1, lastKey: -1, keyStep: 1 },
  { name: 'mget', arity: -2, flags: ['readonly', 'fast'], firstKey: 1, lastKey: -1, keyStep: 1 },
  { name: 'mset', arity: -3, flags: ['write'], firstKey: 1, lastKey: -1, keyStep: 2 },
  { name: 'dbsize', arity: 1, flags: ['readonly', 'fast'], firstKey: 0, lastKey: 0, keyStep: 0 },
  { name: 'ping', arity: -1, maxArgs: 2, flags: ['fast'], firstKey: 0, lastKey: 0, keyStep: 0 },
  { name: 'echo', arity: 2, flags: ['fast'], firstKey: 0, lastKey: 0, keyStep: 0 },
  { name: 'info', arity: -1, flags: ['loading', 'stale'], firstKey: 0, lastKey: 0, keyStep: 0 },
  { name: 'quit', arity: -1, flags: ['fast'], firstKey: 0, lastKey: 0, keyStep: 0 },
  { name: 'select', arity: 2, flags: ['loading', 'fast'], firstKey: 0, lastKey: 0, keyStep: 0 },
  { name: 'client', arity: -2, flags: ['loading', 'stale'], firstKey: 0, lastKey: 0, keyStep: 0 },
  { name: 'hello', arity: -1, flags: ['fast'], firstKey: 0, lastKey: 0, keyStep: 0 },
  { name: 'command', arity: -1, flags: ['loading', 'stale'], firstKey: 0, lastKey: 0, keyStep: 0 },
  { name: 'config', arity: -2, flags: ['admin', 'loading', 'stale'], firstKey: 0, lastKey: 0, keyStep: 0 },
];

export const RESP_COMMANDS: ReadonlyMap<string, RespCommandSpec> = new Map(specs.map((s) => [s.name, s]));
