// What the frame and RESP decoders share: bytes arrive in chunks split anywhere. What the parser
// cannot use yet is kept as the chunks it came in and joined once, when at least as many bytes
// as it asked for are here, so a large message costs one copy however it was split. While held,
// everything stays as bytes: the connection has stopped reading because its client is not
// reading replies, and one chunk can hold thousands of requests. Pure.

const EMPTY: Buffer[] = [];
const NO_BYTES = Buffer.alloc(0);

export abstract class StreamDecoder {
  private pendingChunks: Buffer[] = EMPTY;
  private pendingBytes = 0;
  // How long the kept bytes must grow before parsing them again is worth it; parse() sets it
  // when it stops for want of bytes.
  protected neededBytes = 0;
  protected held = false;

  get bufferedBytes(): number {
    return this.pendingBytes;
  }

  // Parses whole messages from the start of `bytes` while not held, and returns the offset of
  // the first byte it did not use (having set neededBytes, counted from there, if it stopped for
  // want of bytes). Throws on input the stream cannot recover from.
  protected abstract parse(bytes: Buffer): number;

  push(chunk: Buffer): void {
    let bytes = chunk;
    if (this.pendingBytes > 0 || this.held) {
      if (this.pendingChunks === EMPTY) this.pendingChunks = [];
      this.pendingChunks.push(chunk);
      this.pendingBytes += chunk.length;
      if (this.held || this.pendingBytes < this.neededBytes) return;
      bytes = Buffer.concat(this.pendingChunks, this.pendingBytes);
      this.pendingChunks = EMPTY;
      this.pendingBytes = 0;
    }
    const offset = this.parse(bytes);
    if (offset < bytes.length) {
      const rest = bytes.subarray(offset);
      this.pendingChunks = [rest];
      this.pendingBytes = rest.length;
      if (this.held) this.neededBytes = 0;
    }
  }

  // Stops handing out messages: the rest of this push and later pushes are kept until release().
  hold(): void {
    this.held = true;
  }

  // Hands out the messages kept while held (and may be held again by one of them). Throws as
  // push does.
  release(): void {
    if (!this.held) return;
    this.held = false;
    if (this.pendingBytes === 0) return;
    this.neededBytes = 0;
    this.push(NO_BYTES);
  }
}
