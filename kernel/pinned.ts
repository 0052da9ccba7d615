/**
 * Memory whose address the kernel keeps using after an FFI call returns: the `mmsghdr` and `iovec`
 * arrays of `recvmmsg`/`sendmmsg` (which hold further addresses), the buffers behind them, and
 * every buffer given to a `nonblocking` call (which runs on another thread while JavaScript goes
 * on, and may be collected there).
 *
 * A `Deno.UnsafePointer` does not keep its memory alive, and V8 frees an `ArrayBuffer` as soon as
 * no live *variable* refers to it, even inside a function that is still running (a destructured
 * object is dead after the destructuring). So:
 *
 * - this module is the only place that takes the address of JavaScript memory
 *   (`Deno.UnsafePointer.of`); a test fails the build if any other production file does;
 * - a {@link Pinned} region is an off-heap `ArrayBuffer` (never moved by the collector) held in a
 *   module-level set until {@link Pinned.release}, so no pointer into it can outlive it;
 * - FFI parameters that take such memory are declared `"pointer"`, not `"buffer"`, so the only
 *   way to produce their argument is {@link Pinned.pointer}.
 *
 * A buffer passed as a `"buffer"` argument to a synchronous call that only uses it during the call
 * (`read`, `write`, `sendto`, `ioctl`) needs none of this: the argument is alive for the call.
 */

const live = new Set<Pinned>();

/** Bytes of JavaScript memory with a fixed address, alive until released. */
export class Pinned {
  /** The whole region; views of it may be passed as `"buffer"` arguments. */
  readonly bytes: Uint8Array<ArrayBuffer>;
  readonly #base: bigint;
  #released = false;

  constructor(readonly size: number) {
    if (!Number.isSafeInteger(size) || size <= 0) {
      throw new RangeError(`Cannot pin ${size} bytes: the size must be a positive integer`);
    }
    // An explicit ArrayBuffer always has an off-heap backing store (small typed arrays created
    // with a length may live inside the V8 heap, where the collector moves them).
    const buffer = new ArrayBuffer(size);
    this.bytes = new Uint8Array(buffer);
    this.#base = BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(buffer)));
    live.add(this);
  }

  /** The address of byte `offset` as a number for storing inside kernel structures. */
  address(offset = 0): bigint {
    this.#check(offset, 0);
    return this.#base + BigInt(offset);
  }

  /** A pointer to byte `offset`, for `"pointer"` FFI parameters. */
  pointer(offset = 0): Deno.PointerObject {
    return Deno.UnsafePointer.create(this.address(offset))!;
  }

  /** A view of `length` bytes at `offset` (for reads, writes and `"buffer"` arguments). */
  view(offset: number, length: number): Uint8Array<ArrayBuffer> {
    this.#check(offset, length);
    return this.bytes.subarray(offset, offset + length);
  }

  /**
   * Lets the region be collected. Only call it once no call in flight, no kernel structure and
   * no stored pointer can use the memory any more (after the thread that used it stopped).
   */
  release(): void {
    this.#released = true;
    live.delete(this);
  }

  get released(): boolean {
    return this.#released;
  }

  #check(offset: number, length: number): void {
    if (this.#released) throw new Error("Cannot use pinned memory after release()");
    if (!Number.isInteger(offset) || offset < 0 || offset + length > this.size) {
      throw new RangeError(
        `Offset ${offset} (+${length}) is outside the ${this.size} pinned bytes`,
      );
    }
  }
}

/** How many regions are pinned in this thread (tests, leak checks). */
export function pinnedCount(): number {
  return live.size;
}
