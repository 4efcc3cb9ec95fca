// Member identities: id, its encoded bytes and its addresses, each under a small integer index
// that the core's per-member arrays use. A dkvd has one directory for its one core. The simulator
// shares one directory among all its cores so that ten thousand nodes do not each keep ten
// thousand copies of every id (their views of state and incarnation stay separate); simulated
// nodes keep their addresses for life, so sharing addresses changes nothing. Pure.

import { assert } from '../lib/assert.js';
import { limits } from '../lib/limits.js';

export class MemberDirectory {
  readonly ids: string[] = [];
  readonly idBytes: Buffer[] = [];
  readonly hosts: string[] = [];
  readonly udpPorts: number[] = [];
  readonly tcpPorts: number[] = [];
  private readonly byId = new Map<string, number>();

  get size(): number {
    return this.ids.length;
  }

  find(id: string): number | undefined {
    return this.byId.get(id);
  }

  // The index of id, added if new; -1 when the directory is full.
  intern(id: string, host: string, udpPort: number, tcpPort: number): number {
    const known = this.byId.get(id);
    if (known !== undefined) return known;
    if (this.ids.length >= limits.membersMax) return -1;
    const idBytes = Buffer.from(id, 'utf8');
    assert(idBytes.length >= 1 && idBytes.length <= 255, 'member id is 1..255 bytes');
    const index = this.ids.length;
    this.ids.push(id);
    this.idBytes.push(idBytes);
    this.hosts.push(host);
    this.udpPorts.push(udpPort);
    this.tcpPorts.push(tcpPort);
    this.byId.set(id, index);
    return index;
  }

  setAddress(index: number, host: string, udpPort: number, tcpPort: number): void {
    this.hosts[index] = host;
    this.udpPorts[index] = udpPort;
    this.tcpPorts[index] = tcpPort;
  }
}
