// dkv-cli repl: an interactive prompt with history, speaking the one-shot commands.
import { appendFileSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { DkvClient } from '../client/client.js';
import { isDkvError } from '../lib/errors.js';
import { limits } from '../lib/limits.js';
import { splitInline, type RespArgs } from '../wire/resp.js';
import { formatMembers } from './format.js';

const HISTORY_FILE = join(homedir(), '.dkv_history');
const HISTORY_LINES_MAX = 1000;

const HELP = `Commands:
  get KEY            print the value (every sibling) and its context
  put KEY VALUE      store a value ("quotes" and \\x00 escapes work as in redis-cli)
  del KEY            delete a key
  ping               round trip to the node
  stats              the node's counters
  members            the cluster as this node sees it
  help               this text
  quit               leave (or Ctrl-D)
`;

function loadHistory(): string[] {
  try {
    return readFileSync(HISTORY_FILE, 'utf8').split('\n').filter(Boolean).slice(-HISTORY_LINES_MAX).reverse();
  } catch {
    return [];
  }
}

// Splits a line like redis-cli does; null for unbalanced quotes.
export function splitLine(line: string): Buffer[] | null {
  const bytes = Buffer.from(line);
  const args: RespArgs = {
    bytes,
    starts: new Int32Array(limits.respArgsMax),
    ends: new Int32Array(limits.respArgsMax),
    count: 0,
  };
  const scratch = Buffer.allocUnsafe(bytes.length);
  const count = splitInline(bytes, 0, bytes.length, scratch, args);
  if (count === null) return null;
  const words: Buffer[] = [];
  for (let i = 0; i < count; i++) words.push(Buffer.from(scratch.subarray(args.starts[i], args.ends[i])));
  return words;
}

export async function runRepl(client: DkvClient, server: string): Promise<number> {
  const rl = createInterface({
    input: process.stdin,
    output: process.stdout,
    prompt: `dkv ${server}> `,
    history: loadHistory(),
    historySize: HISTORY_LINES_MAX,
    terminal: process.stdin.isTTY,
  });
  const say = (text: string): void => {
    process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
  };
  if (process.stdin.isTTY) say(`dkv ${server}: type help for commands`);
  rl.prompt();
  for await (const line of rl) {
    if (line.trim() !== '' && process.stdin.isTTY) {
      try {
        appendFileSync(HISTORY_FILE, `${line}\n`);
      } catch {
        // a read-only home: history stays in memory
      }
    }
    const words = splitLine(line);
    if (words === null) {
      say('(error) unbalanced quotes');
    } else if (words.length > 0) {
      const command = words[0]!.toString().toLowerCase();
      if (command === 'quit' || command === 'exit') break;
      try {
        say(await execute(client, command, words.slice(1)));
      } catch (error) {
        say(isDkvError(error) ? `(error) ${error.code}: ${error.message}` : `(error) ${(error as Error).message}`);
      }
    }
    rl.prompt();
  }
  rl.close();
  return 0;
}

async function execute(client: DkvClient, command: string, args: Buffer[]): Promise<string> {
  const need = (count: number, form: string): void => {
    if (args.length !== count) throw new Error(`usage: ${form}`);
  };
  switch (command) {
    case 'help':
      return HELP;
    case 'get': {
      need(1, 'get KEY');
      const result = await client.get(args[0]!);
      if (result === null) return '(not found)';
      const lines = result.values.map((v, i) => (result.values.length > 1 ? `${i + 1}) ${quote(v)}` : quote(v)));
      lines.push(`(context ${result.context?.toString('base64') ?? '-'})`);
      return lines.join('\n');
    }
    case 'put':
      need(2, 'put KEY VALUE');
      await client.put(args[0]!, args[1]!);
      return 'OK';
    case 'del': {
      need(1, 'del KEY');
      const result = await client.del(args[0]!);
      return result.existed ? '(deleted)' : '(not found)';
    }
    case 'ping':
      need(0, 'ping');
      return `PONG in ${(await client.ping()).toFixed(3)} ms`;
    case 'members':
      need(0, 'members');
      return formatMembers(await client.members());
    case 'stats': {
      need(0, 'stats');
      const stats = await client.stats();
      return Object.entries(stats)
        .map(([name, value]) => `${name}: ${value}`)
        .join('\n');
    }
    default:
      throw new Error(`unknown command '${command}'; type help`);
  }
}

// A value as redis-cli shows it: printable text in quotes, other bytes as \xHH.
function quote(bytes: Buffer): string {
  let out = '"';
  for (const byte of bytes) {
    if (byte === 0x22 || byte === 0x5c) out += `\\${String.fromCharCode(byte)}`;
    else if (byte >= 0x20 && byte < 0x7f) out += String.fromCharCode(byte);
    else if (byte === 0x0a) out += '\\n';
    else out += `\\x${byte.toString(16).padStart(2, '0')}`;
  }
  return `${out}"`;
}
