/** A scripted {@link PacketSocket} for unit tests: a handler answers each request's datagram. */
import {
  Buffer,
  decodeMessages,
  encodeMessage,
  type NetlinkMessage,
  NLM_F_MULTI,
  NLMSG_DONE,
  NLMSG_ERROR,
} from "../../kernel/netlink/_codec.ts";
import type { PacketSocket } from "../../kernel/netlink/_socket.ts";

/** One kernel message: type, flags, seq, payload. */
export function kernelMessage(type: number, flags: number, seq: number, payload: Uint8Array) {
  return encodeMessage(type, flags, seq, payload);
}

/** NLMSG_ERROR with `errno` (0 = ACK) and optional extended-ack text, NETLINK_CAP_ACK style. */
export function errorMessage(seq: number, errno: number, text?: string): Uint8Array {
  const head = Buffer.alloc(20);
  head.writeInt32LE(-errno, 0);
  head.writeUInt32LE(16, 4);
  if (text === undefined) return encodeMessage(NLMSG_ERROR, 0x100, seq, head);
  const str = Buffer.from(text + "\0");
  const attr = Buffer.alloc(4 + ((str.length + 3) & ~3));
  attr.writeUInt16LE(4 + str.length, 0);
  attr.writeUInt16LE(1, 2);
  str.copy(attr, 4);
  return encodeMessage(NLMSG_ERROR, 0x100 | 0x200, seq, Buffer.concat([head, attr]));
}

export function doneMessage(seq: number): Uint8Array {
  return encodeMessage(NLMSG_DONE, NLM_F_MULTI, seq, Buffer.alloc(4));
}

export type Handler = (request: NetlinkMessage) => Uint8Array[][];

export class ScriptedSocket implements PacketSocket {
  readonly requests: NetlinkMessage[] = [];
  #queue: Array<Uint8Array | Error> = [];
  #waiter?: () => void;
  #handler: Handler;
  closed = false;
  /** Set while a request's replies are not yet all received (checks serialisation). */
  pending = 0;

  constructor(handler: Handler) {
    this.#handler = handler;
  }

  send(datagram: Uint8Array): void {
    if (this.pending > 0) throw new Error("request sent before the previous one finished");
    const [req] = decodeMessages(datagram.slice());
    this.requests.push(req);
    const datagrams = this.#handler(req).map((msgs) => Buffer.concat(msgs));
    this.pending = datagrams.length;
    this.push(...datagrams);
  }

  /** Queues datagrams (or errors to throw from receive) as if the kernel sent them. */
  push(...items: Array<Uint8Array | Error>): void {
    this.#queue.push(...items);
    this.#waiter?.();
  }

  async receive(): Promise<Uint8Array | undefined> {
    while (this.#queue.length === 0) {
      if (this.closed) return undefined;
      await new Promise<void>((resolve) => this.#waiter = resolve);
      this.#waiter = undefined;
    }
    const item = this.#queue.shift()!;
    if (this.pending > 0) this.pending--;
    if (item instanceof Error) throw item;
    return item;
  }

  close(): void {
    this.closed = true;
    this.#waiter?.();
  }
}
