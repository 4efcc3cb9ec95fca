// A seeded random source for the pure cores and for `dkv-cli bench`'s workload. The cores never
// call Math.random: the shell or the simulator hands them a Random, so a run replays exactly from
// its seed. Pure.
//
// sfc32 (Chris Doty-Humphrey's small fast counter): 128 bits of state, passes PractRand, and costs
// a few integer operations per draw. The seed is spread over the state with splitmix32.

export interface Random {
  // Uniform in [0, 1).
  next(): number;
  // Uniform integer in [0, bound); bound ≥ 1.
  int(bound: number): number;
}

export class SeededRandom implements Random {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(readonly seed: number) {
    let s = seed >>> 0;
    const split = (): number => {
      s = (s + 0x9e3779b9) | 0;
      let z = s;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.a = split();
    this.b = split();
    this.c = split();
    this.d = 1;
    for (let i = 0; i < 12; i++) this.next32();
  }

  next32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  next(): number {
    return this.next32() / 4294967296;
  }

  // Uniform in [0, 1) with 53 random bits (two draws): for choosing among millions of keys,
  // where next()'s 32 bits would favour some by up to n / 2^32.
  next53(): number {
    const high = this.next32() >>> 5;
    const low = this.next32() >>> 6;
    return (high * 67108864 + low) / 9007199254740992;
  }

  int(bound: number): number {
    return Math.floor(this.next() * bound);
  }
}
